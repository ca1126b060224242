//! Shared scaffolding of the raw-mode and L2-mode kernel interop tests: two
//! namespaces joined by a veth, a Daytona stack driven over a real link by
//! the runtime's `Driver` (waiting on the link's fd and the stack's timer,
//! never sleeping), and kernel peers that are plain `std::net` sockets with
//! CUBIC.
#![allow(dead_code)]

use daytona_core::cc::CcRegistry;
use daytona_core::stack::{Stack, StackConfig};
use daytona_core::tcp::{Shutdown, State};
use daytona_core::time::{Duration, Instant};
use daytona_core::Error;
use daytona_link::{netif, Link};
use daytona_runtime::Driver;
use daytona_testnet::{Digest, Netns, PatternReader, Veth};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};

/// Transfer size of the bulk tests (each direction).
pub const BULK: u64 = 100_000_000;
/// TTL of the stack's packets: tells its RSTs from the kernel's in the
/// RST counter of the Daytona-side namespace.
pub const STACK_TTL: u8 = 63;
/// Wall-clock limit of one driven exchange: a hang fails instead of
/// blocking the test run (not a performance assertion).
pub const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A kernel peer namespace and a Daytona-side namespace joined by a veth:
/// `198.18.<net>.1/24` on the peer's end, `198.18.<net>.2/24` on Daytona's.
pub struct Pair {
    pub peer: Netns,
    pub day: Netns,
    pub peer_if: String,
    pub day_if: String,
    pub net: u8,
    _veth: Veth,
}

impl Pair {
    pub fn new(net: u8) -> io::Result<Pair> {
        let peer = Netns::new("dkp")?;
        let day = Netns::new("dkd")?;
        let peer_if = daytona_testnet::unique_name("vp");
        let day_if = daytona_testnet::unique_name("vd");
        let veth = Veth::new(&peer, &peer_if, &day, &day_if)?;
        peer.exec(&[
            "ip",
            "addr",
            "add",
            &format!("198.18.{net}.1/24"),
            "dev",
            &peer_if,
        ])?;
        day.exec(&[
            "ip",
            "addr",
            "add",
            &format!("198.18.{net}.2/24"),
            "dev",
            &day_if,
        ])?;
        // Counts TCP RSTs the Daytona-side kernel sends (the stack's own
        // carry STACK_TTL).
        day.nft(&format!(
            "table ip rstwatch {{\n chain out {{\n type filter hook output priority 0; policy accept;\n \
             tcp flags & rst != 0 ip ttl != {STACK_TTL} counter\n }}\n}}\n"
        ))?;
        Ok(Pair {
            peer,
            day,
            peer_if,
            day_if,
            net,
            _veth: veth,
        })
    }

    pub fn peer_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.net, 1)
    }

    pub fn day_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.net, 2)
    }

    /// RSTs the Daytona-side kernel has sent.
    pub fn kernel_rsts(&self) -> u64 {
        let out = self
            .day
            .exec(&["nft", "list", "chain", "ip", "rstwatch", "out"])
            .expect("listing the RST counter");
        let after = out
            .split("counter packets ")
            .nth(1)
            .expect("the counter rule is listed");
        after
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a packet count")
    }

    /// The names of the nftables tables of the Daytona-side namespace.
    pub fn day_tables(&self) -> String {
        self.day
            .exec(&["nft", "list", "tables"])
            .expect("nft list tables")
    }
}

/// Microseconds since the test started, as the stack's time.
#[derive(Clone, Copy)]
pub struct Clock(std::time::Instant);

impl Clock {
    pub fn new() -> Clock {
        Clock(std::time::Instant::now())
    }

    pub fn now(&self) -> Instant {
        Instant::from_secs(1) + Duration::from_micros(self.0.elapsed().as_micros() as u64)
    }
}

pub fn new_stack(mut cfg: StackConfig) -> Stack {
    cfg.ttl = STACK_TTL;
    Stack::new(cfg, CcRegistry::with_builtin()).expect("stack config")
}

/// What the application step of a driven exchange did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do until the network or a timer acts.
    Idle,
    /// It moved data: run the stack again at once.
    Progress,
    Done,
}

/// Runs the driver and `app` until `app` says it is done: each round polls
/// the link and the stack, runs `app`, and when neither moved, waits on the
/// link's fd until the stack's next timer.
pub fn drive<L: Link>(
    drv: &mut Driver<L>,
    clock: Clock,
    mut app: impl FnMut(&mut Stack, Instant) -> Step,
) -> io::Result<()> {
    let fd = drv.link().wait_fd().expect("a real link has an fd");
    let start = std::time::Instant::now();
    loop {
        let now = clock.now();
        let next = drv.poll(now)?;
        while drv.stack().poll_event().is_some() {}
        match app(drv.stack(), clock.now()) {
            Step::Done => return Ok(()),
            Step::Progress => continue,
            Step::Idle => {}
        }
        if start.elapsed() > LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "exchange did not finish",
            ));
        }
        let now = clock.now();
        // Also wake regularly to let `app` notice other threads' progress.
        let cap = Duration::from_millis(20);
        let wait = next.map_or(cap, |t| t.saturating_since(now).min(cap));
        netif::wait_readable(fd, Some(wait))?;
    }
}

/// The Daytona side of a bulk send: writes `len` pattern bytes of `seed`
/// on `conn`, then closes, and is done when `until` says so.
pub struct Sender {
    reader: PatternReader,
    chunk: Vec<u8>,
    off: usize,
    pub digest: Digest,
    closed: bool,
}

impl Sender {
    pub fn new(seed: u64, len: u64) -> Sender {
        Sender {
            reader: PatternReader::new(seed, len),
            chunk: Vec::new(),
            off: 0,
            digest: Digest::new(),
            closed: false,
        }
    }

    /// Pushes as much as the send buffer takes; returns whether it moved
    /// anything, and closes the write side once everything is queued.
    pub fn step(
        &mut self,
        s: &mut Stack,
        now: Instant,
        conn: daytona_core::stack::ConnHandle,
    ) -> bool {
        let mut moved = false;
        loop {
            if self.off == self.chunk.len() {
                self.chunk.resize(256 << 10, 0);
                let n = self.reader.read(&mut self.chunk).expect("pattern");
                self.chunk.truncate(n);
                self.off = 0;
                self.digest.update(&self.chunk);
                if n == 0 {
                    if !self.closed {
                        s.tcp_shutdown(now, conn, Shutdown::Write)
                            .expect("shutdown");
                        self.closed = true;
                        moved = true;
                    }
                    return moved;
                }
            }
            match s.tcp_send(now, conn, &self.chunk[self.off..]) {
                Ok(n) => {
                    self.off += n;
                    moved |= n > 0;
                }
                Err(Error::WouldBlock) => return moved,
                Err(e) => panic!("send failed: {e:?}"),
            }
        }
    }
}

/// Reads everything available on `conn` into `digest`; returns (moved,
/// eof).
pub fn recv_into(
    s: &mut Stack,
    now: Instant,
    conn: daytona_core::stack::ConnHandle,
    digest: &mut Digest,
    buf: &mut [u8],
) -> (bool, bool) {
    let mut moved = false;
    loop {
        match s.tcp_recv(now, conn, buf) {
            Ok(0) => return (moved, true),
            Ok(n) => {
                digest.update(&buf[..n]);
                moved = true;
            }
            Err(Error::WouldBlock) => return (moved, false),
            Err(e) => panic!("recv failed: {e:?}"),
        }
    }
}

pub fn connection_gone_or_closing(s: &Stack, conn: daytona_core::stack::ConnHandle) -> bool {
    !matches!(
        s.tcp_state(conn),
        Ok(State::SynSent
            | State::SynReceived
            | State::Established
            | State::CloseWait
            | State::FinWait1
            | State::Closing
            | State::LastAck)
    )
}

/// A kernel listener with CUBIC, bound in the caller's namespace.
pub fn kernel_listener(addr: SocketAddrV4) -> TcpListener {
    let l = TcpListener::bind(addr).expect("kernel listener");
    daytona_testnet::set_cubic(&l).expect("cubic");
    l
}

/// The kernel receiving side: accepts one connection, reads to EOF.
pub fn kernel_receive(l: TcpListener) -> Digest {
    let (mut s, _) = l.accept().expect("accept");
    let mut d = Digest::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return d,
            Ok(n) => d.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("kernel read: {e}"),
        }
    }
}

/// The kernel sending side: connects, writes `len` pattern bytes, shuts
/// down its write side and waits for Daytona's FIN.
pub fn kernel_send(to: SocketAddrV4, seed: u64, len: u64) -> Digest {
    let mut s = TcpStream::connect(to).expect("kernel connect");
    daytona_testnet::set_cubic(&s).expect("cubic");
    let mut r = PatternReader::new(seed, len);
    let mut d = Digest::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf).expect("pattern");
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
        s.write_all(&buf[..n]).expect("kernel write");
    }
    s.shutdown(std::net::Shutdown::Write)
        .expect("kernel shutdown");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("kernel waits for EOF");
    assert!(rest.is_empty(), "Daytona sent data it should not have");
    d
}
