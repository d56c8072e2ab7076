//! A queue of flow deadlines ordered by time, revalidated lazily.
//!
//! A flow has one queue entry, pushed when it is created. Packets move the flow's real
//! deadline later without touching the queue. When the entry comes due, the table compares
//! it with the flow's real deadline and either expires the flow or pushes a new entry, so
//! the queue costs O(log n) per flow per timeout period instead of per packet. Entries of
//! flows that ended another way are recognised by their slot generation and dropped.
//!
//! Invariant: every live flow has an entry whose time is at or before its real deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One queued deadline: the last packet time at which the flow is still alive, and the
/// slot (index and generation) of the flow it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Deadline {
    /// Microseconds of packet time. Field order matters: entries sort by time first.
    pub at_us: u64,
    /// Slot index in the flow table.
    pub slot: u32,
    /// Generation of the slot when the entry was pushed.
    pub generation: u32,
}

/// Min-heap of deadlines.
#[derive(Debug, Default)]
pub(super) struct DeadlineQueue {
    heap: BinaryHeap<Reverse<Deadline>>,
}

impl DeadlineQueue {
    pub fn with_capacity(capacity: usize) -> Self {
        DeadlineQueue {
            heap: BinaryHeap::with_capacity(capacity),
        }
    }

    pub fn push(&mut self, deadline: Deadline) {
        self.heap.push(Reverse(deadline));
    }

    /// Removes and returns the earliest entry whose time is before `now_us`.
    pub fn pop_due(&mut self, now_us: u64) -> Option<Deadline> {
        let Reverse(earliest) = *self.heap.peek()?;
        if earliest.at_us >= now_us {
            return None;
        }
        self.heap.pop();
        Some(earliest)
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }
}
