//! Two ends of an in-memory wire.

use crate::{Batch, Link, LinkCaps};
use daytona_core::time::Instant;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;

type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end of an in-memory point-to-point link.
pub struct MemoryLink {
    rx: Queue,
    tx: Queue,
    caps: LinkCaps,
}

impl MemoryLink {
    /// Two connected ends carrying bare IP packets with the given MTU.
    pub fn pair(mtu: usize) -> (MemoryLink, MemoryLink) {
        let a: Queue = Default::default();
        let b: Queue = Default::default();
        let caps = LinkCaps {
            ethernet: false,
            mtu,
            max_segment: mtu,
            rx_checksum_verified: false,
            tx_checksum_offload: false,
        };
        (
            MemoryLink {
                rx: a.clone(),
                tx: b.clone(),
                caps,
            },
            MemoryLink { rx: b, tx: a, caps },
        )
    }
}

impl Link for MemoryLink {
    fn caps(&self) -> LinkCaps {
        self.caps
    }

    fn recv_batch(&mut self, _now: Instant, batch: &mut Batch) -> io::Result<usize> {
        let mut n = 0;
        while let Some(f) = self.rx.borrow_mut().pop_front() {
            batch.push(&f);
            n += 1;
        }
        Ok(n)
    }

    fn send_batch(&mut self, _now: Instant, batch: &Batch) -> io::Result<usize> {
        let mut q = self.tx.borrow_mut();
        for f in batch.iter() {
            if f.len() > self.caps.mtu + 14 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "frame larger than the MTU",
                ));
            }
            q.push_back(f.to_vec());
        }
        Ok(batch.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_in_order() {
        let (mut a, mut b) = MemoryLink::pair(1500);
        let mut batch = Batch::new();
        batch.push(b"one");
        batch.push(b"two");
        assert_eq!(a.send_batch(Instant::ZERO, &batch).unwrap(), 2);
        let mut rx = Batch::new();
        assert_eq!(b.recv_batch(Instant::ZERO, &mut rx).unwrap(), 2);
        assert_eq!(
            rx.iter().collect::<Vec<_>>(),
            vec![&b"one"[..], &b"two"[..]]
        );
        let big = Batch::default();
        assert_eq!(a.send_batch(Instant::ZERO, &big).unwrap(), 0);
    }
}
