//! Links: how frames reach the stack. The [`Link`] trait moves *batches*
//! of frames (real links — TAP, raw sockets, AF_PACKET — implement it in
//! the runtime layer), [`MemoryLink`] connects two stacks in one process,
//! and [`Impaired`] is middleware that injects delay, loss, duplication,
//! reordering, corruption and rate limits into any link using the same
//! [`impair::FaultModel`] the simulator uses.
//!
//! `unsafe` is denied crate-wide; only the modules that talk to the OS
//! (file descriptors, sockets, rings) allow it, each block with a
//! `// SAFETY:` comment.
#![deny(unsafe_code)]

pub mod bpf;
mod csum;
pub mod impair;
pub mod loss;
mod memory;
pub mod netif;
pub mod nft;
pub mod packet;
pub mod queue;
pub mod raw;
pub mod trace;

pub use impair::{FaultModel, FaultStats, Impairment, LinkEvent, LinkEventKind};
pub use loss::GilbertElliott;
pub use memory::MemoryLink;
pub use packet::{PacketConfig, PacketLink};
pub use queue::{Aqm, CoDelParams};
pub use raw::{RawConfig, RawLink};
pub use trace::Trace;

use daytona_core::time::Instant;
use std::io;

/// What a link carries and can offload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkCaps {
    /// Frames carry an Ethernet header (else bare IPv4 packets).
    pub ethernet: bool,
    /// IP MTU.
    pub mtu: usize,
    /// Largest segment the link accepts for segmentation offload (TSO),
    /// equal to the MTU when there is none.
    pub max_segment: usize,
    /// Received checksums were verified by the link.
    pub rx_checksum_verified: bool,
}

/// A batch of frames in reusable buffers: no allocation per frame once the
/// batch has grown to its working size.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    bufs: Vec<Vec<u8>>,
    len: usize,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends a copy of `frame`, reusing an old buffer.
    pub fn push(&mut self, frame: &[u8]) {
        if self.len == self.bufs.len() {
            self.bufs.push(Vec::new());
        }
        let b = &mut self.bufs[self.len];
        b.clear();
        b.extend_from_slice(frame);
        self.len += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs[..self.len].iter().map(|b| b.as_slice())
    }
}

/// A packet channel to the stack.
pub trait Link {
    fn caps(&self) -> LinkCaps;
    /// Appends received frames to `batch`; returns how many.
    fn recv_batch(&mut self, now: Instant, batch: &mut Batch) -> io::Result<usize>;
    /// Sends every frame of `batch`; returns how many were accepted.
    fn send_batch(&mut self, now: Instant, batch: &Batch) -> io::Result<usize>;
    /// When frames will next be ready without new input (delayed links).
    fn poll_at(&self) -> Option<Instant> {
        None
    }
    /// A file descriptor that becomes readable when frames arrive, for a
    /// runtime to wait on with epoll/poll; `None` for links without one
    /// (in-memory links are polled).
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// Wraps a link with a fault model on its transmit side.
pub struct Impaired<L: Link> {
    inner: L,
    model: FaultModel,
    out: Batch,
}

impl<L: Link> Impaired<L> {
    pub fn new(inner: L, model: FaultModel) -> Self {
        Impaired {
            inner,
            model,
            out: Batch::new(),
        }
    }

    pub fn inner(&self) -> &L {
        &self.inner
    }

    pub fn model(&self) -> &FaultModel {
        &self.model
    }

    /// Sends every held frame whose time has come.
    pub fn flush(&mut self, now: Instant) -> io::Result<usize> {
        self.out.clear();
        while let Some(f) = self.model.deliver(now) {
            self.out.push(&f);
        }
        if self.out.is_empty() {
            return Ok(0);
        }
        self.inner.send_batch(now, &self.out)
    }
}

impl<L: Link> Link for Impaired<L> {
    fn caps(&self) -> LinkCaps {
        self.inner.caps()
    }

    fn recv_batch(&mut self, now: Instant, batch: &mut Batch) -> io::Result<usize> {
        self.flush(now)?;
        self.inner.recv_batch(now, batch)
    }

    fn send_batch(&mut self, now: Instant, batch: &Batch) -> io::Result<usize> {
        for frame in batch.iter() {
            self.model.send(now, frame);
        }
        self.flush(now)?;
        Ok(batch.len())
    }

    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        self.inner.wait_fd()
    }

    fn poll_at(&self) -> Option<Instant> {
        let mine = self.model.poll_at();
        match (mine, self.inner.poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daytona_core::time::Duration;

    #[test]
    fn impaired_link_delays_and_drops_on_transmit() {
        let (a, mut b) = MemoryLink::pair(1500);
        let model = FaultModel::new(
            Impairment {
                delay: Duration::from_millis(10),
                loss: 0.5,
                ..Impairment::default()
            },
            11,
        );
        let mut a = Impaired::new(a, model);
        let mut batch = Batch::new();
        for i in 0..100u8 {
            batch.push(&[i; 60]);
        }
        let t0 = Instant::from_secs(1);
        a.send_batch(t0, &batch).unwrap();
        let mut rx = Batch::new();
        // Nothing arrives before the delay.
        assert_eq!(b.recv_batch(t0, &mut rx).unwrap(), 0);
        assert_eq!(a.poll_at(), Some(t0 + Duration::from_millis(10)));
        a.flush(t0 + Duration::from_millis(10)).unwrap();
        let n = b.recv_batch(t0, &mut rx).unwrap();
        let lost = a.model().stats.lost as usize;
        assert_eq!(n + lost, 100);
        assert!(lost > 25 && lost < 75, "lost {lost}");
        // Order is kept for frames that were not reordered.
        let firsts: Vec<u8> = rx.iter().map(|f| f[0]).collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]));
    }
}
