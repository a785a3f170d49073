//! The queued deadlines of the buffered traces, earliest first.
//!
//! Nearly every entry is queued when its trace starts, at `now + min(idle,
//! max_wait)` with a `now` that never goes back and a generation that only
//! grows: those arrive in order, and a FIFO holds them (a push and a pop
//! each touch one end of a ring, in memory read in order). The few others
//! (a deadline queued again because the trace had more spans, traces
//! restored from a checkpoint, a reload that shortened `idle`) go to a
//! binary heap. A heap of every entry, a million at 300k spans/s, cost a
//! cache miss per level on each pop (~5% of the detection thread).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use tracewarden_model::TraceId;

/// (deadline, generation, trace).
pub(super) type Entry = (u64, u64, TraceId);

#[derive(Default)]
pub(super) struct Deadlines {
    /// Entries in nondecreasing order.
    in_order: VecDeque<Entry>,
    out_of_order: BinaryHeap<Reverse<Entry>>,
}

impl Deadlines {
    pub(super) fn push(&mut self, entry: Entry) {
        if self.in_order.back().is_none_or(|last| *last <= entry) {
            self.in_order.push_back(entry);
        } else {
            self.out_of_order.push(Reverse(entry));
        }
    }

    /// The earliest entry.
    pub(super) fn peek(&self) -> Option<Entry> {
        if self.earliest_in_order() {
            self.in_order.front().copied()
        } else {
            self.out_of_order.peek().map(|Reverse(entry)| *entry)
        }
    }

    /// Takes the earliest entry.
    pub(super) fn pop(&mut self) -> Option<Entry> {
        if self.earliest_in_order() {
            self.in_order.pop_front()
        } else {
            self.out_of_order.pop().map(|Reverse(entry)| entry)
        }
    }

    /// Whether the earliest entry is the FIFO's front.
    fn earliest_in_order(&self) -> bool {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(Reverse(b))) => a <= b,
            (front, _) => front.is_some(),
        }
    }

    pub(super) fn clear(&mut self) {
        self.in_order.clear();
        self.out_of_order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TraceId {
        let mut bytes = [1u8; 16];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        TraceId::from_bytes(bytes)
    }

    /// Pops come out as a single binary heap's would, whatever the order of
    /// the pushes, with pops interleaved.
    #[test]
    fn pops_in_the_order_of_one_heap() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut queue = Deadlines::default();
        let mut heap = BinaryHeap::new();
        let mut now = 0u64;
        let mut generation = 0u64;
        let (mut fifo_pushes, mut heap_pushes) = (0, 0);
        for _ in 0..20_000 {
            match next() % 10 {
                // A trace starts: in order.
                0..=5 => {
                    now += next() % 3;
                    generation += 1;
                    let entry = (now + 5, generation, id(generation));
                    fifo_pushes += usize::from(queue.in_order.back().is_none_or(|l| *l <= entry));
                    queue.push(entry);
                    heap.push(Reverse(entry));
                }
                // A re-queue or a restore: anywhere.
                6 => {
                    let entry = (now + next() % 8, next() % (generation + 1), id(next() % 50));
                    heap_pushes += usize::from(queue.in_order.back().is_some_and(|l| *l > entry));
                    queue.push(entry);
                    heap.push(Reverse(entry));
                }
                _ => {
                    assert_eq!(queue.peek(), heap.peek().map(|Reverse(e)| *e));
                    assert_eq!(queue.pop(), heap.pop().map(|Reverse(e)| e));
                }
            }
        }
        assert!(
            fifo_pushes > 10_000 && heap_pushes > 500,
            "{fifo_pushes} {heap_pushes}"
        );
        while let Some(Reverse(expected)) = heap.pop() {
            assert_eq!(queue.pop(), Some(expected));
        }
        assert_eq!(queue.pop(), None);
        assert_eq!(queue.peek(), None);
    }
}
