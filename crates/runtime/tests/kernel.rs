//! The socket API against the Linux kernel's TCP: a Daytona `Runtime` on a
//! TAP device inside a network namespace per test, the kernel's peer a
//! plain `std::net` socket in that namespace (CUBIC set per socket; the
//! kernel's default here is BBR). Run as root; otherwise each test prints
//! `SKIPPED:` (a failure with `DAYTONA_REQUIRE_PRIV=1`).
//!
//! Addresses: the kernel's side of the TAP is 198.18.2.1/24, Daytona
//! 198.18.2.2. Nothing leaves the namespace, which is removed on drop.

use daytona_core::observe::EventKind;
use daytona_core::time::Duration as CoreDuration;
use daytona_link::{FaultModel, Impaired, Impairment, TapConfig};
use daytona_runtime::{Runtime, StackBuilder, TcpListener, TcpStream, TimerMode};
use daytona_testnet::{
    fill_pattern, pattern_digest, require_privileges, reset_on_close, set_cubic, unique_name,
    Digest, Netns,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{self, Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::thread::JoinHandle;
use std::time::Duration;

const KERNEL: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
const DAYTONA: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
const MB: u64 = 1_000_000;

fn at(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

struct Setup {
    mtu: usize,
    offloads: bool,
    impair: Option<Impairment>,
    timer: TimerMode,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            mtu: 1500,
            offloads: true,
            impair: None,
            timer: TimerMode::HighResolution,
        }
    }
}

/// A Daytona runtime on a TAP in a fresh namespace. Field order matters:
/// the runtime shuts down before the namespace goes.
struct Env {
    rt: Runtime,
    ns: Netns,
}

impl Env {
    fn new(what: &str, s: Setup) -> Option<Env> {
        if !require_privileges(what) {
            return None;
        }
        let ns = Netns::new("rtk").expect("netns");
        let name = unique_name("dtap");
        let tap_name = name.clone();
        let (mtu, offloads, impair, timer) = (s.mtu, s.offloads, s.impair, s.timer);
        let rt = ns.run(move || {
            let tap = TapConfig::default()
                .name(tap_name)
                .mtu(mtu)
                .offloads(offloads)
                .open()
                .expect("tap");
            let b = StackBuilder::new()
                .addr(DAYTONA, 24)
                .mac(tap.mac())
                .timer_mode(timer)
                .congestion_control("cubic");
            match impair {
                None => b.link(tap),
                Some(i) => {
                    let tx = FaultModel::new(i.clone(), 1);
                    let rx = FaultModel::new(i, 2);
                    b.link(Impaired::new(tap, tx).with_rx(rx))
                }
            }
            .build()
            .expect("runtime")
        });
        ns.exec(&["ip", "addr", "add", &format!("{KERNEL}/24"), "dev", &name])
            .expect("address");
        ns.exec(&["ip", "link", "set", &name, "up", "mtu", &mtu.to_string()])
            .expect("up");
        Some(Env { rt, ns })
    }

    /// Runs `f` on a thread inside the namespace (the kernel's side).
    fn kernel<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> JoinHandle<R> {
        self.ns.thread(f)
    }
}

/// A kernel listener (CUBIC) on the kernel's side, bound before returning.
fn kernel_listener(env: &Env, port: u16) -> net::TcpListener {
    env.ns.run(move || {
        let l = net::TcpListener::bind(at(KERNEL, port)).expect("kernel bind");
        set_cubic(&l).expect("cubic");
        l
    })
}

/// Sends `len` pattern bytes of `seed`, then half-closes.
fn send_pattern(w: &mut impl Write, seed: u64, len: u64) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut off = 0;
    while off < len {
        let n = (len - off).min(buf.len() as u64) as usize;
        fill_pattern(seed, off, &mut buf[..n]);
        w.write_all(&buf[..n])?;
        off += n as u64;
    }
    w.flush()
}

/// Reads to EOF, hashing.
fn digest_all(r: &mut impl Read) -> std::io::Result<(u64, u128)> {
    let mut d = Digest::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(d.finish());
        }
        d.update(&buf[..n]);
    }
}

fn bulk(env: &Env, to_daytona: bool, bytes: u64, port: u16) -> TcpStream {
    let want = pattern_digest(9, bytes);
    if to_daytona {
        let l = TcpListener::bind(&env.rt, at(DAYTONA, port)).expect("bind");
        let k = env.kernel(move || {
            let mut s = net::TcpStream::connect(at(DAYTONA, port)).expect("kernel connect");
            set_cubic(&s).expect("cubic");
            send_pattern(&mut s, 9, bytes).expect("kernel send");
            s.shutdown(Shutdown::Write).expect("kernel shutdown");
            // Daytona closes after reading everything.
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).expect("kernel read");
            rest.len()
        });
        let (mut s, peer) = l.accept().expect("accept");
        assert_eq!(peer.ip(), KERNEL);
        let got = digest_all(&mut s).expect("daytona read");
        assert_eq!(got, want, "kernel→Daytona byte-exact");
        s.shutdown(Shutdown::Write).expect("shutdown");
        assert_eq!(k.join().expect("kernel thread"), 0);
        s
    } else {
        let kl = kernel_listener(env, port);
        let k = env.kernel(move || {
            let (mut s, _) = kl.accept().expect("kernel accept");
            let got = digest_all(&mut s).expect("kernel read");
            s.shutdown(Shutdown::Write).expect("kernel shutdown");
            got
        });
        let mut s = TcpStream::connect(&env.rt, at(KERNEL, port)).expect("connect");
        send_pattern(&mut s, 9, bytes).expect("daytona send");
        s.shutdown(Shutdown::Write).expect("shutdown");
        assert_eq!(k.join().expect("kernel thread"), want, "Daytona→kernel");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("eof");
        assert!(rest.is_empty());
        s
    }
}

#[test]
fn handshakes_and_100mb_both_directions_byte_exact() {
    let Some(env) = Env::new("socket API: 100 MB both ways over TAP", Setup::default()) else {
        return;
    };
    let s = bulk(&env, true, 100 * MB, 5001);
    let info = s.info().expect("info");
    assert!(info.options.sack && info.options.timestamps && info.options.window_scale);
    assert_eq!(info.bytes_received, 100 * MB);
    let s = bulk(&env, false, 100 * MB, 5002);
    let info = s.info().expect("info");
    assert_eq!(info.bytes_acked, 100 * MB, "every byte acknowledged");
    let c = env
        .rt
        .with_stack(|st| st.counters().clone())
        .expect("counters");
    assert_eq!((c.tcp_passive_opens, c.tcp_active_opens), (1, 1));
}

#[test]
fn mtu_9000_and_offloads_off() {
    let Some(env) = Env::new(
        "socket API: MTU 9000, offloads off",
        Setup {
            mtu: 9000,
            offloads: false,
            ..Setup::default()
        },
    ) else {
        return;
    };
    let s = bulk(&env, false, 20 * MB, 5003);
    assert_eq!(s.info().expect("info").snd_mss, 9000 - 40 - 12);
    bulk(&env, true, 20 * MB, 5004);
}

#[test]
fn thousand_concurrent_connections_each_way() {
    const N: usize = 1000;
    let Some(env) = Env::new("socket API: 1000 concurrent connections", Setup::default()) else {
        return;
    };
    // Kernel clients → Daytona server; all N open at once.
    let l = TcpListener::bind(&env.rt, at(DAYTONA, 7000)).expect("bind");
    let k = env.kernel(|| {
        let mut socks: Vec<net::TcpStream> = (0..N)
            .map(|i| {
                let mut s = net::TcpStream::connect(at(DAYTONA, 7000)).expect("kernel connect");
                s.write_all(&(i as u32).to_be_bytes()).expect("write");
                s
            })
            .collect();
        for (i, s) in socks.iter_mut().enumerate() {
            let mut b = [0u8; 4];
            s.read_exact(&mut b).expect("reply");
            assert_eq!(u32::from_be_bytes(b), i as u32 + 1);
        }
        socks.len()
    });
    let mut served = Vec::with_capacity(N);
    for _ in 0..N {
        let (mut s, _) = l.accept().expect("accept");
        let mut b = [0u8; 4];
        s.read_exact(&mut b).expect("read");
        s.write_all(&(u32::from_be_bytes(b) + 1).to_be_bytes())
            .expect("write");
        served.push(s);
    }
    assert_eq!(k.join().expect("kernel"), N);
    assert_eq!(env.rt.with_stack(|st| st.connection_count()).unwrap(), N);
    drop(served);

    // Daytona clients → kernel server.
    let kl = kernel_listener(&env, 7001);
    let k = env.kernel(move || {
        let mut held = Vec::with_capacity(N);
        for _ in 0..N {
            let (mut s, _) = kl.accept().expect("kernel accept");
            let mut b = [0u8; 4];
            s.read_exact(&mut b).expect("read");
            s.write_all(&(u32::from_be_bytes(b) * 2).to_be_bytes())
                .expect("write");
            held.push(s);
        }
        held.len()
    });
    let mut clients: Vec<TcpStream> = (0..N)
        .map(|i| {
            let mut s = TcpStream::connect(&env.rt, at(KERNEL, 7001)).expect("connect");
            s.write_all(&(i as u32).to_be_bytes()).expect("write");
            s
        })
        .collect();
    for (i, s) in clients.iter_mut().enumerate() {
        let mut b = [0u8; 4];
        s.read_exact(&mut b).expect("reply");
        assert_eq!(u32::from_be_bytes(b), 2 * i as u32);
    }
    assert_eq!(k.join().expect("kernel"), N);
}

#[test]
fn half_close_both_directions() {
    let Some(env) = Env::new("socket API: half-close", Setup::default()) else {
        return;
    };
    // Daytona half-closes; the kernel answers after EOF.
    let kl = kernel_listener(&env, 5010);
    let k = env.kernel(move || {
        let (mut s, _) = kl.accept().expect("accept");
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("read to EOF");
        s.write_all(b"pong after your FIN").expect("write");
        got
    });
    let mut s = TcpStream::connect(&env.rt, at(KERNEL, 5010)).expect("connect");
    s.write_all(b"ping").expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert!(matches!(s.write(b"x"), Err(e) if e.kind() == ErrorKind::BrokenPipe));
    let mut back = Vec::new();
    s.read_to_end(&mut back).expect("read");
    assert_eq!(back, b"pong after your FIN");
    assert_eq!(k.join().expect("kernel"), b"ping");

    // The kernel half-closes; Daytona answers after EOF.
    let l = TcpListener::bind(&env.rt, at(DAYTONA, 5011)).expect("bind");
    let k = env.kernel(|| {
        let mut s = net::TcpStream::connect(at(DAYTONA, 5011)).expect("connect");
        s.write_all(b"ping").expect("write");
        s.shutdown(Shutdown::Write).expect("shutdown");
        let mut back = Vec::new();
        s.read_to_end(&mut back).expect("read");
        back
    });
    let (mut s, _) = l.accept().expect("accept");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read to EOF");
    assert_eq!(got, b"ping");
    s.write_all(b"pong after your FIN")
        .expect("write after peer's FIN");
    drop(s);
    assert_eq!(k.join().expect("kernel"), b"pong after your FIN");
}

#[test]
fn resets_both_directions() {
    let Some(env) = Env::new("socket API: RST", Setup::default()) else {
        return;
    };
    // The kernel resets (SO_LINGER 0): Daytona's read fails with
    // ConnectionReset.
    let kl = kernel_listener(&env, 5020);
    let k = env.kernel(move || {
        let (mut s, _) = kl.accept().expect("accept");
        let mut b = [0u8; 5];
        s.read_exact(&mut b).expect("read");
        reset_on_close(&s).expect("linger");
        drop(s);
    });
    let mut s = TcpStream::connect(&env.rt, at(KERNEL, 5020)).expect("connect");
    s.write_all(b"hello").expect("write");
    k.join().expect("kernel");
    let mut b = [0u8; 16];
    let e = s.read(&mut b).expect_err("reset");
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");

    // Daytona aborts: the kernel's read fails with ECONNRESET.
    let l = TcpListener::bind(&env.rt, at(DAYTONA, 5021)).expect("bind");
    let k = env.kernel(|| {
        let mut s = net::TcpStream::connect(at(DAYTONA, 5021)).expect("connect");
        s.write_all(b"hello").expect("write");
        let mut b = [0u8; 16];
        s.read(&mut b).map_err(|e| e.kind())
    });
    let (mut s, _) = l.accept().expect("accept");
    let mut b = [0u8; 5];
    s.read_exact(&mut b).expect("read");
    s.abort().expect("abort");
    assert_eq!(k.join().expect("kernel"), Err(ErrorKind::ConnectionReset));
}

#[test]
fn either_side_closing_first() {
    let Some(env) = Env::new("socket API: close order", Setup::default()) else {
        return;
    };
    // Daytona closes first: it is the one in TIME-WAIT (RFC 9293 §3.6).
    let kl = kernel_listener(&env, 5030);
    let k = env.kernel(move || {
        let (mut s, _) = kl.accept().expect("accept");
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("EOF");
        drop(s); // our FIN answers theirs
        got
    });
    let mut s = TcpStream::connect(&env.rt, at(KERNEL, 5030)).expect("connect");
    s.write_all(b"bye").expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("EOF");
    assert_eq!(k.join().expect("kernel"), b"bye");
    let st = s.state().expect("state");
    assert_eq!(format!("{st:?}"), "TimeWait");

    // The kernel closes first: Daytona reads EOF, closes, and is not left
    // in TIME-WAIT.
    let l = TcpListener::bind(&env.rt, at(DAYTONA, 5031)).expect("bind");
    let k = env.kernel(|| {
        let mut s = net::TcpStream::connect(at(DAYTONA, 5031)).expect("connect");
        s.write_all(b"bye").expect("write");
        s.shutdown(Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("EOF");
        rest
    });
    let (mut s, _) = l.accept().expect("accept");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("EOF");
    assert_eq!(got, b"bye");
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert!(k.join().expect("kernel").is_empty());
    let st = format!("{:?}", s.state().expect("state"));
    assert_ne!(st, "TimeWait");
}

#[test]
fn accept_backlog_overflow_drops_syns_until_the_application_accepts() {
    let Some(env) = Env::new("socket API: backlog overflow", Setup::default()) else {
        return;
    };
    let events = env.rt.events(1024);
    let l = TcpListener::bind_with_backlog(&env.rt, at(DAYTONA, 5040), 2).expect("bind");
    let client = || {
        env.kernel(|| {
            net::TcpStream::connect_timeout(&at(DAYTONA, 5040), Duration::from_secs(20))
                .map(|s| s.peer_addr().is_ok())
                .map_err(|e| e.kind())
        })
    };
    // Two connections fill the accept queue (the kernel's connect returns
    // once the handshake is done, so they are queued when joined).
    for _ in 0..2 {
        assert_eq!(client().join().expect("kernel"), Ok(true));
    }
    // The kernel's connect returns once it has sent the final ACK; the
    // connection is queued when Daytona has processed it: wait for both.
    let mut established = 0;
    while established < 2 {
        match events.next_timeout(CoreDuration::from_secs(10)) {
            Some(e)
                if matches!(
                    e.kind,
                    EventKind::StateChange {
                        to: daytona_core::tcp::State::Established,
                        ..
                    }
                ) =>
            {
                established += 1
            }
            Some(_) => continue,
            None => panic!("the two handshakes did not complete"),
        }
    }
    assert_eq!(l.pending().expect("pending"), 2);
    // A third SYN is dropped (Linux's behaviour with a full accept queue)...
    let third = client();
    let overflowed = loop {
        match events.next_timeout(CoreDuration::from_secs(10)) {
            Some(e) if matches!(e.kind, EventKind::ListenOverflow { .. }) => break true,
            Some(_) => continue,
            None => break false,
        }
    };
    assert!(overflowed, "the SYN beyond the backlog was dropped");
    assert_eq!(l.pending().expect("pending"), 2);
    // ...and accepting makes room: the kernel's retransmitted SYN gets in.
    l.accept().expect("accept");
    assert_eq!(third.join().expect("kernel"), Ok(true));
    for _ in 0..2 {
        l.accept().expect("accept");
    }
    let c = env
        .rt
        .with_stack(|st| st.counters().clone())
        .expect("counters");
    assert!(c.tcp_listen_overflows >= 1);
}

#[test]
fn refused_both_directions_and_connect_timeout() {
    let Some(env) = Env::new("socket API: refused, timeout", Setup::default()) else {
        return;
    };
    let e = TcpStream::connect(&env.rt, at(KERNEL, 5999)).expect_err("nobody listens");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    let k = env.kernel(|| {
        net::TcpStream::connect(at(DAYTONA, 5999))
            .map(drop)
            .map_err(|e| e.kind())
    });
    assert_eq!(k.join().expect("kernel"), Err(ErrorKind::ConnectionRefused));
    // The kernel's side silently drops SYNs to this port.
    env.ns
        .nft(
            "table ip blackhole {\n chain in {\n type filter hook input priority 0; policy accept\n \
             tcp dport 5998 drop\n }\n}\n",
        )
        .expect("nft");
    let e = TcpStream::connect_timeout(&env.rt, &at(KERNEL, 5998), Duration::from_millis(300))
        .expect_err("silence");
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
}

#[test]
fn transfers_under_impairment() {
    // Daytona's side of the link delays (10 ms each way: 20 ms RTT), loses
    // 1%, reorders, duplicates and corrupts, in both directions; the
    // kernel's side also loses 1% of what it sends (nftables numgen).
    let imp = Impairment {
        delay: CoreDuration::from_millis(10),
        loss: 0.01,
        reorder: 0.01,
        duplicate: 0.01,
        corrupt: 0.002,
        ..Impairment::default()
    };
    let Some(env) = Env::new(
        "socket API: impaired TAP",
        Setup {
            impair: Some(imp),
            offloads: false,
            ..Setup::default()
        },
    ) else {
        return;
    };
    env.ns
        .nft(&format!(
            "table ip impair {{\n chain out {{\n type filter hook output priority 0; policy accept\n \
             ip daddr {DAYTONA} numgen random mod 100 < 1 counter drop\n }}\n}}\n"
        ))
        .expect("nft");
    let s = bulk(&env, false, 3 * MB, 5050);
    assert!(s.info().expect("info").total_retrans > 0, "losses repaired");
    let s = bulk(&env, true, 3 * MB, 5051);
    drop(s);
    let c = env
        .rt
        .with_stack(|st| st.counters().clone())
        .expect("counters");
    assert!(
        c.tcp_bad_checksum + c.ip_bad_checksum > 0,
        "corrupted frames were dropped and counted: {c:?}"
    );
    let drops = env
        .ns
        .exec(&["nft", "list", "table", "ip", "impair"])
        .expect("nft");
    assert!(
        !drops.contains("packets 0 "),
        "kernel-side loss happened: {drops}"
    );
}

#[test]
fn jiffies_timer_mode_against_the_kernel() {
    // No added delay: an Impaired delay would itself be released on the
    // 10 ms tick.
    let imp = Impairment {
        loss: 0.01,
        ..Impairment::default()
    };
    let Some(env) = Env::new(
        "socket API: jiffies timer mode",
        Setup {
            impair: Some(imp),
            offloads: false,
            timer: TimerMode::Jiffies,
            ..Setup::default()
        },
    ) else {
        return;
    };
    let s = bulk(&env, false, 4 * MB, 5060);
    let info = s.info().expect("info");
    assert!(info.total_retrans > 0);
    // Timers tick every 10 ms, but RTT samples stay fine-grained: the
    // sub-millisecond RTT of a TAP is measured as such, not as a tick.
    let srtt = info.rtt.as_micros();
    assert!(srtt > 0 && srtt < 5_000, "srtt {srtt} µs");
}

#[test]
fn raw_mode_listeners_opened_after_the_link_get_their_ports() {
    use daytona_link::{RawConfig, RawLink};
    use daytona_testnet::Veth;
    const K: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 1);
    const D: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 2);
    if !require_privileges("socket API: raw mode listeners") {
        return;
    }
    let kns = Netns::new("rawk").expect("netns");
    let dns = Netns::new("rawd").expect("netns");
    let _veth = Veth::new(&kns, "k0", &dns, "d0").expect("veth");
    kns.exec(&["ip", "addr", "add", &format!("{K}/24"), "dev", "k0"])
        .expect("addr");
    dns.exec(&["ip", "addr", "add", &format!("{D}/24"), "dev", "d0"])
        .expect("addr");
    // The link opens with no ports of its own; listeners add theirs.
    let rt = dns.run(|| {
        let link = RawLink::open(RawConfig::new().interface("d0")).expect("raw link");
        StackBuilder::new()
            .addr(D, 24)
            .ephemeral_ports(link.ephemeral_ports())
            .link(link)
            .build()
            .expect("runtime")
    });
    // A port a kernel socket on Daytona's side holds is refused.
    let held = dns.run(|| net::TcpListener::bind(at(D, 5070)).expect("kernel bind"));
    let e = TcpListener::bind(&rt, at(D, 5070)).expect_err("the kernel holds it");
    assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
    drop(held);

    let l = TcpListener::bind(&rt, at(D, 5071)).expect("bind");
    let k = kns.thread(|| {
        let mut s = net::TcpStream::connect(at(D, 5071)).expect("kernel connect");
        set_cubic(&s).expect("cubic");
        send_pattern(&mut s, 3, 2 * MB).expect("send");
        s.shutdown(Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).map(|_| rest.len())
    });
    let (mut s, _) = l.accept().expect("accept");
    assert_eq!(digest_all(&mut s).expect("read"), pattern_digest(3, 2 * MB));
    drop(s);
    assert_eq!(k.join().expect("kernel").expect("EOF, no reset"), 0);
    // Closing the listener gives the port back to the kernel, which
    // refuses the next connection itself.
    drop(l);
    let refused = kns.run(|| {
        net::TcpStream::connect(at(D, 5071))
            .map(drop)
            .map_err(|e| e.kind())
    });
    assert_eq!(refused, Err(ErrorKind::ConnectionRefused));
    drop(rt);
}
