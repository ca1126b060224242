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
use daytona_link::{Batch, FrameMeta, Link};
use std::io;

/// Drives one stack over one link.
pub struct Driver<L: Link> {
    stack: Stack,
    link: L,
    rx: Batch,
    tx: Batch,
    /// Largest frame the stack writes.
    max_frame: usize,
}

impl<L: Link> Driver<L> {
    /// Fails with `InvalidInput` when the link's framing or MTU does not
    /// match the stack's configuration, or the stack may emit TCP
    /// super-segments (`StackConfig::tso_max`) larger than the link can
    /// segment (`LinkCaps::max_segment`).
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
        let max_frame = stack.config().max_frame_len();
        Ok(Driver {
            stack,
            link,
            rx: Batch::new(),
            tx: Batch::new(),
            max_frame,
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
        let n = self.link.recv_batch(now, &mut self.rx)?;
        if n == 0 {
            return Ok(0);
        }
        let at = clock().max(now);
        for (frame, meta) in self.rx.iter_meta() {
            let rx = RxMeta {
                csum_verified: meta.csum_verified,
                gso_size: meta.gso_size,
            };
            self.stack.handle_frame_with(at, frame, rx);
        }
        Ok(n)
    }

    /// Sends everything the stack has to send (after a socket call or a
    /// received batch).
    pub fn transmit(&mut self, now: Instant) -> io::Result<()> {
        self.tx.clear();
        // The stack writes each frame straight into the batch.
        let (stack, max) = (&mut self.stack, self.max_frame);
        while self.tx.fill_with(max, |buf| {
            let n = stack.poll_transmit(now, buf);
            let gso_size = stack.tx_gso_size();
            Ok::<_, io::Error>(n.map(|n| {
                (
                    n,
                    FrameMeta {
                        gso_size,
                        ..FrameMeta::default()
                    },
                )
            }))
        })? {}
        if !self.tx.is_empty() {
            self.link.send_batch(now, &self.tx)?;
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

    #[test]
    fn mismatched_link_is_refused() {
        let (la, _lb) = MemoryLink::pair(1500);
        let mac = StackConfig::ethernet(EthernetAddress([2, 0, 0, 0, 0, 1]), A, 24);
        let s = Stack::new(mac, CcRegistry::with_builtin()).unwrap();
        let err = Driver::new(s, la).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
