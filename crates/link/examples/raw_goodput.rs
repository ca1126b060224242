//! Bulk goodput of raw mode and AF_PACKET L2 mode against the kernel's TCP
//! (CUBIC) over a veth between two namespaces, next to kernel → kernel over
//! the same veth. Needs root.
//!
//! cargo run --release -p daytona-link --example raw_goodput [MB] [kernel|raw|l2]
//!
//! Also a 1-byte request/response round trip (kernel client, Daytona echo
//! server; mean and p99 of 5,000 exchanges).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use daytona_core::stack::{EthernetAddress, StackConfig};
use daytona_link::{Link, PacketConfig, PacketLink, RawConfig, RawLink};
use daytona_runtime::Driver;
use daytona_testnet::require_privileges;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

const MAC: [u8; 6] = [0x02, 0xda, 0x79, 0x00, 0x00, 0x03];

fn report(what: &str, bytes: u64, secs: f64, a: &Tally, b: &Tally) {
    let ok = if a.len() == b.len() {
        "complete"
    } else {
        "INCOMPLETE"
    };
    println!(
        "{what:<34} {:>8.2} Gbit/s  ({} MB in {secs:.2} s, {ok})",
        bytes as f64 * 8.0 / secs / 1e9,
        bytes / 1_000_000
    );
}

fn both_ways<L: Link + 'static>(
    pair: &Pair,
    name: &str,
    me: Ipv4Addr,
    len: u64,
    open: impl Fn() -> (Driver<L>,) + Send + Sync + Clone + 'static,
) {
    let to = SocketAddrV4::new(pair.peer_addr(), 5001);
    let peer = spawn_kernel_receiver(pair, to);
    let o = open.clone();
    let (secs, sent, got) = pair.day.run(move || {
        let (mut drv,) = o();
        let t = Instant::now();
        let (s, g) = daytona_sends(&mut drv, to, 1, len, peer);
        (t.elapsed().as_secs_f64(), s, g)
    });
    report(&format!("{name} Daytona → kernel"), len, secs, &sent, &got);

    let at = SocketAddrV4::new(me, 5002);
    let (ready, peer) = spawn_kernel_sender(pair, at, 2, len);
    let (secs, got, sent) = pair.day.run(move || {
        let (mut drv,) = open();
        let t = Instant::now();
        let (g, s) = daytona_receives(&mut drv, at, ready, peer);
        (t.elapsed().as_secs_f64(), g, s)
    });
    report(&format!("{name} kernel → Daytona"), len, secs, &got, &sent);
}

fn main() {
    if !require_privileges("raw_goodput") {
        return;
    }
    let mb: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let len = mb * 1_000_000;
    let only = std::env::args().nth(2);
    let want = |m: &str| only.as_deref().is_none_or(|o| o == m);
    // Measure the links, not the test data: compare byte counts only.
    CHECK.store(false, std::sync::atomic::Ordering::Relaxed);
    let pair = Pair::new(51).expect("namespaces");

    if want("kernel") {
        kernel_to_kernel(&pair, len);
        kernel_round_trips(&pair);
    }
    let day_if = pair.day_if.clone();
    let (ports_if, me) = (day_if.clone(), pair.day_addr());
    if want("raw") {
        let link = pair.day.run({
            let i = day_if.clone();
            move || RawLink::open(RawConfig::new().interface(&i).tcp_port(5003)).expect("raw link")
        });
        let drv = Driver::new(new_stack(link.stack_config()), link).expect("driver");
        round_trips(
            &pair,
            "raw request/response",
            SocketAddrV4::new(me, 5003),
            drv,
        );
        both_ways(&pair, "raw", me, len, move || {
            let link = RawLink::open(RawConfig::new().interface(&ports_if).tcp_port(5002))
                .expect("raw link");
            (Driver::new(new_stack(link.stack_config()), link).expect("driver"),)
        });
    }
    let me = Ipv4Addr::new(198, 18, pair.net, 3);
    for (ring, label) in [(true, "L2 (TPACKET_V3 ring)"), (false, "L2 (recvmmsg)")] {
        if !want("l2") {
            break;
        }
        let l2 = {
            let i = day_if.clone();
            move || {
                let mut pc = PacketConfig::new(&i, MAC);
                pc.ring = ring;
                let link = PacketLink::open(pc).expect("packet link");
                let mut cfg = StackConfig::ethernet(EthernetAddress(MAC), me, 24);
                cfg.mtu = link.mtu();
                if link.offload() {
                    cfg.tso_max = Some(link.caps().max_segment);
                }
                (Driver::new(new_stack(cfg), link).expect("driver"),)
            }
        };
        let (drv,) = pair.day.run(l2.clone());
        let rr = format!("{label} request/response");
        round_trips(&pair, &rr, SocketAddrV4::new(me, 5003), drv);
        both_ways(&pair, label, me, len, l2);
    }
}

/// Kernel → kernel over the same veth (198.18.N.2 is the kernel's).
fn kernel_to_kernel(pair: &Pair, len: u64) {
    let at = SocketAddrV4::new(pair.day_addr(), 5000);
    let l = pair.day.run(move || kernel_listener(at));
    let rx = pair.day.thread(move || kernel_receive(l));
    let t = Instant::now();
    let sent = pair.peer.run(move || kernel_send_only(at, 3, len));
    let got = rx.join().expect("kernel receiver");
    let secs = t.elapsed().as_secs_f64();
    report("kernel → kernel (veth, cubic)", len, secs, &sent, &got);
}

/// Round trips of 1-byte request/response: a kernel client against a
/// Daytona echo server listening on `at`; returns the sorted RTTs in µs.
fn round_trips<L: Link + Send + 'static>(
    pair: &Pair,
    name: &str,
    at: SocketAddrV4,
    mut drv: Driver<L>,
) {
    const N: usize = 5_000;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let client = pair.peer.thread(move || {
        use std::io::{Read, Write};
        ready_rx.recv().expect("server ready");
        let mut s = std::net::TcpStream::connect(at).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let mut rtts = Vec::with_capacity(N);
        let mut b = [0u8; 1];
        for i in 0..N {
            let t = Instant::now();
            s.write_all(&[i as u8]).expect("write");
            s.read_exact(&mut b).expect("read");
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
        rtts
    });
    let rtts = pair.day.run(move || {
        let l = drv.stack().tcp_listen(at, 4).expect("listen");
        ready_tx.send(()).expect("client waits");
        let mut conn = None;
        let mut buf = [0u8; 64];
        drive(&mut drv, Clock::new(), |s, now| {
            if client.is_finished() {
                return Step::Done;
            }
            if conn.is_none() {
                conn = s.tcp_accept(l).ok();
                if let Some(c) = conn {
                    s.tcp_set_nodelay(now, c, true).expect("nodelay");
                }
            }
            let Some(c) = conn else {
                return Step::Idle;
            };
            match s.tcp_recv(now, c, &mut buf) {
                Ok(n) if n > 0 => {
                    s.tcp_send(now, c, &buf[..n]).expect("echo");
                    Step::Progress
                }
                _ => Step::Idle,
            }
        })
        .expect("echo server");
        client.join().expect("client")
    });
    let mut r = rtts;
    r.sort_by(|a, b| a.total_cmp(b));
    let mean = r.iter().sum::<f64>() / r.len() as f64;
    let p99 = r[r.len() * 99 / 100];
    println!("{name:<34} RTT mean {mean:>7.1} µs  p99 {p99:>7.1} µs  ({N} × 1 byte)");
}

/// The same round trips kernel ↔ kernel over the veth.
fn kernel_round_trips(pair: &Pair) {
    use std::io::{Read, Write};
    const N: usize = 5_000;
    let at = SocketAddrV4::new(pair.day_addr(), 5004);
    let l = pair
        .day
        .run(move || std::net::TcpListener::bind(at).expect("bind"));
    let server = pair.day.thread(move || {
        let (mut s, _) = l.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut b = [0u8; 1];
        while s.read_exact(&mut b).is_ok() {
            s.write_all(&b).expect("echo");
        }
    });
    let mut r = pair.peer.run(move || {
        let mut s = std::net::TcpStream::connect(at).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let mut b = [0u8; 1];
        (0..N)
            .map(|i| {
                let t = Instant::now();
                s.write_all(&[i as u8]).expect("write");
                s.read_exact(&mut b).expect("read");
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect::<Vec<f64>>()
    });
    server.join().expect("server");
    r.sort_by(|a, b| a.total_cmp(b));
    let mean = r.iter().sum::<f64>() / r.len() as f64;
    let p99 = r[r.len() * 99 / 100];
    println!(
        "{:<34} RTT mean {mean:>7.1} µs  p99 {p99:>7.1} µs  ({N} × 1 byte)",
        "kernel request/response"
    );
}
