//! Bulk goodput of raw mode and AF_PACKET L2 mode against the kernel's TCP
//! (CUBIC) over a veth between two namespaces, next to kernel → kernel over
//! the same veth. Needs root.
//!
//! cargo run --release -p daytona-link --example raw_goodput [MB] [kernel|raw|l2]

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
    }
    let day_if = pair.day_if.clone();
    let (ports_if, me) = (day_if.clone(), pair.day_addr());
    if want("raw") {
        both_ways(&pair, "raw", me, len, move || {
            let link = RawLink::open(RawConfig::new().interface(&ports_if).tcp_port(5002))
                .expect("raw link");
            (Driver::new(new_stack(link.stack_config()), link).expect("driver"),)
        });
    }
    let me = Ipv4Addr::new(198, 18, pair.net, 3);
    if want("l2") {
        both_ways(&pair, "L2 (TPACKET_V3, vnet_hdr)", me, len, move || {
            let link = PacketLink::open(PacketConfig::new(&day_if, MAC)).expect("packet link");
            let mut cfg = StackConfig::ethernet(EthernetAddress(MAC), me, 24);
            cfg.mtu = link.mtu();
            if link.offload() {
                cfg.tso_max = Some(link.caps().max_segment);
            }
            (Driver::new(new_stack(cfg), link).expect("driver"),)
        });
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
