//! rayon producer adapters: one that times the leaf pieces rayon runs, and one that turns a
//! producer back into an indexed parallel iterator.

use crate::units::elapsed_ns;
use rayon::iter::plumbing::{
    bridge_producer_consumer, Consumer, Folder, Producer, ProducerCallback, UnindexedConsumer,
};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A producer that adds the time each leaf piece takes to run to `busy_ns`. Rayon runs every
/// piece it no longer splits through `fold_with`; pieces hold at least `min_len` items, so
/// two clock reads per piece are lost in the work.
pub(crate) struct TimedProducer<'a, P> {
    pub(crate) inner: P,
    pub(crate) busy_ns: &'a AtomicU64,
}

impl<P: Producer> Producer for TimedProducer<'_, P> {
    type Item = P::Item;
    type IntoIter = P::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        self.inner.into_iter()
    }

    fn min_len(&self) -> usize {
        self.inner.min_len()
    }

    fn max_len(&self) -> usize {
        self.inner.max_len()
    }

    fn split_at(self, index: usize) -> (Self, Self) {
        let (left, right) = self.inner.split_at(index);
        let busy_ns = self.busy_ns;
        (
            TimedProducer {
                inner: left,
                busy_ns,
            },
            TimedProducer {
                inner: right,
                busy_ns,
            },
        )
    }

    fn fold_with<G: Folder<Self::Item>>(self, folder: G) -> G {
        let start = Instant::now();
        let folder = self.inner.fold_with(folder);
        self.busy_ns.fetch_add(elapsed_ns(start), Ordering::Relaxed);
        folder
    }
}

/// A rayon producer seen as an indexed parallel iterator again, so that the rest of a
/// profiled call (or a whole call) can use rayon's `with_min_len`, `map` and collection
/// straight into the output `Vec`.
pub(crate) struct ProducerIter<P> {
    pub(crate) producer: P,
    pub(crate) len: usize,
}

impl<P> ParallelIterator for ProducerIter<P>
where
    P: Producer,
    P::Item: Send,
{
    type Item = P::Item;

    fn drive_unindexed<C>(self, consumer: C) -> C::Result
    where
        C: UnindexedConsumer<Self::Item>,
    {
        bridge_producer_consumer(self.len, self.producer, consumer)
    }

    fn opt_len(&self) -> Option<usize> {
        Some(self.len)
    }
}

impl<P> IndexedParallelIterator for ProducerIter<P>
where
    P: Producer,
    P::Item: Send,
{
    fn drive<C: Consumer<Self::Item>>(self, consumer: C) -> C::Result {
        bridge_producer_consumer(self.len, self.producer, consumer)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn with_producer<CB: ProducerCallback<Self::Item>>(self, callback: CB) -> CB::Output {
        callback.callback(self.producer)
    }
}
