//! Links: how frames reach the stack. The [`Link`] trait moves *batches*
//! of frames, each with its [`FrameMeta`] (segmentation offload, checksums
//! the kernel validated); [`TapLink`] is a TAP/TUN device with
//! `IFF_VNET_HDR` offloads, [`MemoryLink`] connects two stacks in one process,
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
pub mod gso;
pub mod impair;
pub mod loss;
mod memory;
pub mod netif;
pub mod nft;
pub mod packet;
pub mod queue;
pub mod raw;
pub mod tap;
pub mod trace;
mod txq;
pub mod unix;
mod vnet;

pub use impair::{FaultModel, FaultStats, Impairment, LinkEvent, LinkEventKind};
pub use loss::GilbertElliott;
pub use memory::MemoryLink;
pub use packet::{PacketConfig, PacketLink};
pub use queue::{Aqm, CoDelParams};
pub use raw::{RawConfig, RawLink};
pub use tap::{TapConfig, TapLink, TapMode, TapStats};
pub use trace::Trace;
pub use unix::{SocketPairLink, SocketPairStats};

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
    /// The link completes partial transport checksums of the frames it
    /// sends ([`FrameMeta::csum_partial`]: the kernel behind a vnet header,
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`), so a stack may leave its
    /// super-segments' checksums partial (`StackConfig::tx_csum_offload`).
    pub tx_checksum_offload: bool,
}

/// What a link knows about one frame of a [`Batch`] besides its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameMeta {
    /// Transmit: the frame is a TCP super-segment (TSO/GSO) that the link
    /// must cut into segments of this many payload bytes (virtio
    /// `gso_size`, Linux `gso_size`). Receive: the frame is a coalesced
    /// super-segment (GRO) of segments this size. `None`: one packet.
    pub gso_size: Option<u16>,
    /// Receive: the link (the kernel) already validated the frame's IP and
    /// transport checksums, so the stack may skip verifying them.
    pub csum_verified: bool,
    /// The transport checksum is *partial* (virtio
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`): the field at `start + offset` holds
    /// only the pseudo-header sum (with the transport length of the whole
    /// frame). Receive: the frame never crossed a wire (it comes from the
    /// local kernel), so it is trusted (`csum_verified`). Transmit: the
    /// stack left it for the link to complete (a link with
    /// [`LinkCaps::tx_checksum_offload`] hands it to the kernel; any other
    /// completes it in software). Middleware that can damage or cut frames
    /// must complete the checksum first ([`gso::complete_checksum`],
    /// [`gso::segment`]).
    pub csum_partial: Option<CsumPartial>,
}

/// Where a partial checksum is (virtio `csum_start`/`csum_offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsumPartial {
    /// Offset in the frame where checksumming starts (the transport header).
    pub start: u16,
    /// Offset of the checksum field from `start`.
    pub offset: u16,
}

/// A batch of frames in reusable buffers: no allocation per frame once the
/// batch has grown to its working size. Each frame carries a [`FrameMeta`].
///
/// A slot's buffer keeps its size between uses (a frame is a prefix of
/// it), so links and drivers can write frames in place with
/// [`Batch::fill_with`] without clearing or zeroing memory.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    metas: Vec<FrameMeta>,
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

    /// Appends a copy of `frame` (one plain packet), reusing an old buffer.
    pub fn push(&mut self, frame: &[u8]) {
        self.push_with(frame, FrameMeta::default());
    }

    /// Appends a copy of `frame` with its metadata.
    pub fn push_with(&mut self, frame: &[u8], meta: FrameMeta) {
        let b = self.slot(frame.len());
        b[..frame.len()].copy_from_slice(frame);
        self.commit(frame.len(), meta);
    }

    /// Writes a frame in place: lends the next slot's buffer (at least
    /// `max_len` bytes, contents unspecified) to `fill`, which writes one
    /// frame at its start and returns the frame's length and metadata — or
    /// `None` to leave the batch unchanged. Returns whether a frame was
    /// added. The buffer is allocated (and zeroed) once, when the slot
    /// first needs that size.
    pub fn fill_with<E>(
        &mut self,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<Option<(usize, FrameMeta)>, E>,
    ) -> Result<bool, E> {
        let b = self.slot(max_len);
        match fill(b)? {
            Some((n, meta)) => {
                self.commit(n.min(max_len), meta);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn slot(&mut self, min_len: usize) -> &mut [u8] {
        if self.len == self.bufs.len() {
            self.bufs.push(Vec::new());
            self.lens.push(0);
            self.metas.push(FrameMeta::default());
        }
        let b = &mut self.bufs[self.len];
        if b.len() < min_len {
            b.resize(min_len, 0);
        }
        b
    }

    fn commit(&mut self, len: usize, meta: FrameMeta) {
        self.lens[self.len] = len;
        self.metas[self.len] = meta;
        self.len += 1;
    }

    /// The frames, without their metadata.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs[..self.len]
            .iter()
            .zip(&self.lens[..self.len])
            .map(|(b, n)| &b[..*n])
    }

    /// The frames with their metadata.
    pub fn iter_meta(&self) -> impl Iterator<Item = (&[u8], FrameMeta)> {
        self.iter().zip(self.metas[..self.len].iter().copied())
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
    /// The stack has started to use a local port (a listener, a bound UDP
    /// socket). A link that shares the host's address and filters by port
    /// (raw mode) lets the port's packets in and keeps the kernel from
    /// answering them; it refuses (`AddrInUse`) a port a kernel socket
    /// holds. Default: nothing to do.
    fn open_port(&mut self, _proto: PortProto, _port: u16) -> io::Result<()> {
        Ok(())
    }
    /// The stack no longer uses a port it opened with
    /// [`open_port`](Link::open_port).
    fn close_port(&mut self, _proto: PortProto, _port: u16) {}
}

/// The transport a local port belongs to (see [`Link::open_port`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortProto {
    Tcp,
    Udp,
}

/// Fault-injecting middleware: wraps any link — a [`MemoryLink`], a TAP,
/// a raw socket — with a [`FaultModel`] on its transmit side and, with
/// [`Impaired::with_rx`], another on its receive side, so both directions
/// of a real link can be impaired from the stack's process.
///
/// The models work per packet, as a wire would, even over a link that
/// offloads segmentation: [`Link::caps`] reports `max_segment` = MTU, so a
/// stack configured from it sends no TSO super-segments, and any
/// super-segment that still comes through (a GRO frame received from the
/// kernel, or a TSO frame sent anyway) is cut into MTU-sized packets
/// ([`gso::segment`]) before it enters the model. A partial checksum
/// ([`FrameMeta::csum_partial`], a stack's checksum offload) is completed
/// on the way, so the model — and the wire — see full checksums; `caps`
/// reports no transmit checksum offload. Frames leaving the
/// receive model are never marked `csum_verified`: the stack checks them,
/// so corruption shows up as dropped bad checksums.
///
/// ```
/// use daytona_core::time::{Duration, Instant};
/// use daytona_link::{Batch, FaultModel, Impaired, Impairment, Link, MemoryLink};
///
/// let (a, mut b) = MemoryLink::pair(1500);
/// let tx = Impairment { delay: Duration::from_millis(20), loss: 0.01, ..Impairment::default() };
/// let rx = Impairment { duplicate: 0.01, corrupt: 0.001, ..Impairment::default() };
/// let mut a = Impaired::new(a, FaultModel::new(tx, 1)).with_rx(FaultModel::new(rx, 2));
/// let mut batch = Batch::new();
/// batch.push(&[0u8; 60]);
/// a.send_batch(Instant::ZERO, &batch).unwrap();
/// // Nothing arrives before the delay; the driver waits for `poll_at`.
/// assert_eq!(a.poll_at(), Some(Instant::ZERO + Duration::from_millis(20)));
/// ```
pub struct Impaired<L: Link> {
    inner: L,
    model: FaultModel,
    rx_model: Option<FaultModel>,
    out: Batch,
    rx_in: Batch,
    segs: Batch,
}

impl<L: Link> Impaired<L> {
    /// Impairs what is sent through `inner` with `model`.
    pub fn new(inner: L, model: FaultModel) -> Self {
        Impaired {
            inner,
            model,
            rx_model: None,
            out: Batch::new(),
            rx_in: Batch::new(),
            segs: Batch::new(),
        }
    }

    /// Also impairs what is received from `inner` with `model`.
    pub fn with_rx(mut self, model: FaultModel) -> Self {
        self.rx_model = Some(model);
        self
    }

    pub fn inner(&self) -> &L {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// The transmit side's model (its `stats` say what it did).
    pub fn model(&self) -> &FaultModel {
        &self.model
    }

    /// The receive side's model, if any.
    pub fn rx_model(&self) -> Option<&FaultModel> {
        self.rx_model.as_ref()
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
        let inner = self.inner.caps();
        LinkCaps {
            max_segment: inner.mtu,
            rx_checksum_verified: inner.rx_checksum_verified && self.rx_model.is_none(),
            // The fault model works on complete packets: partial checksums
            // are completed here, in software, so a stack gains nothing by
            // leaving them.
            tx_checksum_offload: false,
            ..inner
        }
    }

    fn recv_batch(&mut self, now: Instant, batch: &mut Batch) -> io::Result<usize> {
        self.flush(now)?;
        let Some(rx) = self.rx_model.as_mut() else {
            return self.inner.recv_batch(now, batch);
        };
        self.rx_in.clear();
        self.inner.recv_batch(now, &mut self.rx_in)?;
        let ethernet = self.inner.caps().ethernet;
        for (frame, meta) in self.rx_in.iter_meta() {
            if meta.gso_size.is_none() && meta.csum_partial.is_none() {
                rx.send(now, frame);
                continue;
            }
            self.segs.clear();
            gso::segment(frame, meta, ethernet, &mut self.segs);
            for seg in self.segs.iter() {
                rx.send(now, seg);
            }
        }
        let mut n = 0;
        while let Some(f) = rx.deliver(now) {
            batch.push(&f);
            n += 1;
        }
        Ok(n)
    }

    fn send_batch(&mut self, now: Instant, batch: &Batch) -> io::Result<usize> {
        let ethernet = self.inner.caps().ethernet;
        for (frame, meta) in batch.iter_meta() {
            if meta.gso_size.is_none() && meta.csum_partial.is_none() {
                self.model.send(now, frame);
                continue;
            }
            // Cut into packets, or a partial checksum completed: what the
            // model delivers is what a wire would carry.
            self.segs.clear();
            gso::segment(frame, meta, ethernet, &mut self.segs);
            for seg in self.segs.iter() {
                self.model.send(now, seg);
            }
        }
        self.flush(now)?;
        Ok(batch.len())
    }

    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        self.inner.wait_fd()
    }

    fn open_port(&mut self, proto: PortProto, port: u16) -> io::Result<()> {
        self.inner.open_port(proto, port)
    }

    fn close_port(&mut self, proto: PortProto, port: u16) {
        self.inner.close_port(proto, port)
    }

    fn poll_at(&self) -> Option<Instant> {
        [
            self.model.poll_at(),
            self.rx_model.as_ref().and_then(|m| m.poll_at()),
            self.inner.poll_at(),
        ]
        .into_iter()
        .flatten()
        .min()
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

    /// A link that offloads: hands out queued frames with their metadata
    /// and records what it is asked to send.
    struct Offloading {
        rx: Vec<(Vec<u8>, FrameMeta)>,
        sent: Vec<(Vec<u8>, FrameMeta)>,
    }

    impl Link for Offloading {
        fn caps(&self) -> LinkCaps {
            LinkCaps {
                ethernet: false,
                mtu: 1500,
                max_segment: 65_535,
                rx_checksum_verified: true,
                tx_checksum_offload: true,
            }
        }

        fn recv_batch(&mut self, _now: Instant, batch: &mut Batch) -> io::Result<usize> {
            let n = self.rx.len();
            for (f, m) in self.rx.drain(..) {
                batch.push_with(&f, m);
            }
            Ok(n)
        }

        fn send_batch(&mut self, _now: Instant, batch: &Batch) -> io::Result<usize> {
            self.sent
                .extend(batch.iter_meta().map(|(f, m)| (f.to_vec(), m)));
            Ok(batch.len())
        }
    }

    #[test]
    fn batch_keeps_metadata_per_frame() {
        let mut b = Batch::new();
        let gso = FrameMeta {
            gso_size: Some(1448),
            ..FrameMeta::default()
        };
        b.push(b"plain");
        b.push_with(b"super", gso);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![&b"plain"[..], b"super"]);
        let metas: Vec<FrameMeta> = b.iter_meta().map(|(_, m)| m).collect();
        assert_eq!(metas, vec![FrameMeta::default(), gso]);
        // Buffers are reused, metadata is not left over from before.
        b.clear();
        b.push(b"again");
        b.push(b"plain");
        assert!(b.iter_meta().all(|(_, m)| m == FrameMeta::default()));
        let added = b.fill_with(100, |_| Ok::<_, ()>(None)).unwrap();
        assert!(!added);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn impaired_offloading_link_works_per_packet() {
        use crate::gso::tests::{tcp_checksum_ok, tcp_frame};
        let big = tcp_frame(false, 10_000, 0x18);
        let layout = gso::tcp_layout(&big, false).unwrap();
        // The kernel's GRO frame: a partial checksum, trusted.
        let mut partial = big.clone();
        let pseudo = gso::tcp_pseudo_sum(&partial, layout);
        partial[layout.tcp + 16..layout.tcp + 18].copy_from_slice(&pseudo.to_be_bytes());
        let meta = FrameMeta {
            gso_size: Some(1448),
            csum_verified: true,
            csum_partial: Some(CsumPartial {
                start: layout.tcp as u16,
                offset: 16,
            }),
        };
        let inner = Offloading {
            rx: vec![(partial, meta)],
            sent: Vec::new(),
        };
        let none = || FaultModel::new(Impairment::default(), 1);
        let mut link = Impaired::new(inner, none()).with_rx(none());
        let caps = link.caps();
        assert_eq!(caps.max_segment, 1500, "no TSO through the fault model");
        assert!(!caps.rx_checksum_verified);
        let mut rx = Batch::new();
        let t = Instant::from_secs(1);
        assert_eq!(link.recv_batch(t, &mut rx).unwrap(), 7);
        let mut payload = Vec::new();
        for (f, m) in rx.iter_meta() {
            assert!(f.len() <= 1500);
            assert_eq!(m, FrameMeta::default(), "the stack verifies them");
            let l = gso::tcp_layout(f, false).unwrap();
            assert!(tcp_checksum_ok(f, l));
            payload.extend_from_slice(&f[l.payload..]);
        }
        assert_eq!(payload, big[layout.payload..]);
        assert_eq!(link.rx_model().unwrap().stats.frames, 7);
        // A super-segment sent anyway is cut before the transmit model.
        let mut tx = Batch::new();
        tx.push_with(
            &big,
            FrameMeta {
                gso_size: Some(1448),
                ..FrameMeta::default()
            },
        );
        assert_eq!(link.send_batch(t, &tx).unwrap(), 1);
        let sent = &link.inner().sent;
        assert_eq!(sent.len(), 7);
        assert!(sent
            .iter()
            .all(|(f, m)| f.len() <= 1500 && m.gso_size.is_none()));
    }

    #[test]
    fn impaired_link_completes_partial_checksums_it_is_handed() {
        use crate::gso::tests::{tcp_checksum_ok, tcp_frame};
        // What a stack with checksum offload sends: the super-segment's
        // checksum field holds the pseudo-header sum only.
        let full = tcp_frame(false, 10_000, 0x18);
        let layout = gso::tcp_layout(&full, false).unwrap();
        let pseudo = gso::tcp_pseudo_sum(&full, layout);
        let mut partial = full.clone();
        partial[layout.tcp + 16..layout.tcp + 18].copy_from_slice(&pseudo.to_be_bytes());
        let at = CsumPartial {
            start: layout.tcp as u16,
            offset: 16,
        };
        let small_full = tcp_frame(false, 500, 0x18);
        let mut small = small_full.clone();
        let ps = gso::tcp_pseudo_sum(&small, layout);
        small[layout.tcp + 16..layout.tcp + 18].copy_from_slice(&ps.to_be_bytes());
        let inner = Offloading {
            rx: Vec::new(),
            sent: Vec::new(),
        };
        let mut link = Impaired::new(inner, FaultModel::new(Impairment::default(), 3));
        assert!(!link.caps().tx_checksum_offload);
        let mut tx = Batch::new();
        tx.push_with(
            &partial,
            FrameMeta {
                gso_size: Some(1448),
                csum_partial: Some(at),
                ..FrameMeta::default()
            },
        );
        // One packet's worth, partial too (no segmentation to do).
        tx.push_with(
            &small,
            FrameMeta {
                csum_partial: Some(at),
                ..FrameMeta::default()
            },
        );
        assert_eq!(link.send_batch(Instant::from_secs(1), &tx).unwrap(), 2);
        let sent = &link.inner().sent;
        assert_eq!(sent.len(), 7 + 1);
        let mut payload = Vec::new();
        for (f, m) in &sent[..7] {
            assert_eq!(*m, FrameMeta::default());
            let l = gso::tcp_layout(f, false).unwrap();
            assert!(tcp_checksum_ok(f, l), "every segment's checksum complete");
            payload.extend_from_slice(&f[l.payload..]);
        }
        assert_eq!(payload, full[layout.payload..]);
        // The small frame went through whole, its checksum completed: the
        // same bytes the full checksum path gives.
        assert_eq!(sent[7], (small_full, FrameMeta::default()));
    }

    #[test]
    fn receive_impairment_drops_and_corrupts_what_arrives() {
        let frames = (0..200u8)
            .map(|i| (vec![i; 100], FrameMeta::default()))
            .collect();
        let inner = Offloading {
            rx: frames,
            sent: Vec::new(),
        };
        let rx = Impairment {
            loss: 0.2,
            corrupt: 0.2,
            delay: Duration::from_millis(5),
            ..Impairment::default()
        };
        let mut link = Impaired::new(inner, FaultModel::new(Impairment::default(), 1))
            .with_rx(FaultModel::new(rx, 9));
        let t = Instant::from_secs(1);
        let mut got = Batch::new();
        assert_eq!(
            link.recv_batch(t, &mut got).unwrap(),
            0,
            "held for the delay"
        );
        assert_eq!(link.poll_at(), Some(t + Duration::from_millis(5)));
        let n = link
            .recv_batch(t + Duration::from_millis(5), &mut got)
            .unwrap();
        let s = &link.rx_model().unwrap().stats;
        assert_eq!(n as u64 + s.lost, 200);
        assert!(s.lost > 0 && s.corrupted > 0, "{s:?}");
        let damaged = got.iter().filter(|f| f.iter().any(|b| *b != f[0])).count();
        assert!(damaged > 0);
    }
}
