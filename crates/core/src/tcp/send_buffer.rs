//! The send buffer: bytes the application wrote, from SND.UNA onward.
//!
//! Acknowledged bytes are consumed from the front; segments are copied out
//! at an offset from the front. Storage grows lazily up to the capacity, so
//! an idle connection does not hold megabytes, and is reused afterwards (no
//! allocation per segment in steady state).

use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct SendBuffer {
    data: VecDeque<u8>,
    capacity: usize,
}

impl SendBuffer {
    pub fn new(capacity: usize) -> Self {
        SendBuffer {
            data: VecDeque::new(),
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.data.len())
    }

    /// Appends as much of `data` as fits; returns how much.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        self.data.extend(&data[..n]);
        n
    }

    /// Copies bytes starting `offset` bytes after the front into `dst`.
    pub fn copy_out(&self, offset: usize, dst: &mut [u8]) -> usize {
        if offset >= self.data.len() {
            return 0;
        }
        let n = dst.len().min(self.data.len() - offset);
        let (a, b) = self.data.as_slices();
        let mut copied = 0;
        if offset < a.len() {
            let take = n.min(a.len() - offset);
            dst[..take].copy_from_slice(&a[offset..offset + take]);
            copied = take;
        }
        if copied < n {
            let start = (offset + copied) - a.len();
            let take = n - copied;
            dst[copied..n].copy_from_slice(&b[start..start + take]);
        }
        n
    }

    /// Drops `n` acknowledged bytes from the front.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.data.len());
        self.data.drain(..n);
    }

    /// Changes the capacity; never drops queued data (a smaller capacity
    /// takes effect as the data drains).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn write_is_bounded_by_capacity() {
        let mut b = SendBuffer::new(10);
        assert_eq!(b.write(b"hello world"), 10);
        assert_eq!(b.free(), 0);
        b.consume(6);
        assert_eq!(b.write(b"!!!"), 3);
        let mut out = [0u8; 16];
        assert_eq!(b.copy_out(0, &mut out), 7);
        assert_eq!(&out[..7], b"worl!!!");
        assert_eq!(b.copy_out(7, &mut out), 0);
    }

    proptest! {
        #[test]
        fn behaves_like_a_byte_queue(ops in proptest::collection::vec((0u8..3, 0usize..300), 1..60)) {
            let mut b = SendBuffer::new(1000);
            let mut model: Vec<u8> = Vec::new();
            let mut next = 0u8;
            for (op, n) in ops {
                match op {
                    0 => {
                        let data: Vec<u8> = (0..n).map(|_| { next = next.wrapping_add(1); next }).collect();
                        let w = b.write(&data);
                        prop_assert_eq!(w, n.min(1000 - model.len()));
                        model.extend_from_slice(&data[..w]);
                    }
                    1 => { b.consume(n); let k = n.min(model.len()); model.drain(..k); }
                    _ => {
                        let off = n % (model.len() + 1);
                        let mut out = vec![0u8; 100];
                        let c = b.copy_out(off, &mut out);
                        let want = &model[off.min(model.len())..(off + 100).min(model.len())];
                        prop_assert_eq!(&out[..c], want);
                    }
                }
                prop_assert_eq!(b.len(), model.len());
            }
        }
    }
}
