//! Which worker thread gets a new connection: the one with the fewest open connections.
//!
//! Each worker counts the connections it holds (from hand-off to close, parked ones
//! included). The acceptor picks the smallest count; among equals it goes round robin from
//! the worker after the last one picked, so a burst of new connections on an idle gateway is
//! dealt out in turn instead of all to worker 0. Counts are plain atomics: the acceptor is
//! the only writer that increments, connection tasks on the workers decrement, and a count
//! read a moment late only makes one pick slightly less even.
//!
//! The counts are the `mfa_gateway_worker_connections` gauges themselves
//! ([`WorkerGauges`]), so what the metrics show is exactly what the choice is made on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::metrics::WorkerGauges;

/// Open connections per worker, and where the round robin among equals continues.
#[derive(Debug)]
pub struct Balance {
    open: Arc<WorkerGauges>,
    next: AtomicUsize,
}

impl Balance {
    /// Balances over the workers `open` counts.
    pub fn new(open: Arc<WorkerGauges>) -> Self {
        Self {
            open,
            next: AtomicUsize::new(0),
        }
    }

    /// The worker for the next connection among those `usable` accepts, or `None` if it
    /// accepts none.
    pub fn pick(&self, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.open.workers();
        if n == 0 {
            return None;
        }
        let start = self.next.load(Ordering::Relaxed) % n;
        let mut best: Option<(usize, usize)> = None;
        for offset in 0..n {
            let i = (start + offset) % n;
            if !usable(i) {
                continue;
            }
            let load = self.open.get(i);
            if best.is_none_or(|(_, b)| load < b) {
                best = Some((i, load));
            }
        }
        let (index, _) = best?;
        self.next.store((index + 1) % n, Ordering::Relaxed);
        Some(index)
    }

    /// Open connections of one worker.
    #[cfg(test)]
    pub fn open(&self, index: usize) -> usize {
        self.open.get(index)
    }
}

/// One connection's share of a worker's count, given back on drop.
#[derive(Debug)]
pub struct Load {
    open: Arc<WorkerGauges>,
    index: usize,
}

impl Load {
    pub fn take(balance: &Balance, index: usize) -> Self {
        balance.open.opened(index);
        Self {
            open: Arc::clone(&balance.open),
            index,
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.open.closed(self.index);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn balance(workers: usize) -> Balance {
        Balance::new(Arc::new(WorkerGauges::new(workers)))
    }

    fn picks(b: &Balance, n: usize) -> (Vec<usize>, Vec<Load>) {
        let mut order = Vec::new();
        let mut held = Vec::new();
        for _ in 0..n {
            let i = b.pick(|_| true).unwrap();
            order.push(i);
            held.push(Load::take(b, i));
        }
        (order, held)
    }

    #[test]
    fn equal_workers_are_dealt_in_turn() {
        let b = balance(3);
        let (order, _held) = picks(&b, 7);
        assert_eq!(order, vec![0, 1, 2, 0, 1, 2, 0]);
        assert_eq!((b.open(0), b.open(1), b.open(2)), (3, 2, 2));
    }

    #[test]
    fn the_least_loaded_worker_gets_the_next_connection() {
        let b = balance(2);
        let (_, mut held) = picks(&b, 4);
        // Both connections of worker 0 close: it gets the next two, then they are equal
        // again and the turn goes on.
        held.retain(|l| l.index != 0);
        assert_eq!((b.open(0), b.open(1)), (0, 2));
        let (order, _more) = picks(&b, 3);
        assert_eq!(order, vec![0, 0, 1]);
        assert_eq!((b.open(0), b.open(1)), (2, 3));
    }

    #[test]
    fn counts_go_back_down_when_connections_end() {
        let b = balance(2);
        let (_, held) = picks(&b, 10);
        assert_eq!(b.open(0) + b.open(1), 10);
        drop(held);
        assert_eq!((b.open(0), b.open(1)), (0, 0));
    }

    #[test]
    fn unusable_workers_are_skipped_and_none_usable_gives_none() {
        let b = balance(3);
        for _ in 0..5 {
            let i = b.pick(|i| i != 1).unwrap();
            assert_ne!(i, 1);
            std::mem::forget(Load::take(&b, i));
        }
        assert_eq!(b.open(1), 0);
        assert_eq!(b.pick(|_| false), None);
    }

    #[test]
    fn the_counts_are_the_metrics_gauges() {
        let m = crate::metrics::Metrics::new();
        let b = Balance::new(m.register_workers(2));
        let (_, held) = picks(&b, 3);
        let text = m.render();
        assert!(
            text.contains("mfa_gateway_worker_connections{worker=\"0\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("mfa_gateway_worker_connections{worker=\"1\"} 1\n"),
            "{text}"
        );
        drop(held);
        let text = m.render();
        assert!(
            text.contains("mfa_gateway_worker_connections{worker=\"0\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("mfa_gateway_worker_connections{worker=\"1\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn no_workers_gives_none() {
        assert_eq!(balance(0).pick(|_| true), None);
    }

    #[test]
    fn one_worker_takes_everything() {
        let b = balance(1);
        let (order, _held) = picks(&b, 3);
        assert_eq!(order, vec![0, 0, 0]);
    }
}
