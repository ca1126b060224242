//! AF_PACKET L2 mode against the kernel's TCP: the stack has its own MAC
//! and 198.18.N.3 on the Daytona-side veth (whose kernel holds .2), does
//! its own ARP, and moves frames through a TPACKET_V3 ring. Run as root
//! (else SKIPPED; DAYTONA_REQUIRE_PRIV=1 fails instead).

mod common;

use common::*;
use daytona_core::stack::{EthernetAddress, StackConfig};
use daytona_link::packet::PacketStats;
use daytona_link::{netif, FaultModel, Impaired, Impairment, Link, PacketConfig, PacketLink};
use daytona_runtime::Driver;
use daytona_testnet::require_privileges;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

const MAC: [u8; 6] = [0x02, 0xda, 0x79, 0x00, 0x00, 0x03];

fn stack_addr(pair: &Pair) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, pair.net, 3)
}

fn l2_stack(link: &PacketLink, addr: Ipv4Addr) -> daytona_core::stack::Stack {
    let mut cfg = StackConfig::ethernet(EthernetAddress(link.mac()), addr, 24);
    cfg.mtu = link.mtu();
    if link.offload() {
        // TSO: the kernel segments the stack's super-segments and
        // completes their checksums, which the stack leaves partial.
        cfg.tso_max = Some(link.caps().max_segment);
        cfg.tx_csum_offload = link.caps().tx_checksum_offload;
        assert!(cfg.tx_csum_offload);
    }
    new_stack(cfg)
}

/// The peer's neighbour entry for `addr` (learnt through Daytona's ARP).
fn peer_neighbour(pair: &Pair, addr: Ipv4Addr) -> String {
    pair.peer
        .exec(&["ip", "neigh", "show", &addr.to_string()])
        .expect("ip neigh")
}

#[test]
fn l2_mode_daytona_connects_and_sends_100mb_to_the_kernel() {
    if !require_privileges("AF_PACKET L2 interop (Daytona → kernel)") {
        return;
    }
    let pair = Pair::new(41).expect("namespaces");
    let to = SocketAddrV4::new(pair.peer_addr(), 5001);
    let peer = spawn_kernel_receiver(&pair, to);
    let (day_if, me) = (pair.day_if.clone(), stack_addr(&pair));
    let (sent, got, arp_sent, stats) = pair.day.run(move || {
        let link = PacketLink::open(PacketConfig::new(&day_if, MAC)).expect("packet link");
        let mut drv = Driver::new(l2_stack(&link, me), link).expect("driver");
        let (sent, got) = daytona_sends(&mut drv, to, 21, BULK, peer);
        let arp_sent = drv.stack().counters().arp_requests_sent;
        (sent, got, arp_sent, drv.link().stats())
    });
    eprintln!("link stats: {stats:?}");
    assert_eq!(got.len(), BULK);
    assert_eq!(sent.finish(), got.finish(), "bytes differ");
    // Daytona resolved the kernel's MAC itself.
    assert!(arp_sent >= 1);
    // TSO: the stack's super-segments went out whole.
    assert!(stats.tx_gso > 0, "{stats:?}");
    assert!(stats.rx_blocks > 0, "{stats:?}");
    assert!(peer_neighbour(&pair, me).contains("02:da:79:00:00:03"));
    assert_eq!(pair.kernel_rsts(), 0, "the Daytona-side kernel sent RSTs");
}

#[test]
fn l2_mode_kernel_connects_and_sends_100mb_to_daytona() {
    if !require_privileges("AF_PACKET L2 interop (kernel → Daytona)") {
        return;
    }
    let pair = Pair::new(42).expect("namespaces");
    let me = stack_addr(&pair);
    let at = SocketAddrV4::new(me, 5002);
    let (ready, peer) = spawn_kernel_sender(&pair, at, 23, BULK);
    let day_if = pair.day_if.clone();
    let (got, sent, answered, stats) = pair.day.run(move || {
        let link = PacketLink::open(PacketConfig::new(&day_if, MAC)).expect("packet link");
        let mut drv = Driver::new(l2_stack(&link, me), link).expect("driver");
        let (got, sent) = daytona_receives(&mut drv, at, ready, peer);
        let answered = drv.stack().counters().arp_requests_answered;
        (got, sent, answered, drv.link().stats())
    });
    eprintln!("link stats: {stats:?}");
    assert_eq!(got.len(), BULK);
    assert_eq!(sent.finish(), got.finish(), "bytes differ");
    // The kernel found Daytona through Daytona's ARP answer.
    assert!(answered >= 1);
    assert!(peer_neighbour(&pair, me).contains("02:da:79:00:00:03"));
    // The kernel's TSO frames arrived whole, marked as GSO.
    assert!(stats.rx_gso > 0, "{stats:?}");
    assert_eq!(pair.kernel_rsts(), 0, "the Daytona-side kernel sent RSTs");
}

#[test]
fn l2_mode_refuses_the_interfaces_own_mac() {
    if !require_privileges("AF_PACKET L2 MAC check") {
        return;
    }
    let pair = Pair::new(57).expect("namespaces");
    let day_if = pair.day_if.clone();
    let err = pair.day.run(move || {
        let own = netif::mac(&day_if).expect("mac");
        PacketLink::open(PacketConfig::new(&day_if, own)).err()
    });
    let e = err.expect("opened with the kernel's MAC");
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("MAC of the stack's own"), "{e}");
}

#[test]
fn l2_mode_without_cap_net_raw_the_error_names_it() {
    if !require_privileges("capability errors (L2)") {
        return;
    }
    let pair = Pair::new(43).expect("namespaces");
    let day_if = pair.day_if.clone();
    let err = pair.day.run(move || {
        netif::drop_capabilities(&[netif::CAP_NET_RAW]).expect("drop CAP_NET_RAW");
        PacketLink::open(PacketConfig::new(&day_if, MAC)).err()
    });
    let e = err.expect("opened without CAP_NET_RAW");
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("CAP_NET_RAW"), "{e}");
}

#[test]
fn l2_mode_at_mtu_9000_both_ways() {
    if !require_privileges("AF_PACKET L2 at MTU 9000") {
        return;
    }
    let pair = Pair::new(44).expect("namespaces");
    for (ns, ifname) in [(&pair.peer, &pair.peer_if), (&pair.day, &pair.day_if)] {
        ns.exec(&["ip", "link", "set", ifname, "mtu", "9000"])
            .expect("mtu");
    }
    let me = stack_addr(&pair);
    let to = SocketAddrV4::new(pair.peer_addr(), 5001);
    let at = SocketAddrV4::new(me, 5002);
    let receiver = spawn_kernel_receiver(&pair, to);
    let (ready, sender) = spawn_kernel_sender(&pair, at, 33, 30_000_000);
    let day_if = pair.day_if.clone();
    let (out, inn, stats) = pair.day.run(move || {
        let link = PacketLink::open(PacketConfig::new(&day_if, MAC)).expect("packet link");
        assert_eq!(link.mtu(), 9000);
        let mut drv = Driver::new(l2_stack(&link, me), link).expect("driver");
        let out = daytona_sends(&mut drv, to, 32, 30_000_000, receiver);
        let inn = daytona_receives(&mut drv, at, ready, sender);
        (out, inn, drv.link().stats())
    });
    assert_eq!(out.0.len(), 30_000_000);
    assert_eq!(out.0.finish(), out.1.finish());
    assert_eq!(inn.0.len(), 30_000_000);
    assert_eq!(inn.0.finish(), inn.1.finish());
    assert!(stats.tx_frames < 8_000, "{stats:?}");
    assert_eq!(stats.rx_unusable, 0, "{stats:?}");
    assert_eq!(pair.kernel_rsts(), 0);
}

/// 30 MB each way over a link opened with `tune` applied to its config;
/// returns the link's counters.
fn l2_both_ways(net: u8, tune: fn(&mut PacketConfig)) -> PacketStats {
    let pair = Pair::new(net).expect("namespaces");
    let me = stack_addr(&pair);
    let to = SocketAddrV4::new(pair.peer_addr(), 5001);
    let at = SocketAddrV4::new(me, 5002);
    let receiver = spawn_kernel_receiver(&pair, to);
    let (ready, sender) = spawn_kernel_sender(&pair, at, 35, 30_000_000);
    let day_if = pair.day_if.clone();
    let (out, inn, stats) = pair.day.run(move || {
        let mut cfg = PacketConfig::new(&day_if, MAC);
        tune(&mut cfg);
        let link = PacketLink::open(cfg.clone()).expect("packet link");
        assert_eq!(link.offload(), cfg.offload);
        if !cfg.offload {
            assert_eq!(link.caps().max_segment, link.mtu());
        }
        let mut drv = Driver::new(l2_stack(&link, me), link).expect("driver");
        let out = daytona_sends(&mut drv, to, 34, 30_000_000, receiver);
        let inn = daytona_receives(&mut drv, at, ready, sender);
        (out, inn, drv.link().stats())
    });
    eprintln!("link stats: {stats:?}");
    assert_eq!(out.0.len(), 30_000_000);
    assert_eq!(out.0.finish(), out.1.finish());
    assert_eq!(inn.0.len(), 30_000_000);
    assert_eq!(inn.0.finish(), inn.1.finish());
    assert_eq!(pair.kernel_rsts(), 0);
    stats
}

#[test]
fn l2_mode_without_offloads_both_ways() {
    if !require_privileges("AF_PACKET L2 without PACKET_VNET_HDR") {
        return;
    }
    let stats = l2_both_ways(45, |c| c.offload = false);
    // Partial checksums of the kernel's GSO frames completed in software.
    assert!(stats.rx_checksum_completed > 0, "{stats:?}");
    assert_eq!((stats.tx_gso, stats.rx_gso), (0, 0), "{stats:?}");
    assert!(stats.rx_blocks > 0, "{stats:?}");
}

#[test]
fn l2_mode_without_the_ring_both_ways() {
    if !require_privileges("AF_PACKET L2 with recvmmsg") {
        return;
    }
    let stats = l2_both_ways(47, |c| c.ring = false);
    assert_eq!(stats.rx_blocks, 0, "{stats:?}");
    assert!(stats.rx_gso > 0 && stats.tx_gso > 0, "{stats:?}");
}

#[test]
fn l2_mode_without_ring_or_offloads_both_ways() {
    if !require_privileges("AF_PACKET L2 with recvmmsg, no PACKET_VNET_HDR") {
        return;
    }
    let stats = l2_both_ways(48, |c| {
        c.ring = false;
        c.offload = false;
    });
    assert!(stats.rx_checksum_completed > 0, "{stats:?}");
    assert_eq!(
        (stats.rx_blocks, stats.tx_gso, stats.rx_gso),
        (0, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn l2_mode_receive_side_corruption_and_loss_are_caught() {
    if !require_privileges("AF_PACKET L2 with receive-side impairment") {
        return;
    }
    let pair = Pair::new(55).expect("namespaces");
    let me = stack_addr(&pair);
    let at = SocketAddrV4::new(me, 5002);
    let (ready, sender) = spawn_kernel_sender(&pair, at, 37, 20_000_000);
    let day_if = pair.day_if.clone();
    let (got, sent, rx, bad) = pair.day.run(move || {
        let link = PacketLink::open(PacketConfig::new(&day_if, MAC)).expect("packet link");
        // The fault model works per packet: no TSO through it.
        let mut cfg = StackConfig::ethernet(EthernetAddress(link.mac()), me, 24);
        cfg.mtu = link.mtu();
        let stack = new_stack(cfg);
        // The kernel's GSO frames arrive with trusted partial checksums; the
        // receive-side fault model cuts them into packets and completes
        // the checksums before it damages any, so the stack must catch
        // every corrupted one.
        let rx = FaultModel::new(
            Impairment {
                corrupt: 0.01,
                loss: 0.01,
                ..Impairment::default()
            },
            7,
        );
        let link = Impaired::new(link, FaultModel::new(Impairment::default(), 8)).with_rx(rx);
        let mut drv = Driver::new(stack, link).expect("driver");
        let (got, sent) = daytona_receives(&mut drv, at, ready, sender);
        let rx = drv.link().rx_model().expect("rx model").stats.clone();
        let c = drv.stack().counters();
        (got, sent, rx, c.tcp_bad_checksum + c.ip_bad_checksum)
    });
    assert_eq!(got.len(), 20_000_000);
    assert_eq!(got.finish(), sent.finish(), "bytes differ");
    assert!(rx.corrupted > 0 && rx.lost > 0, "{rx:?}");
    // A flipped bit may land in a field no checksum covers (the Ethernet
    // header) but most are caught.
    assert!(bad > 0, "no corrupted frame was caught ({rx:?})");
}

/// As the raw-mode test: a `tbf` qdisc with a 64 KB queue on Daytona's
/// side refuses TSO frames while full (`ENOBUFS`); the link holds them in
/// its backlog, in order, and sends them when called back.
#[test]
fn l2_mode_through_a_rate_limited_interface_holds_frames_in_its_backlog() {
    if !require_privileges("L2 mode through a tbf qdisc") {
        return;
    }
    let pair = Pair::new(62).expect("namespaces");
    rate_limit(&pair, "64kb", "200kb");
    let (day_if, me) = (pair.day_if.clone(), stack_addr(&pair));
    let open = move || {
        let link = PacketLink::open(PacketConfig::new(&day_if, MAC)).expect("packet link");
        Driver::new(l2_stack(&link, me), link).expect("driver")
    };
    let stats = bulk_to_kernel(&pair, 62, 8 << 20, open, |d| d.link().stats());
    eprintln!("link stats: {stats:?}");
    assert!(stats.tx_stalls > 0, "the queue never filled: {stats:?}");
}
