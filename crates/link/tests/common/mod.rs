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
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether transfers generate pattern data and hash it (tests); the
/// goodput example turns it off so that it measures the links, not the
/// test data (then only byte counts are compared).
pub static CHECK: AtomicBool = AtomicBool::new(true);

fn checking() -> bool {
    CHECK.load(Ordering::Relaxed)
}

/// Test data: the pattern stream, or (not checking) `len` bytes of
/// whatever the buffer holds.
pub struct Source {
    reader: PatternReader,
    left: u64,
}

impl Source {
    pub fn new(seed: u64, len: u64) -> Source {
        Source {
            reader: PatternReader::new(seed, len),
            left: len,
        }
    }

    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = if checking() {
            self.reader.read(buf).expect("pattern")
        } else {
            self.left.min(buf.len() as u64) as usize
        };
        self.left -= n as u64;
        n
    }
}

/// A byte count and (when checking) the hash of the bytes.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    digest: Digest,
    bytes: u64,
}

impl Tally {
    pub fn new() -> Tally {
        Tally::default()
    }

    pub fn len(&self) -> u64 {
        self.bytes
    }

    /// (bytes, hash)
    pub fn finish(&self) -> (u64, u128) {
        (self.bytes, self.digest.finish().1)
    }
}

/// Feeds `data` to `t` (only its length when not checking).
pub fn feed(t: &mut Tally, data: &[u8]) {
    if checking() {
        t.digest.update(data);
    }
    t.bytes += data.len() as u64;
}

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
    reader: Source,
    chunk: Vec<u8>,
    off: usize,
    pub digest: Tally,
    closed: bool,
}

impl Sender {
    pub fn new(seed: u64, len: u64) -> Sender {
        Sender {
            reader: Source::new(seed, len),
            chunk: Vec::new(),
            off: 0,
            digest: Tally::new(),
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
                let n = self.reader.read(&mut self.chunk);
                self.chunk.truncate(n);
                self.off = 0;
                feed(&mut self.digest, &self.chunk);
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
    digest: &mut Tally,
    buf: &mut [u8],
) -> (bool, bool) {
    let mut moved = false;
    loop {
        match s.tcp_recv(now, conn, buf) {
            Ok(0) => return (moved, true),
            Ok(n) => {
                feed(digest, &buf[..n]);
                moved = true;
            }
            Err(Error::WouldBlock) => return (moved, false),
            Err(e) => panic!("recv failed: {e:?}"),
        }
    }
}

/// Both FINs are through: TIME-WAIT (we closed first) or gone. Stopping
/// earlier would let the peer's FIN or ACK reach the kernel after a raw
/// link's table is removed, and the kernel would answer it with RST.
pub fn both_sides_closed(s: &Stack, conn: daytona_core::stack::ConnHandle) -> bool {
    matches!(
        s.tcp_state(conn),
        Ok(State::TimeWait | State::Closed) | Err(_)
    )
}

/// A kernel listener with CUBIC, bound in the caller's namespace.
pub fn kernel_listener(addr: SocketAddrV4) -> TcpListener {
    let l = TcpListener::bind(addr).expect("kernel listener");
    daytona_testnet::set_cubic(&l).expect("cubic");
    l
}

/// The kernel receiving side: accepts one connection, reads to EOF.
pub fn kernel_receive(l: TcpListener) -> Tally {
    let (mut s, _) = l.accept().expect("accept");
    let mut d = Tally::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return d,
            Ok(n) => feed(&mut d, &buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("kernel read: {e}"),
        }
    }
}

/// The kernel sending side: connects, writes `len` pattern bytes, shuts
/// down its write side and waits for Daytona's FIN.
pub fn kernel_send(to: SocketAddrV4, seed: u64, len: u64) -> Tally {
    let (mut s, d) = kernel_write(to, seed, len);
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("kernel waits for EOF");
    assert!(rest.is_empty(), "Daytona sent data it should not have");
    d
}

/// Like [`kernel_send`] without waiting for the other side to close.
pub fn kernel_send_only(to: SocketAddrV4, seed: u64, len: u64) -> Tally {
    kernel_write(to, seed, len).1
}

fn kernel_write(to: SocketAddrV4, seed: u64, len: u64) -> (TcpStream, Tally) {
    let mut s = TcpStream::connect(to).expect("kernel connect");
    daytona_testnet::set_cubic(&s).expect("cubic");
    let mut r = Source::new(seed, len);
    let mut d = Tally::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf);
        if n == 0 {
            break;
        }
        feed(&mut d, &buf[..n]);
        s.write_all(&buf[..n]).expect("kernel write");
    }
    s.shutdown(std::net::Shutdown::Write)
        .expect("kernel shutdown");
    (s, d)
}

/// Daytona's side of a bulk send over `drv`: connects to `to`, sends `len`
/// pattern bytes of `seed`, shuts down its write side, and drives until
/// the kernel receiver (`peer`) has read everything and both sides have
/// closed. Returns what was sent and what the kernel received.
pub fn daytona_sends<L: Link>(
    drv: &mut Driver<L>,
    to: SocketAddrV4,
    seed: u64,
    len: u64,
    peer: std::thread::JoinHandle<Tally>,
) -> (Tally, Tally) {
    let clock = Clock::new();
    let conn = drv
        .stack()
        .tcp_connect(clock.now(), to, None)
        .expect("connect");
    let mut tx = Sender::new(seed, len);
    drive(drv, clock, |s, now| {
        if peer.is_finished() && both_sides_closed(s, conn) {
            return Step::Done;
        }
        if tx.step(s, now, conn) {
            Step::Progress
        } else {
            Step::Idle
        }
    })
    .expect("transfer");
    let got = peer.join().expect("kernel receiver");
    (tx.digest, got)
}

/// Daytona's side of a bulk receive: listens on `at`, tells the kernel
/// sender through `ready`, reads to EOF, closes, and drives until the
/// connection is gone and the sender (`peer`) has finished. Returns what
/// was received and what the kernel sent.
pub fn daytona_receives<L: Link>(
    drv: &mut Driver<L>,
    at: SocketAddrV4,
    ready: std::sync::mpsc::Sender<()>,
    peer: std::thread::JoinHandle<Tally>,
) -> (Tally, Tally) {
    let l = drv.stack().tcp_listen(at, 16).expect("listen");
    // Connections of earlier exchanges (in TIME-WAIT) may still count.
    let before = drv.stack().connection_count();
    ready.send(()).expect("the kernel sender waits");
    let mut conn = None;
    let mut got = Tally::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut closed = false;
    drive(drv, Clock::new(), |s, now| {
        if conn.is_none() {
            conn = s.tcp_accept(l).ok();
        }
        let Some(c) = conn else {
            return Step::Idle;
        };
        if closed {
            // Passive close: LAST-ACK, then gone (no TIME-WAIT here).
            return if peer.is_finished() && s.connection_count() <= before {
                Step::Done
            } else {
                Step::Idle
            };
        }
        let (moved, eof) = recv_into(s, now, c, &mut got, &mut buf);
        if eof {
            s.tcp_close(now, c).expect("close");
            closed = true;
            return Step::Progress;
        }
        if moved {
            Step::Progress
        } else {
            Step::Idle
        }
    })
    .expect("transfer");
    let sent = peer.join().expect("kernel sender");
    (got, sent)
}

/// Starts the kernel sender thread in the peer namespace; it waits for the
/// returned channel's signal before connecting to `at`.
pub fn spawn_kernel_sender(
    pair: &Pair,
    at: SocketAddrV4,
    seed: u64,
    len: u64,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<Tally>) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let peer = pair.peer.thread(move || {
        ready_rx.recv().expect("Daytona is listening");
        kernel_send(at, seed, len)
    });
    (ready_tx, peer)
}

/// Starts the kernel receiver thread (listening on `at`) in the peer
/// namespace.
pub fn spawn_kernel_receiver(pair: &Pair, at: SocketAddrV4) -> std::thread::JoinHandle<Tally> {
    let l = pair.peer.run(move || kernel_listener(at));
    pair.peer.thread(move || kernel_receive(l))
}

/// Puts a `tbf` qdisc (200 Mbit/s; `burst` and `limit` as `tc` reads
/// them) on Daytona's side of the veth: its queue fills, and the kernel
/// refuses packets with `ENOBUFS` until it drains.
pub fn rate_limit(pair: &Pair, burst: &str, limit: &str) {
    let dev = pair.day_if.as_str();
    let argv = [
        "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "200mbit",
    ];
    pair.day
        .exec(&[&argv[..], &["burst", burst, "limit", limit]].concat())
        .expect("tbf qdisc");
}

/// Daytona (the driver `open` makes in its namespace) sends `len` bytes to
/// a kernel receiver on the peer; asserts they arrived byte-exact and
/// returns `stats` of the driver afterwards.
pub fn bulk_to_kernel<L: Link, S: Send + 'static>(
    pair: &Pair,
    seed: u64,
    len: u64,
    open: impl FnOnce() -> Driver<L> + Send + 'static,
    stats: impl FnOnce(&mut Driver<L>) -> S + Send + 'static,
) -> S {
    let to = SocketAddrV4::new(pair.peer_addr(), 5001);
    let peer = spawn_kernel_receiver(pair, to);
    let (sent, got, stats) = pair.day.run(move || {
        let mut drv = open();
        let (sent, got) = daytona_sends(&mut drv, to, seed, len, peer);
        (sent, got, stats(&mut drv))
    });
    assert_eq!(got.len(), len);
    assert_eq!(sent.finish(), got.finish(), "bytes differ");
    stats
}

/// The peer namespace's TCP socket table, opened from inside it (a procfs
/// table read again from offset 0 is fresh and stays that namespace's).
pub fn peer_tcp_table(pair: &Pair) -> std::fs::File {
    pair.peer
        .run(|| std::fs::File::open("/proc/thread-self/net/tcp").expect("peer's /proc tcp table"))
}

/// Keeps driving until no kernel socket in the peer's table is still
/// closing (FIN-WAIT-1, CLOSING, LAST-ACK): with loss on Daytona's side its
/// last ACK may need the kernel's retransmitted FIN to be answered, and a
/// FIN arriving after the link (and its nftables table) is gone would be
/// answered with a RST by Daytona's kernel.
pub fn drive_until_peer_closed<L: Link>(drv: &mut Driver<L>, mut table: std::fs::File) {
    use std::io::{Read, Seek};
    drive(drv, Clock::new(), |_, _| {
        let mut text = String::new();
        let ok = table.rewind().is_ok() && table.read_to_string(&mut text).is_ok();
        // st column: 04 FIN_WAIT1, 0B CLOSING, 09 LAST_ACK.
        let closing = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(3))
            .any(|st| matches!(st, "04" | "0B" | "09"));
        if ok && !closing {
            Step::Done
        } else {
            Step::Idle
        }
    })
    .expect("the kernel's sockets finished closing");
}
