//! A Daytona stack on a TAP device against the kernel's TCP, inside a
//! network namespace created for the run: shared by the interop tests
//! (`tests/kernel_tap.rs`) and the goodput example (`examples/tap_goodput.rs`).
//!
//! The kernel side of the TAP gets 198.18.1.1/24, the Daytona stack
//! 198.18.1.2. The kernel peer is a plain `std::net` socket with CUBIC on a
//! thread inside the namespace; the Daytona stack runs under a `Driver` on
//! another thread there, waiting in `ppoll` on the TAP's descriptor and the
//! stack's next timer.
#![allow(dead_code)]

use daytona_core::cc::CcRegistry;
use daytona_core::observe::TcpInfo;
use daytona_core::stack::{ConnHandle, Stack, StackCounters};
use daytona_core::tcp::Shutdown;
use daytona_core::time::{Duration, Instant};
use daytona_core::Error;
use daytona_link::{
    FaultModel, FaultStats, Impaired, Impairment, Link, TapConfig, TapMode, TapStats,
};
use daytona_runtime::Driver;
use daytona_testnet::{fill_pattern, set_cubic, Digest, Netns, Veth};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown as NetShutdown, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;

pub const KERNEL: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// The kernel peer one hop away (`Run::kernel_router`), and the router's
/// address on that side.
pub const KERNEL_REMOTE: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
pub const DAYTONA: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
pub const PORT: u16 = 5001;

/// Who sends the bulk data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The kernel sends, Daytona receives.
    KernelToDaytona,
    /// Daytona sends, the kernel receives.
    DaytonaToKernel,
}

/// One transfer.
#[derive(Debug, Clone)]
pub struct Run {
    pub direction: Direction,
    pub bytes: u64,
    pub mtu: usize,
    /// TAP (Ethernet, the stack does ARP) or TUN (bare IP).
    pub mode: TapMode,
    /// TAP offloads (vnet_hdr, TSO/GRO, checksums).
    pub offloads: bool,
    /// Daytona-side impairment of what Daytona sends.
    pub tx_impair: Option<Impairment>,
    /// Daytona-side impairment of what Daytona receives.
    pub rx_impair: Option<Impairment>,
    /// nftables rules on the TAP's egress hook, for what the kernel sends
    /// to Daytona (`{dev}` is replaced), e.g.
    /// `numgen random mod 100 < 2 counter dup to "{dev}"`.
    pub kernel_egress: Vec<String>,
    /// nftables rules on the TAP's ingress hook, for what Daytona sends to
    /// the kernel, e.g. `numgen random mod 100 < 1 counter drop`.
    pub kernel_ingress: Vec<String>,
    /// Put the kernel peer one hop away: in a namespace of its own behind
    /// a veth, the TAP's namespace forwarding between them. Rules in
    /// `kernel_forward` then act on the kernel's data as a router would.
    pub kernel_router: bool,
    /// nftables rules on the router's forward hook for packets to Daytona
    /// (`{dev}` is replaced by the TAP's name), e.g.
    /// `numgen random mod 100 < 1 counter drop`.
    pub kernel_forward: Vec<String>,
    /// Make the kernel hand its output hook one packet per skb (TAP
    /// `gso_max_segs 1`), so nftables rules act per packet rather than per
    /// GSO super-packet.
    pub kernel_per_packet: bool,
    /// Hash the data on both ends (off in the goodput example).
    pub hash: bool,
    pub seed: u64,
    /// Give up after this much wall time.
    pub deadline: std::time::Duration,
}

impl Run {
    pub fn new(direction: Direction, bytes: u64) -> Self {
        Run {
            direction,
            bytes,
            mtu: 1500,
            mode: TapMode::Tap,
            offloads: true,
            tx_impair: None,
            rx_impair: None,
            kernel_egress: Vec::new(),
            kernel_ingress: Vec::new(),
            kernel_per_packet: false,
            kernel_router: false,
            kernel_forward: Vec::new(),
            hash: true,
            seed: 7,
            deadline: std::time::Duration::from_secs(60),
        }
    }
}

/// What a kernel socket's TCP_INFO said at the end.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelInfo {
    pub total_retrans: u32,
    pub dsack_dups: u32,
    pub snd_mss: u32,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// (bytes, hash) of what the sender sent and the receiver got.
    pub sent: (u64, u128),
    pub received: (u64, u128),
    /// Daytona's connection, just before it was closed.
    pub info: TcpInfo,
    pub counters: StackCounters,
    pub tap: TapStats,
    pub tx_faults: Option<FaultStats>,
    pub rx_faults: Option<FaultStats>,
    pub kernel: KernelInfo,
    /// Packets counted by each kernel-side nftables rule: forward, egress,
    /// ingress rules in order.
    pub rule_hits: Vec<u64>,
    /// Wall time from the first byte to the receiver's end of stream.
    pub elapsed: std::time::Duration,
    /// CPU time (user + system) of the thread running the Daytona stack,
    /// over the whole run.
    pub daytona_cpu: std::time::Duration,
    pub offloads_in_effect: bool,
}

impl Outcome {
    pub fn goodput_mbytes(&self) -> f64 {
        self.received.0 as f64 / self.elapsed.as_secs_f64() / 1e6
    }

    /// CPU nanoseconds the Daytona thread spent per byte moved.
    pub fn daytona_ns_per_byte(&self) -> f64 {
        self.daytona_cpu.as_nanos() as f64 / self.received.0.max(1) as f64
    }
}

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

fn core_err(what: &str, e: Error) -> io::Error {
    err(format!("{what}: {e:?}"))
}

/// The stack's clock: microseconds since the run began.
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> Instant {
        Instant::from_micros(1_000_000 + self.0.elapsed().as_micros() as u64)
    }
}

/// Waits until the link's descriptor is readable or `until` (at most
/// `cap`), with microsecond resolution.
fn wait(fd: i32, now: Instant, until: Option<Instant>, cap: Duration) -> io::Result<()> {
    let d = until
        .map(|t| t.saturating_since(now))
        .unwrap_or(cap)
        .min(cap);
    if d == Duration::ZERO {
        return Ok(());
    }
    let micros = d.as_micros() as u64;
    let ts = libc::timespec {
        tv_sec: (micros / 1_000_000) as libc::time_t,
        tv_nsec: ((micros % 1_000_000) * 1000) as libc::c_long,
    };
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd and a valid timespec, both alive for the
    // call; no signal mask is passed.
    let r = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// CPU time the calling thread has used.
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A kernel socket's TCP_INFO.
fn kernel_info(s: &TcpStream) -> KernelInfo {
    // SAFETY: tcp_info is plain data; zero is a valid value.
    let mut ti: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `ti` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut ti as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return KernelInfo::default();
    }
    KernelInfo {
        total_retrans: ti.tcpi_total_retrans,
        dsack_dups: ti.tcpi_dsack_dups,
        snd_mss: ti.tcpi_snd_mss,
    }
}

/// The kernel peer's result: its digest, its TCP_INFO, and (receiving)
/// when it saw the end of the stream.
type KernelResult = io::Result<((u64, u128), KernelInfo, Option<std::time::Instant>)>;

fn kernel_sender(stream: io::Result<TcpStream>, bytes: u64, seed: u64, hash: bool) -> KernelResult {
    let mut s = stream?;
    set_cubic(&s)?;
    let mut d = Digest::new();
    let mut buf = vec![0u8; 1 << 18];
    if !hash {
        fill_pattern(seed, 0, &mut buf);
    }
    let mut off = 0u64;
    while off < bytes {
        let n = (bytes - off).min(buf.len() as u64) as usize;
        if hash {
            fill_pattern(seed, off, &mut buf[..n]);
            d.update(&buf[..n]);
        }
        s.write_all(&buf[..n])?;
        off += n as u64;
    }
    s.shutdown(NetShutdown::Write)?;
    // Wait for Daytona's FIN: everything was delivered.
    let mut rest = [0u8; 64];
    while s.read(&mut rest)? > 0 {}
    let info = kernel_info(&s);
    let digest = if hash { d.finish() } else { (bytes, 0) };
    Ok((digest, info, None))
}

fn kernel_receiver(listener: TcpListener, hash: bool) -> KernelResult {
    let (mut s, _) = listener.accept()?;
    let mut d = Digest::new();
    let mut buf = vec![0u8; 1 << 18];
    let mut total = 0u64;
    let end = loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break Some(std::time::Instant::now());
        }
        total += n as u64;
        if hash {
            d.update(&buf[..n]);
        }
    };
    let info = kernel_info(&s);
    s.shutdown(NetShutdown::Write)?;
    Ok((if hash { d.finish() } else { (total, 0) }, info, end))
}

/// The Daytona side of a transfer.
struct App {
    dir: Direction,
    bytes: u64,
    seed: u64,
    hash: bool,
    conn: Option<ConnHandle>,
    listener: Option<daytona_core::stack::ListenerHandle>,
    off: u64,
    shut: bool,
    eof: bool,
    digest: Digest,
    buf: Vec<u8>,
    /// Pattern bytes at `buf_off..buf_off+buf_len` of the stream.
    buf_off: u64,
    buf_len: usize,
    info: Option<TcpInfo>,
    started: Option<std::time::Instant>,
    finished: Option<std::time::Instant>,
}

impl App {
    /// Moves data between the application and the stack; true if it did
    /// anything.
    fn step(&mut self, stack: &mut Stack, now: Instant) -> io::Result<bool> {
        if self.conn.is_none() {
            if let Some(l) = self.listener {
                match stack.tcp_accept(l) {
                    Ok(c) => self.conn = Some(c),
                    Err(Error::WouldBlock) => return Ok(false),
                    Err(e) => return Err(core_err("accept", e)),
                }
            }
        }
        let Some(c) = self.conn else { return Ok(false) };
        let mut progress = false;
        match self.dir {
            Direction::DaytonaToKernel => {
                while self.off < self.bytes {
                    if self.buf_len == 0 || self.off >= self.buf_off + self.buf_len as u64 {
                        let n = (self.bytes - self.off).min(self.buf.len() as u64) as usize;
                        if self.hash || self.buf_len == 0 {
                            fill_pattern(self.seed, self.off, &mut self.buf[..n]);
                        }
                        if self.hash {
                            self.digest.update(&self.buf[..n]);
                        }
                        self.buf_off = self.off;
                        self.buf_len = n;
                    }
                    let from = (self.off - self.buf_off) as usize;
                    let chunk = &self.buf[from..self.buf_len];
                    match stack.tcp_send(now, c, chunk) {
                        Ok(0) | Err(Error::WouldBlock) => break,
                        Ok(n) => {
                            self.started.get_or_insert_with(std::time::Instant::now);
                            self.off += n as u64;
                            progress = true;
                        }
                        Err(e) => return Err(core_err("send", e)),
                    }
                }
                if self.off == self.bytes && !self.shut {
                    stack
                        .tcp_shutdown(now, c, Shutdown::Write)
                        .map_err(|e| core_err("shutdown", e))?;
                    self.shut = true;
                    progress = true;
                }
            }
            Direction::KernelToDaytona => loop {
                if self.eof {
                    break;
                }
                match stack.tcp_recv(now, c, &mut self.buf) {
                    Ok(0) => {
                        self.eof = true;
                        self.finished = Some(std::time::Instant::now());
                        self.info = stack.tcp_info(now, c).ok();
                        stack.tcp_close(now, c).map_err(|e| core_err("close", e))?;
                        progress = true;
                    }
                    Ok(n) => {
                        self.started.get_or_insert_with(std::time::Instant::now);
                        if self.hash {
                            self.digest.update(&self.buf[..n]);
                        }
                        self.off += n as u64;
                        progress = true;
                    }
                    Err(Error::WouldBlock) => break,
                    Err(e) => return Err(core_err("recv", e)),
                }
            },
        }
        Ok(progress)
    }
}

/// Kernel-side nftables table with the run's rules, if any: a `netdev`
/// table with chains on the TAP's egress (kernel → Daytona) and ingress
/// (Daytona → kernel) hooks.
///
/// A drop on the kernel's *own* transmit path (the `ip` output and
/// postrouting hooks, and the device's egress hook alike) is reported to
/// the kernel's TCP as a local send error: it keeps the segment and sends
/// it again later, so the receiver sees no loss at all. Loss of the
/// kernel's data is therefore made on Daytona's side (`Impaired::with_rx`);
/// nftables drops what Daytona sends (ingress) and duplicates what the
/// kernel sends (egress `dup to`).
fn kernel_rules(ns: &Netns, dev: &str, r: &Run) -> io::Result<Option<String>> {
    if r.kernel_egress.is_empty() && r.kernel_ingress.is_empty() && r.kernel_forward.is_empty() {
        return Ok(None);
    }
    let table = daytona_testnet::unique_name("dtimp");
    let mut script =
        format!("table ip {table} {{\n chain forward {{\n  type filter hook forward priority 0;\n");
    for rule in &r.kernel_forward {
        let rule = rule.replace("{dev}", dev);
        script.push_str(&format!("  ip daddr {DAYTONA} {rule}\n"));
    }
    script.push_str(" }\n}\n");
    script.push_str(&format!("table netdev {table} {{\n"));
    for (hook, rules, addr) in [
        ("egress", &r.kernel_egress, "daddr"),
        ("ingress", &r.kernel_ingress, "saddr"),
    ] {
        if rules.is_empty() {
            continue;
        }
        script.push_str(&format!(
            " chain {hook} {{\n  type filter hook {hook} device \"{dev}\" priority 0;\n"
        ));
        for rule in rules {
            let rule = rule.replace("{dev}", dev);
            script.push_str(&format!("  ip {addr} {DAYTONA} {rule}\n"));
        }
        script.push_str(" }\n");
    }
    script.push_str("}\n");
    ns.nft(&script)?;
    Ok(Some(table))
}

/// The packet counts of the tables' rules, in order (forward, egress,
/// ingress).
fn rule_hits(ns: &Netns, table: &str) -> io::Result<Vec<u64>> {
    let mut out = ns.exec(&["nft", "list", "table", "ip", table])?;
    out.push_str(&ns.exec(&["nft", "list", "table", "netdev", table])?);
    Ok(out
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("counter packets ")? + "counter packets ".len()..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect())
}

/// Where the kernel peer runs and its address.
#[derive(Clone)]
struct Peer {
    /// `None`: the TAP's namespace (threads spawned by the Daytona thread).
    ns: Option<Arc<Netns>>,
    addr: Ipv4Addr,
}

/// Runs one transfer in fresh namespaces (removed afterwards).
pub fn run(r: &Run) -> io::Result<Outcome> {
    let ns = Arc::new(Netns::new("dtap")?);
    let mut peer = Peer {
        ns: None,
        addr: KERNEL,
    };
    let mut _veth = None;
    if r.kernel_router {
        let k = Arc::new(Netns::new("dtkp")?);
        let (vr, vk) = (
            daytona_testnet::unique_name("dtvr"),
            daytona_testnet::unique_name("dtvk"),
        );
        _veth = Some(Veth::new(&ns, &vr, &k, &vk)?);
        let mtu = r.mtu.to_string();
        ns.exec(&["ip", "link", "set", &vr, "mtu", &mtu])?;
        k.exec(&["ip", "link", "set", &vk, "mtu", &mtu])?;
        ns.exec(&["ip", "addr", "add", &format!("{ROUTER}/24"), "dev", &vr])?;
        k.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{KERNEL_REMOTE}/24"),
            "dev",
            &vk,
        ])?;
        k.exec(&[
            "ip",
            "route",
            "add",
            "198.18.1.0/24",
            "via",
            &ROUTER.to_string(),
        ])?;
        if r.kernel_per_packet {
            // The kernel's TCP sizes its GSO packets for the route's device.
            k.exec(&["ip", "link", "set", "dev", &vk, "gso_max_segs", "1"])?;
        }
        ns.sysctl("net.ipv4.ip_forward", "1")?;
        peer = Peer {
            ns: Some(k),
            addr: KERNEL_REMOTE,
        };
    }
    let ns2 = ns.clone();
    let r = r.clone();
    ns.run(move || run_inside(&ns2, &r, peer))
}

fn run_inside(ns: &Netns, r: &Run, peer: Peer) -> io::Result<Outcome> {
    let name = daytona_testnet::unique_name("dtap");
    let tap = TapConfig::default()
        .name(&name)
        .mtu(r.mtu)
        .mode(r.mode)
        .offloads(r.offloads)
        .open()?;
    let offloads_in_effect = tap.offloads();
    ns.exec(&["ip", "addr", "add", &format!("{KERNEL}/24"), "dev", &name])?;
    if r.kernel_per_packet {
        ns.exec(&["ip", "link", "set", "dev", &name, "gso_max_segs", "1"])?;
    }
    let table = kernel_rules(ns, &name, r)?;
    let impaired = r.tx_impair.is_some() || r.rx_impair.is_some();
    let mut config = tap.stack_config(DAYTONA, 24);
    config.gateway = Some(KERNEL);
    if impaired {
        // The fault model works per packet (the Driver would refuse TSO).
        config.tso_max = None;
    }
    let stack = Stack::new(config, CcRegistry::with_builtin()).map_err(|e| core_err("stack", e))?;
    let mut out = if impaired {
        let tx = FaultModel::new(r.tx_impair.clone().unwrap_or_default(), r.seed);
        let mut link = Impaired::new(tap, tx);
        if let Some(rx) = r.rx_impair.clone() {
            link = link.with_rx(FaultModel::new(rx, r.seed + 1));
        }
        let mut d = Driver::new(stack, link)?;
        let mut o = transfer(&mut d, r, &peer)?;
        o.tap = d.link().inner().stats().clone();
        o.tx_faults = Some(d.link().model().stats.clone());
        o.rx_faults = d.link().rx_model().map(|m| m.stats.clone());
        o
    } else {
        let mut d = Driver::new(stack, tap)?;
        let mut o = transfer(&mut d, r, &peer)?;
        o.tap = d.link().stats().clone();
        o
    };
    out.offloads_in_effect = offloads_in_effect;
    if let Some(t) = table {
        out.rule_hits = rule_hits(ns, &t)?;
    }
    Ok(out)
}

fn transfer<L: Link>(d: &mut Driver<L>, r: &Run, peer: &Peer) -> io::Result<Outcome> {
    let clock = Clock(std::time::Instant::now());
    let cpu0 = thread_cpu();
    let fd = d
        .link()
        .wait_fd()
        .ok_or_else(|| err("the TAP link has no descriptor"))?;
    let mut app = App {
        dir: r.direction,
        bytes: r.bytes,
        seed: r.seed,
        hash: r.hash,
        conn: None,
        listener: None,
        off: 0,
        shut: false,
        eof: false,
        digest: Digest::new(),
        buf: vec![0u8; 1 << 18],
        buf_off: 0,
        buf_len: 0,
        info: None,
        started: None,
        finished: None,
    };
    let (seed, bytes, hash) = (r.seed, r.bytes, r.hash);
    let peer: JoinHandle<KernelResult> = match r.direction {
        Direction::KernelToDaytona => {
            let l = d
                .stack()
                .tcp_listen(SocketAddrV4::new(DAYTONA, PORT), 16)
                .map_err(|e| core_err("listen", e))?;
            app.listener = Some(l);
            let send = move || {
                let s = TcpStream::connect(SocketAddrV4::new(DAYTONA, PORT));
                kernel_sender(s, bytes, seed, hash)
            };
            match &peer.ns {
                Some(k) => k.thread(send),
                // Threads spawned here are in the TAP's namespace too.
                None => std::thread::spawn(send),
            }
        }
        Direction::DaytonaToKernel => {
            let at = SocketAddrV4::new(peer.addr, PORT);
            let bind = move || -> io::Result<TcpListener> {
                let l = TcpListener::bind(at)?;
                set_cubic(&l)?;
                Ok(l)
            };
            let l = match &peer.ns {
                Some(k) => k.run(bind)?,
                None => bind()?,
            };
            let now = clock.now();
            let c = d
                .stack()
                .tcp_connect(now, at, None)
                .map_err(|e| core_err("connect", e))?;
            app.conn = Some(c);
            std::thread::spawn(move || kernel_receiver(l, hash))
        }
    };
    let give_up = std::time::Instant::now() + r.deadline;
    let kernel_done = loop {
        let now = clock.now();
        let next = d.poll(now)?;
        let progress = app.step(d.stack(), now)?;
        if app.dir == Direction::DaytonaToKernel && !app.eof && peer.is_finished() {
            // The kernel read our FIN and closed: take the last snapshot.
            if let Some(c) = app.conn {
                app.info = d.stack().tcp_info(now, c).ok();
                d.stack()
                    .tcp_close(now, c)
                    .map_err(|e| core_err("close", e))?;
            }
            app.eof = true;
        }
        if app.eof && peer.is_finished() {
            let result = peer.join().map_err(|_| err("kernel peer panicked"))??;
            // Let the stack send what it still has (the last ACK / FIN).
            d.poll(clock.now())?;
            break result;
        }
        if std::time::Instant::now() > give_up {
            let info = app.conn.and_then(|c| d.stack().tcp_info(now, c).ok());
            return Err(err(format!(
                "transfer did not finish in {:?}: {} of {} bytes; connection: {:?}; counters: {:?}",
                r.deadline,
                app.off,
                r.bytes,
                info,
                d.stack().counters()
            )));
        }
        if progress {
            continue;
        }
        // Wake for frames, the stack's next timer, or at the latest in
        // 5 ms to notice the kernel peer finishing.
        wait(fd, now, next, Duration::from_millis(5))?;
    };
    let (kernel_digest, kernel, kernel_end) = kernel_done;
    let mine = if r.hash {
        app.digest.finish()
    } else {
        (app.off, 0)
    };
    let (sent, received) = match r.direction {
        Direction::KernelToDaytona => (kernel_digest, mine),
        Direction::DaytonaToKernel => (mine, kernel_digest),
    };
    let start = app.started.unwrap_or_else(std::time::Instant::now);
    let end = kernel_end
        .or(app.finished)
        .unwrap_or_else(std::time::Instant::now);
    Ok(Outcome {
        sent,
        received,
        info: app.info.unwrap_or_default(),
        counters: d.stack().counters().clone(),
        tap: TapStats::default(),
        tx_faults: None,
        rx_faults: None,
        kernel,
        rule_hits: Vec::new(),
        elapsed: end.saturating_duration_since(start),
        daytona_cpu: thread_cpu().saturating_sub(cpu0),
        offloads_in_effect: false,
    })
}
