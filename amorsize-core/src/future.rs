//! The async entry points: [`map_async`] and its relatives return a [`MapFuture`] that runs
//! the map on rayon's pool, with the same tuned plan as [`map`](crate::map) (it is a call of
//! the same site, made on a pool thread), and wakes the awaiting task when it is done. The
//! executor's thread never runs the map or waits for it, except for calls so small that a
//! round trip to the pool would cost more than the work: those run when first polled (see
//! [`INLINE_BELOW`]).
//!
//! No executor is needed or assumed: the future is woken through std's [`Waker`]. Dropping it
//! before it completes stops the map promptly (no item starts after the drop is seen; items
//! running finish) and drops the results made so far, on the pool; the dropping thread never
//! blocks. A panic in the function resumes in the awaiting task when it polls.

use crate::items::IntoItems;
use crate::site::Site;
use crate::try_map::TryItem;
use crate::ParIter;
use rayon::iter::IndexedParallelIterator;
use std::any::Any;
use std::borrow::Borrow;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Calls predicted (at the site's learned cost) to take less than this as a loop run inline
/// when first polled: a round trip to the pool (a job spawned, a thread woken, the task
/// woken and polled again) costs tens of µs on the development machine, and a poll must not
/// block an executor thread for long. Calls of unknown cost always go to the pool.
pub const INLINE_BELOW: Duration = Duration::from_micros(20);

/// The future of an async map: resolves to the map's result.
///
/// It is `Send`, so it can be awaited in a task of any multi-threaded executor. Dropping it
/// cancels the map (see the [module docs](self)).
#[must_use = "a MapFuture does nothing until polled, and cancels its map when dropped"]
pub struct MapFuture<T> {
    /// The work, until it is started.
    job: Option<Job<T>>,
    /// Whether the job may run inline when first polled.
    inline: bool,
    slot: Arc<Slot<T>>,
}

type Job<T> = Box<dyn FnOnce(&AtomicBool) -> Option<T> + Send>;

/// Where the pool leaves the result for the awaiting task.
struct Slot<T> {
    state: Mutex<State<T>>,
    /// Set when the future is dropped: the map stops before its next item.
    cancel: AtomicBool,
}

enum State<T> {
    /// Running; the task to wake.
    Pending(Option<Waker>),
    /// Done: the value (`None` if it was cancelled), or the panic.
    Done(Result<Option<T>, Box<dyn Any + Send>>),
    /// Returned to the task.
    Taken,
}

impl<T: Send + 'static> MapFuture<T> {
    fn new(job: Job<T>, inline: bool) -> Self {
        MapFuture {
            job: Some(job),
            inline,
            slot: Arc::new(Slot {
                state: Mutex::new(State::Pending(None)),
                cancel: AtomicBool::new(false),
            }),
        }
    }
}

impl<T: Send + 'static> Future for MapFuture<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        if let Some(job) = this.job.take() {
            if this.inline {
                let never = AtomicBool::new(false);
                return match job(&never) {
                    Some(value) => Poll::Ready(value),
                    None => unreachable!("an inline call is never cancelled"),
                };
            }
            *crate::lock(&this.slot.state) = State::Pending(Some(cx.waker().clone()));
            let slot = Arc::clone(&this.slot);
            rayon::spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(|| job(&slot.cancel)));
                let waker = {
                    let mut state = crate::lock(&slot.state);
                    match std::mem::replace(&mut *state, State::Done(result)) {
                        State::Pending(waker) => waker,
                        _ => None,
                    }
                };
                // Woken outside the lock: waking may run the executor's code.
                if let Some(waker) = waker {
                    waker.wake();
                }
            });
            return Poll::Pending;
        }
        let mut state = crate::lock(&this.slot.state);
        match std::mem::replace(&mut *state, State::Taken) {
            State::Pending(waker) => {
                let waker = match waker {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                *state = State::Pending(Some(waker));
                Poll::Pending
            }
            State::Done(Ok(Some(value))) => Poll::Ready(value),
            State::Done(Ok(None)) => unreachable!("only a dropped future's map is cancelled"),
            State::Done(Err(payload)) => {
                drop(state);
                resume_unwind(payload)
            }
            State::Taken => panic!("amorsize: a MapFuture was polled after it completed"),
        }
    }
}

impl<T> Drop for MapFuture<T> {
    fn drop(&mut self) {
        self.slot.cancel.store(true, Ordering::Relaxed);
    }
}

/// Whether a call of `n` items of `site` is small enough to run when first polled.
fn inline(site: &Site, n: usize) -> bool {
    crate::dispatch::measures(site)
        && site
            .planning_costs()
            .is_some_and(|costs| costs.serial.work(n) < INLINE_BELOW)
}

/// Maps `f` over owned `items` on rayon's pool, like [`map`](crate::map) through the same
/// `site`; the returned future resolves to the results in input order.
///
/// ```
/// use amorsize_core::{map_async, Site};
///
/// static DOUBLE: Site = Site::new("double");
///
/// let future = map_async(&DOUBLE, (0..1_000u64).collect::<Vec<_>>(), |x| x * 2);
/// // Any executor; a trivial one here.
/// let doubled = futures_lite_block_on(future);
/// assert_eq!(doubled[999], 1_998);
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v }
/// #         std::thread::park();
/// #     }
/// # }
/// ```
pub fn map_async<T, I, R, F>(site: &'static Site, items: I, f: F) -> MapFuture<Vec<R>>
where
    T: Send + 'static,
    I: IntoItems<T> + Send + 'static,
    I::Iter: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> R + Send + Sync + 'static,
{
    let iter = items.into_items();
    let n = iter.len();
    let job: Job<Vec<R>> = Box::new(move |cancel| {
        let stop = |x| (!cancel.load(Ordering::Relaxed)).then(|| f(x));
        crate::try_map(site, ParIter(iter), stop)
    });
    MapFuture::new(job, inline(site, n))
}

/// Owned items that lend their elements as `T` to a map: what an async companion of
/// `fn f(x: &T)` takes. Implemented for `Vec<S>`, `Box<[S]>`, `Arc<[S]>` and `Arc<Vec<S>>`
/// with `S: Borrow<T> + Sync` (a `Vec<String>` for `&str` items, an `Arc<[Record]>` shared
/// with other tasks).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not owned items an async companion can take",
    label = "pass a `Vec`, `Box<[_]>` or `Arc<[_]>` of the items (the future owns them)",
    note = "async companions take owned items (`Vec<S>`, `Box<[S]>`, `Arc<[S]>`, `Arc<Vec<S>>` with `S: Borrow<{T}>`): the map runs on the pool after the call returns"
)]
pub trait OwnedItems<T: ?Sized>: Send + Sync + 'static {
    /// One element.
    type Item: Borrow<T> + Sync;
    /// The elements.
    fn elements(&self) -> &[Self::Item];
}

impl<T: ?Sized, S: Borrow<T> + Send + Sync + 'static> OwnedItems<T> for Vec<S> {
    type Item = S;
    fn elements(&self) -> &[S] {
        self
    }
}

impl<T: ?Sized, S: Borrow<T> + Send + Sync + 'static> OwnedItems<T> for Box<[S]> {
    type Item = S;
    fn elements(&self) -> &[S] {
        self
    }
}

impl<T: ?Sized, S: Borrow<T> + Send + Sync + 'static> OwnedItems<T> for Arc<[S]> {
    type Item = S;
    fn elements(&self) -> &[S] {
        self
    }
}

impl<T: ?Sized, S: Borrow<T> + Send + Sync + 'static> OwnedItems<T> for Arc<Vec<S>> {
    type Item = S;
    fn elements(&self) -> &[S] {
        self
    }
}

/// [`map_async`] for a function that borrows its item: `f` gets each element of `items`
/// (owned by the future) by reference.
pub fn map_async_lent<T, C, R, F>(site: &'static Site, items: C, f: F) -> MapFuture<Vec<R>>
where
    T: ?Sized,
    C: OwnedItems<T>,
    R: Send + 'static,
    F: Fn(&T) -> R + Send + Sync + 'static,
{
    let n = items.elements().len();
    let job: Job<Vec<R>> = Box::new(move |cancel| {
        let stop = |x: &C::Item| (!cancel.load(Ordering::Relaxed)).then(|| f(x.borrow()));
        crate::try_map(site, items.elements(), stop)
    });
    MapFuture::new(job, inline(site, n))
}

/// Why a fallible async map stopped: the function failed, or the future was dropped.
enum Halt<S> {
    Failed(S),
    Cancelled,
}

/// [`map_async`] for a fallible `f` (see [`try_map`](crate::try_map)): resolves to every
/// value or the first failure.
pub fn try_map_async<T, I, R, F>(site: &'static Site, items: I, f: F) -> MapFuture<R::Batch>
where
    T: Send + 'static,
    I: IntoItems<T> + Send + 'static,
    I::Iter: Send + 'static,
    R: TryItem + 'static,
    R::Batch: Send + 'static,
    F: Fn(T) -> R + Send + Sync + 'static,
{
    let iter = items.into_items();
    let n = iter.len();
    let job: Job<R::Batch> = Box::new(move |cancel| {
        let stop = |x| -> Result<R::Ok, Halt<R::Stop>> {
            if cancel.load(Ordering::Relaxed) {
                return Err(Halt::Cancelled);
            }
            f(x).into_result().map_err(Halt::Failed)
        };
        batch_of::<R>(crate::try_map(site, ParIter(iter), stop))
    });
    MapFuture::new(job, inline(site, n))
}

/// [`try_map_async`] for a function that borrows its item.
pub fn try_map_async_lent<T, C, R, F>(site: &'static Site, items: C, f: F) -> MapFuture<R::Batch>
where
    T: ?Sized,
    C: OwnedItems<T>,
    R: TryItem + 'static,
    R::Batch: Send + 'static,
    F: Fn(&T) -> R + Send + Sync + 'static,
{
    let n = items.elements().len();
    let job: Job<R::Batch> = Box::new(move |cancel| {
        let stop = |x: &C::Item| -> Result<R::Ok, Halt<R::Stop>> {
            if cancel.load(Ordering::Relaxed) {
                return Err(Halt::Cancelled);
            }
            f(x.borrow()).into_result().map_err(Halt::Failed)
        };
        batch_of::<R>(crate::try_map(site, items.elements(), stop))
    });
    MapFuture::new(job, inline(site, n))
}

/// A fallible map's result as the function's batch type; `None` when it was cancelled.
fn batch_of<R: TryItem>(result: Result<Vec<R::Ok>, Halt<R::Stop>>) -> Option<R::Batch> {
    match result {
        Ok(values) => Some(R::batch(values)),
        Err(Halt::Failed(stop)) => Some(R::stopped(stop)),
        Err(Halt::Cancelled) => None,
    }
}
