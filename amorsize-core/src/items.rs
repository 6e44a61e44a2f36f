//! What a companion (and [`map`](crate::map)) accepts as its items: by value, collections,
//! integer ranges of every width, and rayon parallel iterators through [`ParIter`]
//! ([`IntoItems`]); by reference, slices, `Vec`s and arrays whose elements borrow as the
//! item ([`BorrowedItems`]).

use rayon::iter::{IndexedParallelIterator, IntoParallelIterator, ParallelIterator};
use std::borrow::Borrow;
use std::collections::VecDeque;
use std::ops::{Range, RangeInclusive};

/// Items a parallel map can take by value, in order, with a known length.
///
/// Implemented for `Vec<T>`, `VecDeque<T>`, `Box<[T]>`, arrays `[T; N]`, borrowed slices
/// (`&[T]`, `&Vec<T>`, `&[T; N]`, whose items are `&T`), `Range` and `RangeInclusive` of
/// every primitive integer type (including `u64`, `i64` and the 128-bit ones, which rayon
/// alone cannot split by index), and any rayon indexed parallel iterator wrapped in
/// [`ParIter`] (a non-indexed one, such as a `filter`, through [`ParIter::collected`]).
///
/// The item type is a parameter (not an associated type) so that an untyped literal range
/// such as `0..1000` passed where `u64` items are expected becomes a `Range<u64>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be split into items of `{T}`",
    label = "not a list of items amorsize can split",
    note = "pass a `Vec`, an array, a `VecDeque`, a `Box<[_]>` or an integer range; collect other iterators into a `Vec` first, or wrap a rayon parallel iterator: `ParIter(iter)` if it is indexed, `ParIter::collected(iter)` if not (`filter`, `flat_map`)"
)]
pub trait IntoItems<T: Send> {
    /// The rayon iterator the items become.
    type Iter: IndexedParallelIterator<Item = T>;
    /// Converts into the rayon iterator.
    fn into_items(self) -> Self::Iter;

    /// Whether taking the items one by one only moves them out (a collection) or counts
    /// them (a range), so that an async call may take them all on its first poll and run
    /// them in slices on the polling thread. `false` for [`ParIter`], whose adapters (a
    /// `map`, say) run as its items are taken, which would all run in that one poll: an
    /// async call of those runs on the pool. The default, `false`, is the safe answer for
    /// other types.
    const HELD: bool = false;

    /// Whether the items' producer yields them through an iterator whose length
    /// `Vec::extend` trusts (std's `Range`, a slice's iterator): a loop over them then
    /// extends its `Vec` through that iterator, as the caller's own loop would. Other
    /// iterators (a drained `Vec`'s, an adapter's) are taken through a `Range` of their
    /// exact length, which `extend` trusts: it writes the values without checking the
    /// `Vec`'s capacity each time, and cheap items then run several at once. Through that
    /// `Range` an item costs a few tenths of a ns more than through a trusted iterator of
    /// its own (see `run::extend_mapped`). The default, `false`, is right for any type.
    #[doc(hidden)]
    const EXACT: bool = false;

    /// The items as the `Vec` they are already (a `Vec`, a `Box<[T]>`, a `VecDeque`'s
    /// buffer), without allocating, or `Err(self)`: how an async call run in slices on the
    /// polling thread holds its items, and what a call's loops take them from, as the
    /// caller's own loop over the `Vec` would (in place when the values fit the items'
    /// places). The default, `Err(self)`, makes such a call collect them from
    /// [`into_items`](Self::into_items) instead, and its loops write a new `Vec`.
    #[doc(hidden)]
    fn into_held_vec(self) -> Result<Vec<T>, Self>
    where
        Self: Sized,
    {
        Err(self)
    }
}

/// A rayon parallel iterator, as items.
///
/// An indexed one (`par_chunks`, `par_iter().map(..)`, `zip`, `enumerate`…) is used as it
/// is, its pieces split by index: `par_f(ParIter(v.par_chunks(64)))`. One whose length is
/// not known without running it (`filter`, `flat_map`, `par_bridge`) is collected into a
/// `Vec` once, in order, by [`ParIter::collected`]:
///
/// ```
/// use amorsize_core::{map, ParIter, Site};
/// use rayon::prelude::*;
///
/// static SQUARES: Site = Site::new("squares");
/// let evens = (0..100u64).into_par_iter().filter(|x| x % 2 == 0);
/// let squares = map(&SQUARES, ParIter::collected(evens), |x| x * x);
/// assert_eq!(squares[..3], [0, 4, 16]);
/// ```
#[derive(Clone, Debug)]
pub struct ParIter<I>(pub I);

impl<T: Send> ParIter<rayon::vec::IntoIter<T>> {
    /// Runs a non-indexed parallel iterator (its items in their order), collecting them into a
    /// `Vec` that the map then splits by index.
    pub fn collected<I>(iter: I) -> Self
    where
        I: ParallelIterator<Item = T>,
    {
        ParIter(iter.collect::<Vec<T>>().into_par_iter())
    }
}

impl<I: IndexedParallelIterator> IntoItems<I::Item> for ParIter<I> {
    type Iter = I;
    fn into_items(self) -> I {
        self.0
    }
}

macro_rules! via_rayon {
    ($(impl[$($gen:tt)*] for $ty:ty => $iter:ty, item = $item:ty, exact = $exact:literal;)*) => {$(
        impl<$($gen)*> IntoItems<$item> for $ty {
            type Iter = $iter;
            const HELD: bool = true;
            const EXACT: bool = $exact;
            fn into_items(self) -> $iter {
                self.into_par_iter()
            }
        }
    )*};
}

impl<T: Send> IntoItems<T> for Vec<T> {
    type Iter = rayon::vec::IntoIter<T>;
    const HELD: bool = true;
    fn into_items(self) -> Self::Iter {
        self.into_par_iter()
    }
    fn into_held_vec(self) -> Result<Vec<T>, Self> {
        Ok(self)
    }
}

impl<T: Send> IntoItems<T> for VecDeque<T> {
    type Iter = rayon::collections::vec_deque::IntoIter<T>;
    const HELD: bool = true;
    fn into_items(self) -> Self::Iter {
        self.into_par_iter()
    }
    /// The deque's own buffer, its items moved into order (no allocation).
    fn into_held_vec(self) -> Result<Vec<T>, Self> {
        Ok(Vec::from(self))
    }
}

// An array's items are drained (rayon's iterator of them is not one `extend` trusts); a
// slice's come through std's slice iterator.
via_rayon! {
    impl[T: Send, const N: usize] for [T; N] => rayon::array::IntoIter<T, N>, item = T, exact = false;
    impl['a, T: Sync + 'a] for &'a [T] => rayon::slice::Iter<'a, T>, item = &'a T, exact = true;
    impl['a, T: Sync + 'a] for &'a Vec<T> => rayon::slice::Iter<'a, T>, item = &'a T, exact = true;
    impl['a, T: Sync + 'a, const N: usize] for &'a [T; N] => rayon::slice::Iter<'a, T>, item = &'a T, exact = true;
}

impl<T: Send> IntoItems<T> for Box<[T]> {
    type Iter = rayon::vec::IntoIter<T>;
    const HELD: bool = true;
    fn into_items(self) -> Self::Iter {
        <[T]>::into_vec(self).into_par_iter()
    }
    fn into_held_vec(self) -> Result<Vec<T>, Self> {
        Ok(<[T]>::into_vec(self))
    }
}

/// Items borrowed from a slice, an array, a `Vec`, or a `Box`, `Arc`, `Rc` or `Cow` of a
/// slice or `Vec`, whose elements borrow as `T` (a `Vec<String>` gives `&str` items as well as
/// `&String` ones). What a companion of a function taking `&T` accepts.
///
/// Another container that dereferences to a slice passes as `&container[..]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a slice of items that borrow as `{T}`",
    label = "items are borrowed from a slice, an array or a `Vec`",
    note = "collect the items into a `Vec` first (`.collect::<Vec<_>>()`) and pass `&vec`; a container that dereferences to a slice passes as `&container[..]`"
)]
pub trait BorrowedItems<T: ?Sized> {
    /// The element type, borrowed as `T` for each call.
    type Item: Borrow<T> + Sync;
    /// The elements, in order.
    fn as_items(&self) -> &[Self::Item];
}

impl<S: Borrow<T> + Sync, T: ?Sized> BorrowedItems<T> for [S] {
    type Item = S;
    fn as_items(&self) -> &[S] {
        self
    }
}

impl<S: Borrow<T> + Sync, T: ?Sized, const N: usize> BorrowedItems<T> for [S; N] {
    type Item = S;
    fn as_items(&self) -> &[S] {
        self
    }
}

/// Containers that dereference to a slice of their items.
macro_rules! slice_containers {
    ($($container:ty),* $(,)?) => {$(
        impl<S: Borrow<T> + Sync, T: ?Sized> BorrowedItems<T> for $container {
            type Item = S;
            fn as_items(&self) -> &[S] {
                self
            }
        }
    )*};
}

slice_containers!(
    Vec<S>,
    Box<[S]>,
    Box<Vec<S>>,
    std::sync::Arc<[S]>,
    std::sync::Arc<Vec<S>>,
    std::rc::Rc<[S]>,
    std::rc::Rc<Vec<S>>,
);

impl<S: Borrow<T> + Sync + Clone, T: ?Sized> BorrowedItems<T> for std::borrow::Cow<'_, [S]> {
    type Item = S;
    fn as_items(&self) -> &[S] {
        self
    }
}

impl<A: BorrowedItems<T> + ?Sized, T: ?Sized> BorrowedItems<T> for &A {
    type Item = A::Item;
    fn as_items(&self) -> &[A::Item] {
        (**self).as_items()
    }
}

/// The rayon iterator behind an integer range: `len` items counting up from `start`. Public
/// only as the iterator type of the ranges' `IntoItems`; not re-exported, so that it is no
/// part of the API. Its items are computed in place (`start + i`), so that a loop over a
/// piece of it compiles as tightly as a loop over a `Range`.
#[derive(Clone, Copy, Debug)]
pub struct RangeItems<T> {
    start: T,
    len: usize,
}

/// An integer a range counts in: `self + i` for an offset `i` within the range.
pub trait RangeInt: Copy + Send + Sync + std::fmt::Debug {
    /// `self + i`, for an `i` that keeps the result within the range (wrapping arithmetic,
    /// so that `i` may exceed the type's positive values, as for `-100i8..100`).
    fn offset(self, i: usize) -> Self;
    /// Folds `first..=last` (`first <= last`) with `f`: over a `Range` of the type, which
    /// compiles into tighter loops than offsets added to a start (measured: 7.1 ms against
    /// 5.0 ms for 10 M cheap items).
    fn fold_span<B, F: FnMut(B, Self) -> B>(first: Self, last: Self, init: B, f: F) -> B;
    /// `first..=last` (`first <= last`) as std's `Range` of the type, whose loops compile
    /// as tightly as the caller's own: `first..last + 1`, or `None` when `last` is the
    /// type's maximum (see [`span`](RangeInt::span)).
    fn upto(first: Self, last: Self) -> Option<Self::Upto>;
    /// `first..=last` as a `Range` of the type, then `last`: for a `last` that is the
    /// type's maximum.
    fn span(first: Self, last: Self) -> Self::Span;
    /// What [`upto`](RangeInt::upto) returns.
    type Upto: Iterator<Item = Self>;
    /// What [`span`](RangeInt::span) returns.
    type Span: Iterator<Item = Self>;
}

macro_rules! range_ints {
    ($($t:ty),*) => {$(
        impl RangeInt for $t {
            #[inline(always)]
            fn offset(self, i: usize) -> $t {
                self.wrapping_add(i as $t)
            }
            #[inline]
            fn fold_span<B, F: FnMut(B, $t) -> B>(first: $t, last: $t, init: B, mut f: F) -> B {
                // `last` apart, so that a range ending at the type's maximum does not
                // overflow.
                let acc = (first..last).fold(init, &mut f);
                f(acc, last)
            }
            type Upto = Range<$t>;
            type Span = std::iter::Chain<Range<$t>, std::iter::Once<$t>>;
            #[inline]
            fn upto(first: $t, last: $t) -> Option<Range<$t>> {
                Some(first..last.checked_add(1)?)
            }
            #[inline]
            fn span(first: $t, last: $t) -> Self::Span {
                (first..last).chain(std::iter::once(last))
            }
        }
    )*};
}

range_ints!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

fn range_items<T>(start: T, len: usize) -> RangeItems<T> {
    RangeItems { start, len }
}

impl<T: RangeInt> ParallelIterator for RangeItems<T> {
    type Item = T;

    fn drive_unindexed<C>(self, consumer: C) -> C::Result
    where
        C: rayon::iter::plumbing::UnindexedConsumer<T>,
    {
        rayon::iter::plumbing::bridge(self, consumer)
    }

    fn opt_len(&self) -> Option<usize> {
        Some(self.len)
    }
}

impl<T: RangeInt> IndexedParallelIterator for RangeItems<T> {
    fn len(&self) -> usize {
        self.len
    }

    fn drive<C: rayon::iter::plumbing::Consumer<T>>(self, consumer: C) -> C::Result {
        rayon::iter::plumbing::bridge(self, consumer)
    }

    fn with_producer<CB: rayon::iter::plumbing::ProducerCallback<T>>(
        self,
        callback: CB,
    ) -> CB::Output {
        callback.callback(self)
    }
}

impl<T: RangeInt> rayon::iter::plumbing::Producer for RangeItems<T> {
    type Item = T;
    type IntoIter = RangeIter<T>;

    fn into_iter(self) -> RangeIter<T> {
        RangeIter {
            start: self.start,
            front: 0,
            back: self.len,
        }
    }

    /// Hands the folder a `Range` of std's (see [`RangeInt::upto`]), so that a folder
    /// that extends a `Vec` writes it as tightly as a loop over a `Range` does.
    fn fold_with<F: rayon::iter::plumbing::Folder<T>>(self, folder: F) -> F {
        if self.len == 0 {
            return folder;
        }
        let (first, last) = (self.start, self.start.offset(self.len - 1));
        match T::upto(first, last) {
            Some(range) => folder.consume_iter(range),
            None => folder.consume_iter(T::span(first, last)),
        }
    }

    fn split_at(self, index: usize) -> (Self, Self) {
        debug_assert!(index <= self.len);
        (
            range_items(self.start, index),
            range_items(self.start.offset(index), self.len - index),
        )
    }
}

/// The serial iterator over a piece of a range: offsets `front..back` from `start`.
#[derive(Clone, Debug)]
pub struct RangeIter<T> {
    start: T,
    front: usize,
    back: usize,
}

impl<T: RangeInt> Iterator for RangeIter<T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.front == self.back {
            return None;
        }
        let item = self.start.offset(self.front);
        self.front += 1;
        Some(item)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.back - self.front;
        (left, Some(left))
    }

    /// A `Range`'s own loop (see [`RangeInt::fold_span`]).
    #[inline]
    fn fold<B, F: FnMut(B, T) -> B>(self, init: B, f: F) -> B {
        if self.front == self.back {
            return init;
        }
        let first = self.start.offset(self.front);
        let last = self.start.offset(self.back - 1);
        T::fold_span(first, last, init, f)
    }
}

impl<T: RangeInt> DoubleEndedIterator for RangeIter<T> {
    #[inline]
    fn next_back(&mut self) -> Option<T> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        Some(self.start.offset(self.back))
    }
}

impl<T: RangeInt> ExactSizeIterator for RangeIter<T> {}

/// The number of items from `start` to `end` (exclusive), if it fits a `usize`.
fn range_len(start: i128, end: i128) -> Option<usize> {
    if end <= start {
        return Some(0);
    }
    usize::try_from(end - start).ok()
}

#[cold]
fn too_long(range: &dyn std::fmt::Debug) -> ! {
    panic!("amorsize: the range {range:?} holds more items than a usize can count; split it")
}

macro_rules! integer_ranges {
    ($($t:ty),*) => {$(
        impl IntoItems<$t> for Range<$t> {
            type Iter = RangeItems<$t>;
            const HELD: bool = true;
            const EXACT: bool = true;
            fn into_items(self) -> Self::Iter {
                let len = range_len(self.start as i128, self.end as i128)
                    .unwrap_or_else(|| too_long(&self));
                range_items(self.start, len)
            }
        }

        impl IntoItems<$t> for RangeInclusive<$t> {
            type Iter = RangeItems<$t>;
            const HELD: bool = true;
            const EXACT: bool = true;
            fn into_items(self) -> Self::Iter {
                let (start, end) = (*self.start(), *self.end());
                let len = if self.is_empty() {
                    0
                } else {
                    range_len(start as i128, end as i128 + 1).unwrap_or_else(|| too_long(&self))
                };
                range_items(start, len)
            }
        }
    )*};
}

integer_ranges!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

// u128 does not fit i128 arithmetic; its lengths are computed unsigned.
impl IntoItems<u128> for Range<u128> {
    type Iter = RangeItems<u128>;
    const HELD: bool = true;
    const EXACT: bool = true;
    fn into_items(self) -> Self::Iter {
        let len = self.end.saturating_sub(self.start);
        let len = usize::try_from(len).unwrap_or_else(|_| too_long(&self));
        range_items(self.start, len)
    }
}

impl IntoItems<i128> for Range<i128> {
    type Iter = RangeItems<i128>;
    const HELD: bool = true;
    const EXACT: bool = true;
    fn into_items(self) -> Self::Iter {
        let len = if self.end <= self.start {
            0
        } else {
            let span = self.end.abs_diff(self.start);
            usize::try_from(span).unwrap_or_else(|_| too_long(&self))
        };
        range_items(self.start, len)
    }
}

impl IntoItems<u128> for RangeInclusive<u128> {
    type Iter = RangeItems<u128>;
    const HELD: bool = true;
    const EXACT: bool = true;
    fn into_items(self) -> Self::Iter {
        let (start, end) = (*self.start(), *self.end());
        let len = if self.is_empty() {
            0
        } else {
            let span = (end - start).checked_add(1);
            span.and_then(|span| usize::try_from(span).ok())
                .unwrap_or_else(|| too_long(&self))
        };
        range_items(start, len)
    }
}

impl IntoItems<i128> for RangeInclusive<i128> {
    type Iter = RangeItems<i128>;
    const HELD: bool = true;
    const EXACT: bool = true;
    fn into_items(self) -> Self::Iter {
        let (start, end) = (*self.start(), *self.end());
        let len = if self.is_empty() {
            0
        } else {
            let span = end.abs_diff(start).checked_add(1);
            span.and_then(|span| usize::try_from(span).ok())
                .unwrap_or_else(|| too_long(&self))
        };
        range_items(start, len)
    }
}

#[cfg(test)]
mod tests {
    use rayon::iter::plumbing::Producer;

    /// A range's pieces, folded or stepped, from either end, at the types' limits.
    #[test]
    fn range_pieces_fold_and_step_alike_to_the_limits() {
        fn check<T: RangeInt + PartialEq>(items: RangeItems<T>, expected: Vec<T>) {
            let n = expected.len();
            for cut in [0, 1, n / 2, n.saturating_sub(1), n] {
                let (a, b) = Producer::split_at(items, cut.min(n));
                let folded: Vec<T> = Producer::into_iter(a).chain(Producer::into_iter(b)).fold(
                    Vec::new(),
                    |mut v, x| {
                        v.push(x);
                        v
                    },
                );
                assert_eq!(folded, expected);
                let mut stepped: Vec<T> = Producer::into_iter(a).collect();
                stepped.extend(
                    Producer::into_iter(b)
                        .rev()
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev(),
                );
                assert_eq!(stepped, expected);
                // Folding what is left after stepping from both ends.
                let mut iter = Producer::into_iter(items);
                let first = iter.next();
                let last = iter.next_back();
                let middle: Vec<T> = iter.fold(Vec::new(), |mut v, x| {
                    v.push(x);
                    v
                });
                let mut rebuilt: Vec<T> = first.into_iter().collect();
                rebuilt.extend(middle);
                rebuilt.extend(last);
                assert_eq!(rebuilt, expected);
            }
        }
        check((0..=255u8).into_items(), (0..=255u8).collect());
        check((-128..=127i8).into_items(), (-128..=127i8).collect());
        check(
            (u64::MAX - 3..=u64::MAX).into_items(),
            (u64::MAX - 3..=u64::MAX).collect(),
        );
        check((5..5u32).into_items(), Vec::new());
        check(
            (i128::MIN..i128::MIN + 3).into_items(),
            (i128::MIN..i128::MIN + 3).collect(),
        );
    }

    use super::*;
    use rayon::prelude::*;

    fn collect<T: Send, I: IntoItems<T>>(items: I) -> Vec<T> {
        items.into_items().collect()
    }

    #[test]
    fn ranges_of_every_width_match_their_serial_iteration() {
        let _serial = crate::timing_test();
        assert_eq!(collect(3u64..9), (3u64..9).collect::<Vec<_>>());
        assert_eq!(collect(-5i64..=5), (-5i64..=5).collect::<Vec<_>>());
        assert_eq!(collect(250u8..=255), (250u8..=255).collect::<Vec<_>>());
        assert_eq!(collect(-128i8..=127).len(), 256);
        assert_eq!(
            collect(i32::MIN..i32::MIN + 3),
            vec![i32::MIN, i32::MIN + 1, i32::MIN + 2]
        );
        assert_eq!(
            collect(u128::MAX - 2..u128::MAX),
            vec![u128::MAX - 2, u128::MAX - 1]
        );
        assert_eq!(collect(-2i128..1), vec![-2, -1, 0]);
        assert_eq!(collect(-2i128..=1), vec![-2, -1, 0, 1]);
        assert_eq!(
            collect(u128::MAX - 1..=u128::MAX),
            vec![u128::MAX - 1, u128::MAX]
        );
        assert_eq!(
            collect(i128::MIN..=i128::MIN + 1),
            vec![i128::MIN, i128::MIN + 1]
        );
        assert_eq!(
            collect(u64::MAX - 1..=u64::MAX),
            vec![u64::MAX - 1, u64::MAX]
        );
    }

    #[test]
    #[allow(clippy::reversed_empty_ranges)]
    fn empty_and_reversed_ranges_are_empty() {
        assert!(collect(5u64..5).is_empty());
        assert!(collect(9u64..3).is_empty());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 3i32..=1;
        assert!(collect(reversed).is_empty());
        assert!(collect(5u128..1).is_empty());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 5u128..=1;
        assert!(collect(reversed).is_empty());
    }

    #[test]
    fn collections_and_wrapped_iterators() {
        let _serial = crate::timing_test();
        assert_eq!(collect(vec![1, 2, 3]), vec![1, 2, 3]);
        assert_eq!(collect([4, 5]), vec![4, 5]);
        assert_eq!(collect(VecDeque::from(vec![7, 8])), vec![7, 8]);
        assert_eq!(collect(vec![1, 2].into_boxed_slice()), vec![1, 2]);
        let v = vec![1, 2, 3];
        assert_eq!(collect(&v), vec![&1, &2, &3]);
        assert_eq!(
            collect(ParIter(v.par_chunks(2))),
            vec![&[1, 2][..], &[3][..]]
        );
        let odd = (0..10u32).into_par_iter().filter(|x| x % 2 == 1);
        assert_eq!(collect(ParIter::collected(odd)), vec![1, 3, 5, 7, 9]);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn ranges_too_long_to_count_panic_clearly() {
        let err = std::panic::catch_unwind(|| collect(0u128..u128::MAX).len()).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("more items than a usize can count"), "{msg}");
    }
}
