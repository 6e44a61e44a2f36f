//! A parallel map in which the calling thread works too: it takes pieces from the front of
//! the items while helpers on rayon's pool take pieces from the back.
//!
//! Used for calls from outside the pool that find it idle. rayon would inject the whole job
//! and block the caller until a pool thread wakes; on virtual machines an idle core can take
//! hundreds of microseconds to come back (measured on the 2-core development VM: a join of two
//! 500 µs halves took 1.1 ms after 2 ms of serial work, against 0.53 ms back to back). Here the
//! caller starts at once and the helpers join in whenever they wake. The price is a copy of
//! the helpers' results into the output, which is why hot calls keep rayon's own path.

use crate::profile::elapsed_ns;
use rayon::iter::plumbing::Producer;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// The items nobody has taken yet.
struct Middle<P> {
    producer: Option<P>,
    len: usize,
    /// Pieces taken from the back so far (numbers them: a later one sits further forward).
    taken_from_back: usize,
}

/// Takes up to `chunk` items from the front (`from_back == false`) or the back.
fn take<P: Producer>(
    middle: &Mutex<Middle<P>>,
    chunk: usize,
    from_back: bool,
) -> Option<(P, usize)> {
    let mut m = lock(middle);
    if m.len == 0 {
        return None;
    }
    let take = chunk.clamp(1, m.len);
    let producer = m.producer.take()?;
    let piece = if take == m.len {
        producer
    } else if from_back {
        let (rest, back) = producer.split_at(m.len - take);
        m.producer = Some(rest);
        back
    } else {
        let (front, rest) = producer.split_at(take);
        m.producer = Some(rest);
        front
    };
    m.len -= take;
    let number = m.taken_from_back;
    if from_back {
        m.taken_from_back += 1;
    }
    Some((piece, number))
}

/// No user code runs under these locks, so a poisoned one still holds consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sets `stop` if dropped while panicking, so the other side stops taking new pieces.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// Maps `f` over the `n` items of `producer` into `out` (appending, in order), the caller
/// taking `chunk`-item pieces from the front and `helpers` pool jobs taking them from the back.
/// Adds the pieces' summed time to `busy_ns`. A panic in `f` on any thread propagates to the
/// caller with its payload once every thread has stopped.
pub(crate) fn map_into<P, F, R>(
    producer: P,
    n: usize,
    f: &F,
    chunk: usize,
    helpers: usize,
    out: &mut Vec<R>,
    busy_ns: &AtomicU64,
) where
    P: Producer,
    P::Item: Send,
    R: Send,
    F: Fn(P::Item) -> R + Sync + Send,
{
    let middle = Mutex::new(Middle {
        producer: Some(producer),
        len: n,
        taken_from_back: 0,
    });
    let back_parts: Mutex<Vec<(usize, Vec<R>)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    rayon::in_place_scope(|scope| {
        for _ in 0..helpers.max(1) {
            scope.spawn(|_| {
                let _stop = StopOnPanic(&stop);
                while !stop.load(Ordering::Relaxed) {
                    let Some((piece, number)) = take(&middle, chunk, true) else {
                        break;
                    };
                    let start = Instant::now();
                    let part: Vec<R> = piece.into_iter().map(f).collect();
                    busy_ns.fetch_add(elapsed_ns(start), Ordering::Relaxed);
                    lock(&back_parts).push((number, part));
                }
            });
        }
        let _stop = StopOnPanic(&stop);
        while !stop.load(Ordering::Relaxed) {
            let Some((piece, _)) = take(&middle, chunk, false) else {
                break;
            };
            let start = Instant::now();
            out.extend(piece.into_iter().map(f));
            busy_ns.fetch_add(elapsed_ns(start), Ordering::Relaxed);
        }
    });
    // Every item was taken (a stop only happens on a panic, which has propagated by now).
    let mut parts = back_parts
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // The first piece taken from the back is the last one of the input.
    parts.sort_unstable_by_key(|(number, _)| std::cmp::Reverse(*number));
    for (_, part) in parts {
        out.extend(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::iter::plumbing::ProducerCallback;
    use rayon::prelude::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    struct Shared<'a, F> {
        n: usize,
        chunk: usize,
        f: &'a F,
    }

    impl<F: Fn(u64) -> String + Sync + Send> ProducerCallback<u64> for Shared<'_, F> {
        type Output = Vec<String>;
        fn callback<P: Producer<Item = u64>>(self, producer: P) -> Vec<String> {
            let mut out = vec!["head".to_string()];
            let busy = AtomicU64::new(0);
            map_into(producer, self.n, self.f, self.chunk, 1, &mut out, &busy);
            out
        }
    }

    fn run<F: Fn(u64) -> String + Sync + Send>(n: usize, chunk: usize, f: F) -> Vec<String> {
        (0..n)
            .into_par_iter()
            .map(|x| x as u64)
            .with_producer(Shared { n, chunk, f: &f })
    }

    #[test]
    fn output_is_in_order_whoever_computes_what() {
        for (n, chunk) in [
            (0, 1),
            (1, 1),
            (2, 1),
            (7, 3),
            (1_000, 7),
            (20_000, 64),
            (5, 100),
        ] {
            let out = run(n, chunk, |x| x.to_string());
            assert_eq!(out[0], "head");
            let expected: Vec<String> = (0..n as u64).map(|x| x.to_string()).collect();
            assert_eq!(&out[1..], &expected[..], "n = {n}, chunk = {chunk}");
        }
    }

    #[test]
    fn helpers_do_take_work_when_items_are_slow() {
        let out = run(64, 1, |x| {
            std::thread::sleep(std::time::Duration::from_micros(200));
            format!("{x}@{}", rayon::current_thread_index().is_some())
        });
        assert!(
            out[1..].iter().any(|s| s.ends_with("@true")),
            "no helper ran"
        );
        assert!(
            out[1..].iter().any(|s| s.ends_with("@false")),
            "the caller did not work"
        );
        for (i, s) in out[1..].iter().enumerate() {
            assert!(s.starts_with(&format!("{i}@")), "{s} at {i}");
        }
    }

    #[test]
    fn a_panic_on_either_side_propagates_with_its_payload() {
        for bad in [0u64, 9_999, 5_000] {
            let err = catch_unwind(AssertUnwindSafe(|| {
                run(10_000, 16, |x| {
                    if x == bad {
                        std::panic::panic_any(bad);
                    }
                    x.to_string()
                })
            }))
            .unwrap_err();
            assert_eq!(err.downcast_ref::<u64>(), Some(&bad));
        }
    }
}
