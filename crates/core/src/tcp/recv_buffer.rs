//! The receive buffer: in-order data waiting for the application, plus
//! out-of-order data held in place until the holes before it fill
//! (RFC 9293 §3.10.7.4: segments beyond RCV.NXT are held for later
//! processing). Any number of holes, bounded by the buffer's capacity.
//!
//! Storage is a ring of `capacity` bytes, allocated on first use. Offsets
//! given to [`ReceiveBuffer::write_at`] are relative to RCV.NXT. Where a
//! retransmission overlaps bytes already held, the bytes first received are
//! kept (the peer must send identical bytes; keeping the first copy means a
//! misbehaving peer cannot rewrite data already acknowledged by a SACK).

use super::assembler::Assembler;

/// What one `write_at` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOutcome {
    /// Bytes that became contiguous: RCV.NXT moves by this much.
    pub advanced: usize,
    /// New bytes stored, in order or not.
    pub stored: usize,
    /// Bytes that were already held.
    pub duplicate: usize,
    /// Bytes beyond the window, dropped.
    pub trimmed: usize,
}

#[derive(Debug, Clone)]
pub struct ReceiveBuffer {
    ring: Vec<u8>,
    capacity: usize,
    /// Ring index of the first readable byte.
    head: usize,
    /// Contiguous bytes ready for the application.
    readable: usize,
    /// Out-of-order ranges, offsets relative to RCV.NXT.
    ooo: Assembler,
}

impl ReceiveBuffer {
    pub fn new(capacity: usize) -> Self {
        ReceiveBuffer {
            ring: Vec::new(),
            capacity: capacity.max(1),
            head: 0,
            readable: 0,
            ooo: Assembler::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Grows the buffer. Shrinking takes effect only as far as the data held
    /// allows; stored data is never dropped.
    pub fn set_capacity(&mut self, capacity: usize) {
        let used_end = self.readable + self.ooo.iter().last().map_or(0, |(_, e)| e);
        let capacity = capacity.max(used_end).max(1);
        if self.ring.is_empty() {
            self.capacity = capacity;
            return;
        }
        // Re-lay the ring out linearly at the new size.
        let mut ring = vec![0u8; capacity];
        for (i, byte) in ring
            .iter_mut()
            .enumerate()
            .take(used_end.min(self.capacity))
        {
            *byte = self.ring[(self.head + i) % self.capacity];
        }
        self.ring = ring;
        self.capacity = capacity;
        self.head = 0;
    }

    pub fn readable(&self) -> usize {
        self.readable
    }

    /// Space from RCV.NXT onward (out-of-order data sits inside it).
    pub fn window(&self) -> usize {
        self.capacity - self.readable
    }

    pub fn has_out_of_order(&self) -> bool {
        !self.ooo.is_empty()
    }

    pub fn out_of_order_bytes(&self) -> usize {
        self.ooo.covered()
    }

    /// Out-of-order ranges relative to RCV.NXT, most recently received first
    /// (RFC 2018 §4), at most four.
    pub fn sack_ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.ooo.most_recent()
    }

    fn ring_copy_in(&mut self, offset: usize, data: &[u8]) {
        let cap = self.capacity;
        let start = (self.head + self.readable + offset) % cap;
        let first = data.len().min(cap - start);
        self.ring[start..start + first].copy_from_slice(&data[..first]);
        let rest = data.len() - first;
        self.ring[..rest].copy_from_slice(&data[first..]);
    }

    /// Stores `data` at `offset` bytes after RCV.NXT.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> WriteOutcome {
        let window = self.window();
        let mut out = WriteOutcome::default();
        if offset >= window {
            out.trimmed = data.len();
            return out;
        }
        let keep = data.len().min(window - offset);
        out.trimmed = data.len() - keep;
        if keep == 0 {
            return out;
        }
        if self.ring.is_empty() {
            self.ring = vec![0u8; self.capacity];
        }
        let data = &data[..keep];
        // Copy only the bytes not held yet (first copy wins).
        let mut gaps: [(usize, usize); 8] = [(0, 0); 8];
        let mut n_gaps = 0;
        let mut overflow = false;
        self.ooo.for_each_gap(offset, offset + keep, |s, e| {
            if n_gaps < gaps.len() {
                gaps[n_gaps] = (s, e);
                n_gaps += 1;
            } else {
                overflow = true;
            }
        });
        if overflow {
            // Many small holes under one segment: collect them all.
            let mut all = Vec::new();
            self.ooo
                .for_each_gap(offset, offset + keep, |s, e| all.push((s, e)));
            for (s, e) in all {
                self.ring_copy_in(s, &data[s - offset..e - offset]);
            }
        } else {
            for &(s, e) in &gaps[..n_gaps] {
                self.ring_copy_in(s, &data[s - offset..e - offset]);
            }
        }
        out.stored = self.ooo.add(offset, offset + keep);
        out.duplicate = keep - out.stored;
        let advanced = self.ooo.pop_front();
        self.readable += advanced;
        out.advanced = advanced;
        out
    }

    /// Reads and consumes in-order data.
    pub fn read(&mut self, dst: &mut [u8]) -> usize {
        let n = self.peek(dst);
        self.head = (self.head + n) % self.capacity;
        self.readable -= n;
        if self.readable == 0 && self.ooo.is_empty() {
            self.head = 0;
        }
        n
    }

    /// Copies in-order data without consuming it.
    pub fn peek(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.readable);
        if n == 0 {
            return 0;
        }
        let cap = self.capacity;
        let first = n.min(cap - self.head);
        dst[..first].copy_from_slice(&self.ring[self.head..self.head + first]);
        dst[first..n].copy_from_slice(&self.ring[..n - first]);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn holes_fill_in_any_order() {
        let mut b = ReceiveBuffer::new(100);
        let o = b.write_at(10, b"0123456789");
        assert_eq!((o.advanced, o.stored), (0, 10));
        assert_eq!(b.sack_ranges().collect::<Vec<_>>(), vec![(10, 20)]);
        let o = b.write_at(0, b"abcdefghij");
        assert_eq!(o.advanced, 20);
        let mut out = [0u8; 32];
        assert_eq!(b.read(&mut out), 20);
        assert_eq!(&out[..20], b"abcdefghij0123456789");
    }

    #[test]
    fn window_trims_and_duplicates_are_counted() {
        let mut b = ReceiveBuffer::new(8);
        let o = b.write_at(0, b"0123456789");
        assert_eq!((o.advanced, o.trimmed), (8, 2));
        assert_eq!(b.window(), 0);
        let o = b.write_at(0, b"x");
        assert_eq!(o.trimmed, 1);
        let mut out = [0u8; 4];
        b.read(&mut out);
        let o = b.write_at(0, b"89");
        assert_eq!(o.advanced, 2);
        let mut b = ReceiveBuffer::new(64);
        b.write_at(5, b"hello");
        let o = b.write_at(5, b"HELLO");
        assert_eq!((o.duplicate, o.stored), (5, 0));
        b.write_at(0, b"01234");
        let mut out = [0u8; 10];
        b.read(&mut out);
        assert_eq!(&out, b"01234hello", "the first copy is kept");
    }

    proptest! {
        #[test]
        fn any_arrival_order_yields_the_stream(
            chunks in proptest::collection::vec((0usize..3000, 1usize..400), 1..120),
            reads in proptest::collection::vec(1usize..700, 1..40),
        ) {
            let stream: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 256) as u8).collect();
            let mut b = ReceiveBuffer::new(1500);
            let mut rcv_nxt = 0usize; // absolute
            let mut got = Vec::new();
            let mut reads = reads.into_iter().cycle();
            for (start, len) in chunks {
                let end = (start + len).min(stream.len());
                if start >= end { continue; }
                // Deliver only what is at or after rcv_nxt (the connection trims).
                let s = start.max(rcv_nxt);
                if s < end {
                    let o = b.write_at(s - rcv_nxt, &stream[s..end]);
                    rcv_nxt += o.advanced;
                    prop_assert!(b.readable() + b.window() == 1500);
                }
                let mut buf = vec![0u8; reads.next().unwrap_or(1)];
                let n = b.read(&mut buf);
                got.extend_from_slice(&buf[..n]);
                prop_assert_eq!(&got[..], &stream[..got.len()]);
                let covered: usize = b.sack_ranges().map(|(s, e)| e - s).sum();
                prop_assert!(covered <= b.out_of_order_bytes());
            }
        }
    }
}
