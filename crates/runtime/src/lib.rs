//! The runtime layer: what drives the sans-IO core over a real link, and
//! the socket API applications use.
//!
//! - [`Driver`]: the single-threaded "bottom half" of the paper: it moves
//!   batches of frames between a [`Link`] and a [`Stack`], fires the
//!   stack's timers and reports when it next needs to run.
//! - [`Runtime`]: a stack, a link and the stack thread that drives them,
//!   configured by a [`StackBuilder`] (or `DAYTONA_*` variables).
//! - The socket API, modelled on `std::net`: [`TcpListener`], [`TcpStream`],
//!   [`UdpSocket`], plus [`TcpStream::info`] and [`TcpStream::events`].
//!
//! See `docs/runtime.md` for the design (who drives the stack when,
//! wake-ups, timer modes, busy-polling, shutdown).
#![deny(unsafe_code)]

mod config;
mod events;
mod rt;
mod sys;
mod tcp;
#[cfg(feature = "tokio")]
pub mod tokio;
mod udp;

pub use config::{ShutdownPolicy, StackBuilder, TimerMode};
pub use daytona_core::observe::{ConnId, Event, EventKind, TcpInfo};
pub use events::EventSubscription;
pub use rt::{Runtime, JIFFY};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;

use daytona_core::stack::{RxMeta, Stack};
use daytona_core::time::Instant;
use daytona_link::{Batch, CsumPartial, FrameMeta, Link};
use std::io;

/// Drives one stack over one link.
pub struct Driver<L: Link> {
    stack: Stack,
    link: L,
    rx: Batch,
    tx: Batch,
    /// Largest frame the stack writes.
    max_frame: usize,
    /// Frames to our own address, fed back to the stack (loopback).
    looped: Batch,
    /// Frames for the link when some of a batch were looped back.
    out: Batch,
    /// Our IPv4 address and whether frames are Ethernet, to recognise
    /// frames to ourselves.
    own_ip: [u8; 4],
    ethernet: bool,
}

/// Most rounds of loopback one `transmit` runs (each round feeds the
/// stack the frames it sent itself, which may answer them); a safety net,
/// as every round is driven by real segments.
const LOOPBACK_ROUNDS: usize = 4096;

/// Whether the stack sent `frame` to itself: an IPv4 packet to our
/// address; on Ethernet also the ARP request and reply about our own
/// address that resolve it (sender and target both us). The MAC alone does
/// not decide: a stack may share its MAC with the interface.
fn to_self(frame: &[u8], own_ip: [u8; 4], ethernet: bool) -> bool {
    if !ethernet {
        return frame.get(16..20) == Some(&own_ip[..]);
    }
    match frame.get(12..14) {
        Some([0x08, 0x00]) => frame.get(30..34) == Some(&own_ip[..]),
        Some([0x08, 0x06]) => {
            frame.get(28..32) == Some(&own_ip[..]) && frame.get(38..42) == Some(&own_ip[..])
        }
        _ => false,
    }
}

impl<L: Link> Driver<L> {
    /// Fails with `InvalidInput` when the link's framing or MTU does not
    /// match the stack's configuration, or the stack may emit TCP
    /// super-segments (`StackConfig::tso_max`) larger than the link can
    /// segment (`LinkCaps::max_segment`) or with partial checksums
    /// (`StackConfig::tx_csum_offload`) the link cannot complete
    /// (`LinkCaps::tx_checksum_offload`).
    pub fn new(stack: Stack, link: L) -> io::Result<Self> {
        let caps = link.caps();
        let ethernet = matches!(
            stack.config().medium,
            daytona_core::stack::Medium::Ethernet { .. }
        );
        if caps.ethernet != ethernet || caps.mtu < stack.config().mtu {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "link framing or MTU does not match the stack's configuration",
            ));
        }
        if let Some(tso) = stack.config().tso_max.filter(|t| *t > stack.config().mtu) {
            if tso > caps.max_segment {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "the stack's tso_max ({tso}) exceeds the largest segment the link \
                         can offload ({})",
                        caps.max_segment
                    ),
                ));
            }
        }
        if stack.config().tx_csum_offload
            && stack
                .config()
                .tso_max
                .is_some_and(|t| t > stack.config().mtu)
            && !caps.tx_checksum_offload
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the stack leaves super-segments' checksums partial (tx_csum_offload) but \
                 the link cannot complete them",
            ));
        }
        let max_frame = stack.config().max_frame_len();
        let own_ip = stack.config().addr.octets();
        Ok(Driver {
            stack,
            link,
            rx: Batch::new(),
            tx: Batch::new(),
            max_frame,
            looped: Batch::new(),
            out: Batch::new(),
            own_ip,
            ethernet,
        })
    }

    pub fn stack(&mut self) -> &mut Stack {
        &mut self.stack
    }

    pub fn link(&mut self) -> &mut L {
        &mut self.link
    }

    /// One round: receive a batch, fire due timers, transmit everything the
    /// stack has. Returns when the driver must run again at the latest
    /// (`None`: only when a frame arrives or the application acts).
    pub fn poll(&mut self, now: Instant) -> io::Result<Option<Instant>> {
        self.receive(now)?;
        self.fire_timers(now);
        self.transmit(now)?;
        Ok(self.next_deadline())
    }

    /// Fires the stack's timers that are due at `now`.
    pub fn fire_timers(&mut self, now: Instant) {
        if self.stack.poll_timeout().is_some_and(|t| t <= now) {
            self.stack.handle_timeout(now);
        }
    }

    /// Receives one batch from the link into the stack (timers are the
    /// caller's: [`fire_timers`](Self::fire_timers)); returns how many
    /// frames arrived.
    pub fn receive(&mut self, now: Instant) -> io::Result<usize> {
        self.receive_with_clock(now, || now)
    }

    /// Like [`receive`](Self::receive), stamping the frames with `clock()`
    /// read after the link returned them: a frame that reached the link
    /// after `now` was read must not look older than it is (an RTT sample
    /// below the path's own delay).
    pub fn receive_with_clock(
        &mut self,
        now: Instant,
        clock: impl FnOnce() -> Instant,
    ) -> io::Result<usize> {
        self.rx.clear();
        // Frames the link appended before failing still reach the stack;
        // the error is reported after them.
        let result = self.link.recv_batch(now, &mut self.rx);
        let n = self.rx.len();
        if n == 0 {
            return result;
        }
        let at = clock().max(now);
        for (frame, meta) in self.rx.iter_meta() {
            let rx = RxMeta {
                csum_verified: meta.csum_verified,
                gso_size: meta.gso_size,
            };
            self.stack.handle_frame_with(at, frame, rx);
        }
        result.map(|_| n)
    }

    /// Sends everything the stack has to send (after a socket call or a
    /// received batch).
    ///
    /// Frames the stack addressed to its own IPv4 address (a client
    /// connecting to a server on the same stack) never reach the link: as Linux delivers
    /// traffic to a local address through loopback, they are handed back
    /// to the stack at once, and what it answers goes the same way.
    pub fn transmit(&mut self, now: Instant) -> io::Result<()> {
        for _ in 0..LOOPBACK_ROUNDS {
            self.tx.clear();
            // The stack writes each frame straight into the batch.
            let (stack, max) = (&mut self.stack, self.max_frame);
            while self.tx.fill_with(max, |buf| {
                let n = stack.poll_transmit(now, buf);
                let gso_size = stack.tx_gso_size();
                // A super-segment whose checksum the stack left for the
                // link to complete (`StackConfig::tx_csum_offload`).
                let csum_partial = stack.tx_csum_partial().map(|p| CsumPartial {
                    start: p.start,
                    offset: p.offset,
                });
                Ok::<_, io::Error>(n.map(|n| {
                    (
                        n,
                        FrameMeta {
                            gso_size,
                            csum_partial,
                            ..FrameMeta::default()
                        },
                    )
                }))
            })? {}
            let (ip, eth) = (self.own_ip, self.ethernet);
            if !self.tx.iter().any(|f| to_self(f, ip, eth)) {
                if !self.tx.is_empty() {
                    self.link.send_batch(now, &self.tx)?;
                }
                return Ok(());
            }
            self.looped.clear();
            self.out.clear();
            for (f, meta) in self.tx.iter_meta() {
                if to_self(f, ip, eth) {
                    self.looped.push_with(f, meta);
                } else {
                    self.out.push_with(f, meta);
                }
            }
            if !self.out.is_empty() {
                self.link.send_batch(now, &self.out)?;
            }
            for (f, meta) in self.looped.iter_meta() {
                // Our own frames: their checksums are right by construction.
                let rx = RxMeta {
                    csum_verified: true,
                    gso_size: meta.gso_size,
                };
                self.stack.handle_frame_with(now, f, rx);
            }
        }
        Ok(())
    }

    /// When the driver must run next: the stack's next timer or the link's
    /// next held frame, whichever is first.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        match (self.stack.poll_timeout(), self.link.poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daytona_core::cc::CcRegistry;
    use daytona_core::stack::{EthernetAddress, StackConfig};
    use daytona_core::time::Duration;
    use daytona_link::{FaultModel, Impaired, Impairment, MemoryLink};
    use std::net::{Ipv4Addr, SocketAddrV4};

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    #[test]
    fn two_drivers_move_data_over_an_impaired_memory_link() {
        let (la, lb) = MemoryLink::pair(1500);
        let lossy = |seed| {
            FaultModel::new(
                Impairment {
                    delay: Duration::from_millis(1),
                    loss: 0.02,
                    ..Impairment::default()
                },
                seed,
            )
        };
        let sa = Stack::new(StackConfig::ip(A, 24), CcRegistry::with_builtin()).unwrap();
        let sb = Stack::new(StackConfig::ip(B, 24), CcRegistry::with_builtin()).unwrap();
        let mut a = Driver::new(sa, Impaired::new(la, lossy(1))).unwrap();
        let mut b = Driver::new(sb, Impaired::new(lb, lossy(2))).unwrap();
        let l = b.stack().tcp_listen(SocketAddrV4::new(B, 80), 4).unwrap();
        let mut now = Instant::from_secs(1);
        let c = a
            .stack()
            .tcp_connect(now, SocketAddrV4::new(B, 80), None)
            .unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        let (mut sent, mut got) = (0, Vec::new());
        let mut server = None;
        let mut buf = vec![0u8; 65_536];
        for _ in 0..200_000 {
            if sent < data.len() {
                sent += a.stack().tcp_send(now, c, &data[sent..]).unwrap_or(0);
            }
            if server.is_none() {
                server = b.stack().tcp_accept(l).ok();
            }
            if let Some(s) = server {
                while let Ok(n) = b.stack().tcp_recv(now, s, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            }
            if got.len() == data.len() {
                break;
            }
            let na = a.poll(now).unwrap();
            let nb = b.poll(now).unwrap();
            // Jump to the next thing that will happen (virtual time).
            let next = [na, nb].into_iter().flatten().min();
            now = next
                .filter(|t| *t > now)
                .unwrap_or(now + Duration::from_micros(100));
        }
        assert_eq!(got, data);
    }

    #[test]
    fn tso_beyond_what_the_link_segments_is_refused() {
        let (la, lb) = MemoryLink::pair(1500);
        let mut cfg = StackConfig::ip(A, 24);
        cfg.tso_max = Some(65_535);
        let s = Stack::new(cfg.clone(), CcRegistry::with_builtin()).unwrap();
        let err = Driver::new(s, la).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("tso_max"), "{err}");
        // Nor through the fault model, which works per packet.
        cfg.tso_max = Some(1500);
        let s = Stack::new(cfg, CcRegistry::with_builtin()).unwrap();
        let model = FaultModel::new(Impairment::default(), 1);
        assert!(Driver::new(s, Impaired::new(lb, model)).is_ok());
    }

    /// An IP link with TSO and transmit checksum offload that records what
    /// it is asked to send and hands out what the test queues.
    #[derive(Default)]
    struct Offloading {
        sent: Vec<(Vec<u8>, FrameMeta)>,
        inbox: Vec<Vec<u8>>,
        csum: bool,
    }

    impl Link for Offloading {
        fn caps(&self) -> daytona_link::LinkCaps {
            daytona_link::LinkCaps {
                ethernet: false,
                mtu: 1500,
                max_segment: 65_535,
                rx_checksum_verified: false,
                tx_checksum_offload: self.csum,
            }
        }
        fn recv_batch(&mut self, _now: Instant, batch: &mut Batch) -> io::Result<usize> {
            let n = self.inbox.len();
            for f in self.inbox.drain(..) {
                batch.push(&f);
            }
            Ok(n)
        }
        fn send_batch(&mut self, _now: Instant, batch: &Batch) -> io::Result<usize> {
            self.sent
                .extend(batch.iter_meta().map(|(f, m)| (f.to_vec(), m)));
            Ok(batch.len())
        }
    }

    fn offload_config() -> StackConfig {
        let mut cfg = StackConfig::ip(A, 24);
        cfg.tso_max = Some(65_535);
        cfg.tx_csum_offload = true;
        cfg
    }

    #[test]
    fn partial_checksums_need_a_link_that_completes_them() {
        let s = Stack::new(offload_config(), CcRegistry::with_builtin()).unwrap();
        let err = Driver::new(s, Offloading::default()).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("tx_csum_offload"), "{err}");
        // Without super-segments there is nothing to leave partial.
        let mut cfg = offload_config();
        cfg.tso_max = None;
        let s = Stack::new(cfg, CcRegistry::with_builtin()).unwrap();
        assert!(Driver::new(s, Offloading::default()).is_ok());
    }

    #[test]
    fn super_segments_reach_the_link_marked_partial() {
        let s = Stack::new(offload_config(), CcRegistry::with_builtin()).unwrap();
        let link = Offloading {
            csum: true,
            ..Offloading::default()
        };
        let mut d = Driver::new(s, link).unwrap();
        let mut peer = Stack::new(StackConfig::ip(B, 24), CcRegistry::with_builtin()).unwrap();
        let l = peer.tcp_listen(SocketAddrV4::new(B, 80), 4).unwrap();
        let mut now = Instant::from_secs(1);
        let c = d
            .stack()
            .tcp_connect(now, SocketAddrV4::new(B, 80), None)
            .unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 13) as u8).collect();
        let (mut sent, mut got, mut server) = (0, Vec::new(), None);
        let (mut partial, mut plain) = (0, 0);
        let mut buf = vec![0u8; 65_536];
        for _ in 0..10_000 {
            if sent < data.len() {
                sent += d.stack().tcp_send(now, c, &data[sent..]).unwrap_or(0);
            }
            d.poll(now).unwrap();
            for (f, meta) in std::mem::take(&mut d.link().sent) {
                match meta.csum_partial {
                    Some(p) => {
                        partial += 1;
                        assert!(meta.gso_size.is_some() && f.len() > 1500);
                        assert_eq!((p.start, p.offset), (20, 16));
                        // The kernel would complete it; the peer takes it
                        // as the link vouches for it (CHECKSUM_PARTIAL).
                        let rx = RxMeta {
                            csum_verified: true,
                            gso_size: meta.gso_size,
                        };
                        peer.handle_frame_with(now, &f, rx);
                    }
                    None => {
                        plain += 1;
                        assert!(f.len() <= 1500, "only super-segments are partial");
                        // Verified in full by the peer.
                        peer.handle_frame(now, &f);
                    }
                }
            }
            if server.is_none() {
                server = peer.tcp_accept(l).ok();
            }
            if let Some(s) = server {
                while let Ok(n) = peer.tcp_recv(now, s, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            }
            while let Some(n) = peer.poll_transmit(now, &mut buf) {
                d.link().inbox.push(buf[..n].to_vec());
            }
            if got.len() == data.len() {
                break;
            }
            now += Duration::from_millis(1);
            peer.handle_timeout(now);
        }
        assert_eq!(got, data);
        assert!(partial > 0 && plain > 0, "{partial} partial, {plain} plain");
        assert_eq!(peer.counters().tcp_bad_checksum, 0);
    }

    /// A link that records what it is asked to send (Ethernet or not).
    struct Recorder(Vec<Vec<u8>>, bool);

    impl Link for Recorder {
        fn caps(&self) -> daytona_link::LinkCaps {
            daytona_link::LinkCaps {
                ethernet: self.1,
                mtu: 1500,
                max_segment: 1500,
                rx_checksum_verified: false,
                tx_checksum_offload: false,
            }
        }
        fn recv_batch(&mut self, _now: Instant, _batch: &mut Batch) -> io::Result<usize> {
            Ok(0)
        }
        fn send_batch(&mut self, _now: Instant, batch: &Batch) -> io::Result<usize> {
            self.0.extend(batch.iter().map(|f| f.to_vec()));
            Ok(batch.len())
        }
    }

    /// Hands out one batch of frames together with an error.
    struct FailsMidBatch(Vec<Vec<u8>>);

    impl Link for FailsMidBatch {
        fn caps(&self) -> daytona_link::LinkCaps {
            daytona_link::LinkCaps {
                ethernet: false,
                mtu: 1500,
                max_segment: 1500,
                rx_checksum_verified: false,
                tx_checksum_offload: false,
            }
        }
        fn recv_batch(&mut self, _now: Instant, batch: &mut Batch) -> io::Result<usize> {
            for f in self.0.drain(..) {
                batch.push(&f);
            }
            Err(io::Error::other("the device went away"))
        }
        fn send_batch(&mut self, _now: Instant, batch: &Batch) -> io::Result<usize> {
            Ok(batch.len())
        }
    }

    #[test]
    fn frames_received_before_a_link_error_reach_the_stack() {
        let s = Stack::new(StackConfig::ip(A, 24), CcRegistry::with_builtin()).unwrap();
        let junk = vec![0x45u8; 40];
        let mut d = Driver::new(s, FailsMidBatch(vec![junk.clone(), junk])).unwrap();
        let err = d.receive(Instant::from_secs(1)).unwrap_err();
        assert_eq!(err.to_string(), "the device went away");
        assert_eq!(d.stack().counters().frames_in, 2);
    }

    #[test]
    fn frames_to_our_own_address_loop_back_without_the_link() {
        for ethernet in [false, true] {
            let cfg = if ethernet {
                StackConfig::ethernet(EthernetAddress([2, 0, 0, 0, 0, 1]), A, 24)
            } else {
                StackConfig::ip(A, 24)
            };
            let s = Stack::new(cfg, CcRegistry::with_builtin()).unwrap();
            let mut d = Driver::new(s, Recorder(Vec::new(), ethernet)).unwrap();
            let now = Instant::from_secs(1);
            let l = d.stack().tcp_listen(SocketAddrV4::new(A, 80), 4).unwrap();
            let c = d
                .stack()
                .tcp_connect(now, SocketAddrV4::new(A, 80), None)
                .unwrap();
            d.stack().tcp_send(now, c, b"to myself").unwrap();
            d.poll(now).unwrap();
            let srv = d.stack().tcp_accept(l).expect("handshake done in one poll");
            let mut buf = [0u8; 16];
            let n = d.stack().tcp_recv(now, srv, &mut buf).unwrap();
            assert_eq!(&buf[..n], b"to myself");
            assert!(
                d.link().0.is_empty(),
                "ethernet {ethernet}: nothing hit the link"
            );
            // Others' traffic still goes out — on Ethernet even when the
            // peer shares our MAC (as the interface does when the stack
            // uses the interface's MAC): B asks for us from our MAC.
            if ethernet {
                let mut arp = vec![0xff; 6];
                arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
                arp.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
                arp.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
                arp.extend_from_slice(&B.octets());
                arp.extend_from_slice(&[0; 6]);
                arp.extend_from_slice(&A.octets());
                d.stack().handle_frame(now, &arp);
            }
            d.stack()
                .tcp_connect(now, SocketAddrV4::new(B, 80), None)
                .unwrap();
            d.poll(now).unwrap();
            // (Ethernet: our ARP reply to B, then the SYN.)
            let expected = if ethernet { 2 } else { 1 };
            assert_eq!(d.link().0.len(), expected, "ethernet {ethernet}");
        }
    }

    #[test]
    fn mismatched_link_is_refused() {
        let (la, _lb) = MemoryLink::pair(1500);
        let mac = StackConfig::ethernet(EthernetAddress([2, 0, 0, 0, 0, 1]), A, 24);
        let s = Stack::new(mac, CcRegistry::with_builtin()).unwrap();
        let err = Driver::new(s, la).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
