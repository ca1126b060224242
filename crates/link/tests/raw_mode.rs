//! Raw mode against the kernel's TCP: the stack shares 198.18.N.2 with the
//! kernel of its namespace, sends through a raw IP socket and receives
//! through AF_PACKET + BPF, with the nftables table keeping the kernel
//! quiet. Run as root (else SKIPPED; DAYTONA_REQUIRE_PRIV=1 fails instead).

mod common;

use common::*;
use daytona_link::{netif, nft, FaultModel, Impaired, Impairment, RawConfig, RawLink};
use daytona_runtime::Driver;
use daytona_testnet::require_privileges;
use std::io;
use std::net::SocketAddrV4;
use std::sync::mpsc;

#[test]
fn raw_mode_daytona_connects_and_sends_100mb_to_the_kernel() {
    if !require_privileges("raw mode interop (Daytona → kernel)") {
        return;
    }
    let pair = Pair::new(31).expect("namespaces");
    let to = SocketAddrV4::new(pair.peer_addr(), 5001);
    let peer = spawn_kernel_receiver(&pair, to);
    // No interface named: the link takes the one holding the default route
    // (of the namespace it is opened in) and that interface's address.
    let gw = pair.peer_addr().to_string();
    pair.day
        .exec(&["ip", "route", "add", "default", "via", &gw])
        .expect("default route");
    let (day_if, day_addr) = (pair.day_if.clone(), pair.day_addr());
    let (sent, got, table, stats) = pair.day.run(move || {
        let link = RawLink::open(RawConfig::new()).expect("raw link");
        assert_eq!(link.interface(), day_if);
        assert_eq!(link.addr(), day_addr);
        assert_eq!(link.ephemeral_ports(), 61_000..=65_535);
        let table = link.table_name().expect("a table").to_string();
        let mut drv = Driver::new(new_stack(link.stack_config()), link).expect("driver");
        let (sent, got) = daytona_sends(&mut drv, to, 7, BULK, peer);
        (sent, got, table, drv.link().stats())
    });
    eprintln!("link stats: {stats:?}");
    assert_eq!(got.len(), BULK);
    assert_eq!(sent.finish(), got.finish(), "bytes differ");
    assert!(stats.tx_packets > 60_000, "{stats:?}");
    assert_eq!(pair.kernel_rsts(), 0, "the Daytona-side kernel sent RSTs");
    assert!(
        !pair.day_tables().contains(&table),
        "table {table} left behind"
    );
}

#[test]
fn raw_mode_kernel_connects_and_sends_100mb_to_daytona() {
    if !require_privileges("raw mode interop (kernel → Daytona)") {
        return;
    }
    let pair = Pair::new(32).expect("namespaces");
    let at = SocketAddrV4::new(pair.day_addr(), 5002);
    let (ready, peer) = spawn_kernel_sender(&pair, at, 11, BULK);
    let day_if = pair.day_if.clone();
    let (got, sent, table, stats) = pair.day.run(move || {
        let link =
            RawLink::open(RawConfig::new().interface(&day_if).tcp_port(5002)).expect("raw link");
        let table = link.table_name().expect("a table").to_string();
        let mut drv = Driver::new(new_stack(link.stack_config()), link).expect("driver");
        let (got, sent) = daytona_receives(&mut drv, at, ready, peer);
        (got, sent, table, drv.link().stats())
    });
    eprintln!("link stats: {stats:?}");
    assert_eq!(got.len(), BULK);
    assert_eq!(sent.finish(), got.finish(), "bytes differ");
    // The kernel's TSO packets arrived whole with partial checksums,
    // handed to the stack as trusted.
    assert!(stats.rx_checksum_partial > 0, "{stats:?}");
    assert_eq!(stats.rx_checksum_completed, 0, "{stats:?}");
    // ... and their segment size (estimated from the MTU) went along.
    assert!(stats.rx_gso > 0, "{stats:?}");
    assert_eq!(pair.kernel_rsts(), 0, "the Daytona-side kernel sent RSTs");
    assert!(
        !pair.day_tables().contains(&table),
        "table {table} left behind"
    );
}

#[test]
fn without_the_table_the_kernel_answers_the_stacks_packets_with_rst() {
    // The control experiment for the RST counter of the tests above.
    if !require_privileges("raw mode without nftables") {
        return;
    }
    let pair = Pair::new(33).expect("namespaces");
    let at = SocketAddrV4::new(pair.day_addr(), 5003);
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let peer = pair.peer.thread(move || {
        ready_rx.recv().expect("Daytona is listening");
        // Refused by the kernel's RST, or accepted by the stack: either way
        // the kernel has answered.
        drop(std::net::TcpStream::connect(at));
    });
    let day_if = pair.day_if.clone();
    pair.day.run(move || {
        let mut cfg = RawConfig::new().interface(&day_if).tcp_port(5003);
        cfg.no_nftables = true;
        let link = RawLink::open(cfg).expect("raw link");
        assert_eq!(link.table_name(), None);
        let mut drv = Driver::new(new_stack(link.stack_config()), link).expect("driver");
        drv.stack().tcp_listen(at, 16).expect("listen");
        ready_tx.send(()).expect("peer waits");
        drive(&mut drv, Clock::new(), |_, _| {
            if peer.is_finished() {
                Step::Done
            } else {
                Step::Idle
            }
        })
        .expect("handshake attempt");
    });
    assert!(pair.kernel_rsts() >= 1, "the kernel did not answer");
}

#[test]
fn a_stale_table_of_a_crashed_run_is_replaced_then_removed() {
    if !require_privileges("raw mode stale nftables table") {
        return;
    }
    let pair = Pair::new(34).expect("namespaces");
    let name = nft::table_name(&pair.day_if, pair.day_addr());
    // What a crashed run leaves: a table of the same name (with other rules).
    pair.day
        .nft(&format!(
            "table ip {name} {{\n chain stale {{\n type filter hook input priority 0;\n }}\n}}\n"
        ))
        .expect("stale table");
    let day_if = pair.day_if.clone();
    let listed = pair.day.run(move || {
        let link = RawLink::open(RawConfig::new().interface(&day_if).tcp_port(80))
            .expect("opening over a stale table");
        let table = link.table_name().expect("a table").to_string();
        let out = std::process::Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .expect("nft list");
        drop(link);
        (table, String::from_utf8_lossy(&out.stdout).into_owned())
    });
    let (table, text) = listed;
    assert_eq!(table, name);
    assert!(!text.contains("chain stale"), "{text}");
    assert!(text.contains("tcp dport { 80, 61000-65535 }"), "{text}");
    assert!(!pair.day_tables().contains(&name), "table left behind");
}

#[test]
fn without_cap_net_raw_or_cap_net_admin_the_error_names_it() {
    if !require_privileges("capability errors") {
        return;
    }
    let pair = Pair::new(35).expect("namespaces");
    let day_if = pair.day_if.clone();
    let raw = pair.day.run(move || {
        netif::drop_capabilities(&[netif::CAP_NET_RAW]).expect("drop CAP_NET_RAW");
        RawLink::open(RawConfig::new().interface(&day_if)).err()
    });
    let e = raw.expect("opened without CAP_NET_RAW");
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("CAP_NET_RAW"), "{e}");

    let day_if = pair.day_if.clone();
    let admin = pair.day.run(move || {
        netif::drop_capabilities(&[netif::CAP_NET_ADMIN]).expect("drop CAP_NET_ADMIN");
        RawLink::open(RawConfig::new().interface(&day_if)).err()
    });
    let e = admin.expect("opened without CAP_NET_ADMIN");
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
    assert!(!pair.day_tables().contains("daytona_"));
}

#[test]
fn ports_added_after_open_reach_the_stack_and_not_the_kernel() {
    if !require_privileges("raw mode set_ports (TCP and UDP)") {
        return;
    }
    let pair = Pair::new(36).expect("namespaces");
    // Counts ICMP errors the Daytona-side kernel sends (port unreachable
    // for a UDP datagram it would have thought was its own).
    pair.day
        .nft(&format!(
            "table ip icmpwatch {{\n chain out {{\n type filter hook output priority 0;\n \
             icmp type destination-unreachable ip ttl != {STACK_TTL} counter\n }}\n}}\n"
        ))
        .expect("icmp counter");
    let tcp_at = SocketAddrV4::new(pair.day_addr(), 5005);
    let udp_at = SocketAddrV4::new(pair.day_addr(), 5007);
    let (ready, peer) = spawn_kernel_sender(&pair, tcp_at, 5, 1_000_000);
    let (udp_ready_tx, udp_ready_rx) = mpsc::channel::<()>();
    let peer_addr = pair.peer_addr();
    let udp_peer = pair.peer.thread(move || {
        udp_ready_rx.recv().expect("Daytona is bound");
        let s = std::net::UdpSocket::bind(SocketAddrV4::new(peer_addr, 0)).expect("udp");
        // A safety net against a hang, not a timing assertion.
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        for i in 0..50u32 {
            let msg = format!("ping {i}");
            s.send_to(msg.as_bytes(), udp_at).expect("send");
            // Another test's child exiting may interrupt the call.
            let (n, from) = loop {
                match s.recv_from(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    r => break r.expect("echo"),
                }
            };
            assert_eq!(from, std::net::SocketAddr::V4(udp_at));
            assert_eq!(&buf[..n], msg.as_bytes());
        }
    });
    let day_if = pair.day_if.clone();
    let (got, sent) = pair.day.run(move || {
        let mut link = RawLink::open(RawConfig::new().interface(&day_if)).expect("raw link");
        link.set_ports(&[5005], &[5007]).expect("set_ports");
        let mut drv = Driver::new(new_stack(link.stack_config()), link).expect("driver");
        let u = drv.stack().udp_bind(udp_at).expect("udp bind");
        udp_ready_tx.send(()).expect("udp peer waits");
        // Echo datagrams while the TCP transfer runs.
        let echo = |s: &mut daytona_core::stack::Stack| {
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = s.udp_recv_from(u, &mut buf) {
                s.udp_send_to(u, from, &buf[..n]).expect("echo");
            }
        };
        let l = drv.stack().tcp_listen(tcp_at, 4).expect("listen");
        ready.send(()).expect("tcp peer waits");
        let mut conn = None;
        let mut got = Tally::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut closed = false;
        drive(&mut drv, Clock::new(), |s, now| {
            echo(s);
            if conn.is_none() {
                conn = s.tcp_accept(l).ok();
            }
            let Some(c) = conn else {
                return Step::Idle;
            };
            if closed {
                return if peer.is_finished() && udp_peer.is_finished() && s.connection_count() == 0
                {
                    Step::Done
                } else {
                    Step::Idle
                };
            }
            let (moved, eof) = recv_into(s, now, c, &mut got, &mut buf);
            if eof {
                s.tcp_close(now, c).expect("close");
                closed = true;
            }
            if moved || eof {
                Step::Progress
            } else {
                Step::Idle
            }
        })
        .expect("exchange");
        udp_peer.join().expect("udp peer");
        (got, peer.join().expect("kernel sender"))
    });
    assert_eq!(got.finish(), sent.finish());
    assert_eq!(pair.kernel_rsts(), 0, "the Daytona-side kernel sent RSTs");
    let icmp = pair
        .day
        .exec(&["nft", "list", "table", "ip", "icmpwatch"])
        .expect("list");
    assert!(icmp.contains("counter packets 0 "), "{icmp}");
}

#[test]
fn a_port_a_kernel_socket_holds_is_refused() {
    if !require_privileges("raw mode port partition") {
        return;
    }
    let pair = Pair::new(37).expect("namespaces");
    let at = SocketAddrV4::new(pair.day_addr(), 5010);
    let day_if = pair.day_if.clone();
    let (err, later) = pair.day.run(move || {
        let _kernel = kernel_listener(at);
        let err = RawLink::open(RawConfig::new().interface(&day_if).tcp_port(5010)).err();
        // Also when the port is added later.
        let mut link = RawLink::open(RawConfig::new().interface(&day_if)).expect("raw link");
        let later = link.set_ports(&[5010], &[]).err();
        (err, later)
    });
    for e in [err, later] {
        let e = e.expect("took a port the kernel listens on");
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains("5010"), "{e}");
    }
    assert!(!pair.day_tables().contains("daytona_"));
}

#[test]
fn raw_mode_at_mtu_9000_both_ways() {
    if !require_privileges("raw mode at MTU 9000") {
        return;
    }
    let pair = Pair::new(38).expect("namespaces");
    pair.peer
        .exec(&["ip", "link", "set", &pair.peer_if, "mtu", "9000"])
        .expect("mtu");
    pair.day
        .exec(&["ip", "link", "set", &pair.day_if, "mtu", "9000"])
        .expect("mtu");
    let to = SocketAddrV4::new(pair.peer_addr(), 5001);
    let at = SocketAddrV4::new(pair.day_addr(), 5002);
    let receiver = spawn_kernel_receiver(&pair, to);
    let (ready, sender) = spawn_kernel_sender(&pair, at, 13, 30_000_000);
    let day_if = pair.day_if.clone();
    let (out, inn, stats) = pair.day.run(move || {
        let link =
            RawLink::open(RawConfig::new().interface(&day_if).tcp_port(5002)).expect("raw link");
        assert_eq!(link.mtu(), 9000);
        let cfg = link.stack_config();
        assert_eq!(cfg.mtu, 9000);
        let mut drv = Driver::new(new_stack(cfg), link).expect("driver");
        let out = daytona_sends(&mut drv, to, 12, 30_000_000, receiver);
        let inn = daytona_receives(&mut drv, at, ready, sender);
        (out, inn, drv.link().stats())
    });
    assert_eq!(out.0.len(), 30_000_000);
    assert_eq!(out.0.finish(), out.1.finish());
    assert_eq!(inn.0.len(), 30_000_000);
    assert_eq!(inn.0.finish(), inn.1.finish());
    // Jumbo segments: far fewer packets than at MTU 1500 (~20,700).
    assert!(stats.tx_packets < 8_000, "{stats:?}");
    assert_eq!(pair.kernel_rsts(), 0);
}

#[test]
fn raw_mode_under_daytona_side_loss_and_delay() {
    if !require_privileges("raw mode under impairment") {
        return;
    }
    let pair = Pair::new(39).expect("namespaces");
    let to = SocketAddrV4::new(pair.peer_addr(), 5001);
    let at = SocketAddrV4::new(pair.day_addr(), 5002);
    let receiver = spawn_kernel_receiver(&pair, to);
    let (ready, sender) = spawn_kernel_sender(&pair, at, 15, 20_000_000);
    let day_if = pair.day_if.clone();
    let peer_table = peer_tcp_table(&pair);
    let (out, inn, lost) = pair.day.run(move || {
        let link =
            RawLink::open(RawConfig::new().interface(&day_if).tcp_port(5002)).expect("raw link");
        let cfg = link.stack_config();
        // 1% loss and 5 ms one way on everything Daytona sends: data one
        // way, ACKs the other.
        let model = FaultModel::new(
            Impairment {
                delay: std::time::Duration::from_millis(5),
                loss: 0.01,
                ..Impairment::default()
            },
            99,
        );
        let mut drv = Driver::new(new_stack(cfg), Impaired::new(link, model)).expect("driver");
        let out = daytona_sends(&mut drv, to, 14, 20_000_000, receiver);
        let inn = daytona_receives(&mut drv, at, ready, sender);
        drive_until_peer_closed(&mut drv, peer_table);
        (out, inn, drv.link().model().stats.lost)
    });
    assert!(lost > 0);
    assert_eq!(out.0.len(), 20_000_000);
    assert_eq!(out.0.finish(), out.1.finish());
    assert_eq!(inn.0.len(), 20_000_000);
    assert_eq!(inn.0.finish(), inn.1.finish());
    assert_eq!(pair.kernel_rsts(), 0);
}

#[test]
fn raw_mode_without_offload_completes_partial_checksums() {
    if !require_privileges("raw mode without checksum offload") {
        return;
    }
    let pair = Pair::new(40).expect("namespaces");
    let at = SocketAddrV4::new(pair.day_addr(), 5002);
    let (ready, peer) = spawn_kernel_sender(&pair, at, 17, 30_000_000);
    let day_if = pair.day_if.clone();
    let (got, sent, stats) = pair.day.run(move || {
        let mut cfg = RawConfig::new().interface(&day_if).tcp_port(5002);
        cfg.no_offload = true;
        let link = RawLink::open(cfg).expect("raw link");
        let mut drv = Driver::new(new_stack(link.stack_config()), link).expect("driver");
        let (got, sent) = daytona_receives(&mut drv, at, ready, peer);
        (got, sent, drv.link().stats())
    });
    eprintln!("link stats: {stats:?}");
    assert_eq!(got.len(), 30_000_000);
    assert_eq!(got.finish(), sent.finish());
    assert!(stats.rx_checksum_completed > 0, "{stats:?}");
    assert_eq!(stats.rx_checksum_partial, 0, "{stats:?}");
}

#[test]
fn missing_interface_address_or_default_route_are_clear_errors() {
    if !require_privileges("raw mode configuration errors") {
        return;
    }
    let pair = Pair::new(46).expect("namespaces");
    pair.day
        .exec(&["ip", "addr", "flush", "dev", &pair.day_if])
        .expect("flush");
    let day_if = pair.day_if.clone();
    let errs = pair.day.run(move || {
        let no_route = RawLink::open(RawConfig::new()).err();
        let no_such = RawLink::open(RawConfig::new().interface("nosuch0")).err();
        let no_addr = RawLink::open(RawConfig::new().interface(&day_if)).err();
        [no_route, no_such, no_addr].map(|e| e.expect("open must fail").to_string())
    });
    assert!(errs[0].contains("no IPv4 default route"), "{}", errs[0]);
    assert!(errs[1].contains("nosuch0"), "{}", errs[1]);
    assert!(errs[2].contains("has no IPv4 address"), "{}", errs[2]);
    assert!(!pair.day_tables().contains("daytona_"));
}

/// Not a test by itself: the process the crash test starts (with
/// `DAYTONA_RAW_CHILD=crash|open:<interface>`, inside the test's
/// namespace). `crash` opens a raw link and aborts, leaving its table
/// behind; `open` opens one and exits cleanly. Without the variable it does
/// nothing.
#[test]
fn child_process_for_the_crash_test() {
    let Ok(spec) = std::env::var("DAYTONA_RAW_CHILD") else {
        return;
    };
    let (mode, ifname) = spec.split_once(':').expect("mode:interface");
    let link = RawLink::open(RawConfig::new().interface(ifname).tcp_port(80)).expect("raw link");
    if mode == "crash" {
        std::process::abort();
    }
    drop(link);
}

#[test]
fn the_table_of_a_crashed_process_is_cleaned_up_by_the_next_one() {
    if !require_privileges("raw mode crash cleanup") {
        return;
    }
    let pair = Pair::new(49).expect("namespaces");
    let name = nft::table_name(&pair.day_if, pair.day_addr());
    let exe = std::env::current_exe().expect("test binary");
    let run = |mode: &str| {
        pair.day
            .command(exe.to_str().expect("utf-8 path"))
            .args(["--exact", "child_process_for_the_crash_test", "--nocapture"])
            .env("DAYTONA_RAW_CHILD", format!("{mode}:{}", pair.day_if))
            .output()
            .expect("child process")
    };
    let crashed = run("crash");
    assert!(!crashed.status.success(), "the child did not crash");
    assert!(
        pair.day_tables().contains(&name),
        "a crash leaves the table"
    );
    let next = run("open");
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert!(next.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("removing stale nftables table `ip {name}`")),
        "{stderr}"
    );
    assert!(!pair.day_tables().contains(&name), "table left behind");
}

#[test]
fn raw_mode_refusal_and_resets_both_ways() {
    if !require_privileges("raw mode refusal and resets") {
        return;
    }
    let pair = Pair::new(52).expect("namespaces");
    let peer_addr = pair.peer_addr();
    let refused_at = SocketAddrV4::new(peer_addr, 6003);
    let reset_at = SocketAddrV4::new(peer_addr, 6001);
    let day_at = SocketAddrV4::new(pair.day_addr(), 6002);
    // The kernel resets a connection it closes with unread data (RFC 2525
    // §2.17, Linux `tcp_close`).
    let l = pair.peer.run(move || kernel_listener(reset_at));
    let resetter = pair.peer.thread(move || {
        let (s, _) = l.accept().expect("accept");
        let mut b = [0u8; 1];
        s.peek(&mut b).expect("data arrives");
        drop(s);
    });
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let victim = pair.peer.thread(move || {
        use std::io::Read;
        ready_rx.recv().expect("Daytona listens");
        // The RST may beat the connecting thread back from `connect`.
        let mut s = std::net::TcpStream::connect(day_at).map_err(|e| e.kind())?;
        let mut b = [0u8; 16];
        s.read(&mut b).map_err(|e| e.kind())
    });
    let day_if = pair.day_if.clone();
    let (refused, reset) = pair.day.run(move || {
        let link =
            RawLink::open(RawConfig::new().interface(&day_if).tcp_port(6002)).expect("raw link");
        let mut drv = Driver::new(new_stack(link.stack_config()), link).expect("driver");
        let clock = Clock::new();
        let mut buf = [0u8; 64];
        let mut wait_error = |drv: &mut Driver<RawLink>, c| {
            let mut err = None;
            drive(drv, clock, |s, now| match s.tcp_recv(now, c, &mut buf) {
                Err(daytona_core::Error::WouldBlock) => Step::Idle,
                Err(e) => {
                    err = Some(e);
                    Step::Done
                }
                Ok(_) => Step::Progress,
            })
            .expect("an error arrives");
            err
        };
        // Refused: nobody listens on the kernel's port.
        let c = drv
            .stack()
            .tcp_connect(clock.now(), refused_at, None)
            .expect("connect");
        let refused = wait_error(&mut drv, c);
        // Reset by the kernel.
        let c = drv
            .stack()
            .tcp_connect(clock.now(), reset_at, None)
            .expect("connect");
        drv.stack()
            .tcp_send(clock.now(), c, b"unread")
            .expect("send");
        let reset = wait_error(&mut drv, c);
        // Reset by Daytona.
        let l = drv.stack().tcp_listen(day_at, 4).expect("listen");
        ready_tx.send(()).expect("victim waits");
        let mut aborted = false;
        drive(&mut drv, clock, |s, now| {
            if !aborted {
                if let Ok(c) = s.tcp_accept(l) {
                    s.tcp_abort(now, c).expect("abort");
                    aborted = true;
                    return Step::Progress;
                }
            }
            if victim.is_finished() {
                Step::Done
            } else {
                Step::Idle
            }
        })
        .expect("abort");
        let victim = victim.join().expect("victim");
        assert_eq!(victim, Err(io::ErrorKind::ConnectionReset));
        (refused, reset)
    });
    resetter.join().expect("resetter");
    assert_eq!(refused, Some(daytona_core::Error::ConnectionRefused));
    assert_eq!(reset, Some(daytona_core::Error::ConnectionReset));
    // The stack's RST (TTL 63) is not counted; the kernel sent none.
    assert_eq!(pair.kernel_rsts(), 0);
}

#[test]
fn raw_mode_500_concurrent_connections_use_the_stacks_ephemeral_ports() {
    if !require_privileges("raw mode concurrent connections") {
        return;
    }
    const N: usize = 500;
    let pair = Pair::new(53).expect("namespaces");
    let to = SocketAddrV4::new(pair.peer_addr(), 6010);
    let l = pair.peer.run(move || {
        let l = kernel_listener(to);
        // Room for all of them at once (std listens with 128; an overflow
        // turns on SYN cookies, and the kernel resets connections whose
        // later segments fail the cookie check — Linux clients alike).
        rustix::net::listen(&l, 1024).expect("backlog");
        l
    });
    let acceptor = pair.peer.thread(move || {
        use std::io::Read;
        // Accept everything first (the data waits in socket buffers), so
        // the accept queue never overflows; then read each to EOF.
        let streams: Vec<_> = (0..N).map(|_| l.accept().expect("accept")).collect();
        let mut ports = Vec::with_capacity(N);
        let mut total = 0;
        for (s, from) in &streams {
            ports.push(from.port());
            let mut data = Vec::new();
            (&*s).read_to_end(&mut data).expect("read");
            assert!(data.iter().all(|b| *b == (from.port() % 251) as u8));
            total += data.len();
        }
        // Kept open: their FINs would reach the Daytona-side kernel after
        // the link (and its table) is gone, and be answered with RST.
        (ports, total, streams)
    });
    let day_if = pair.day_if.clone();
    let streams = pair.day.run(move || {
        let link = RawLink::open(RawConfig::new().interface(&day_if)).expect("raw link");
        let mut drv = Driver::new(new_stack(link.stack_config()), link).expect("driver");
        let clock = Clock::new();
        let conns: Vec<_> = (0..N)
            .map(|_| {
                drv.stack()
                    .tcp_connect(clock.now(), to, None)
                    .expect("connect")
            })
            .collect();
        // Each sends 10 kB of a byte derived from its own port, then FIN.
        use daytona_core::tcp::{Shutdown, State};
        let mut left: Vec<usize> = vec![10_000; N];
        let mut closed = vec![false; N];
        drive(&mut drv, clock, |s, now| {
            let mut moved = false;
            for (i, &c) in conns.iter().enumerate() {
                if closed[i] {
                    continue;
                }
                let port = s.tcp(c).expect("conn").local().port();
                let chunk = [(port % 251) as u8; 10_000];
                match s.tcp_send(now, c, &chunk[..left[i]]) {
                    Ok(n) => {
                        left[i] -= n;
                        moved |= n > 0;
                    }
                    Err(daytona_core::Error::WouldBlock) => {}
                    Err(e) => panic!("send: {e:?}"),
                }
                if left[i] == 0 {
                    s.tcp_shutdown(now, c, Shutdown::Write).expect("shutdown");
                    closed[i] = true;
                    moved = true;
                }
            }
            // Done when the kernel has read everything and acknowledged
            // every FIN (its ACKs must not arrive after the table is gone).
            let acked = |c| matches!(s.tcp_state(c), Ok(State::FinWait2 | State::TimeWait));
            if acceptor.is_finished() && conns.iter().all(|&c| acked(c)) {
                Step::Done
            } else if moved {
                Step::Progress
            } else {
                Step::Idle
            }
        })
        .expect("connections");
        let (ports, total, streams) = acceptor.join().expect("acceptor");
        assert_eq!(total, N * 10_000);
        assert!(
            ports.iter().all(|p| (61_000..=65_535).contains(p)),
            "{ports:?}"
        );
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), N);
        streams
    });
    assert_eq!(pair.kernel_rsts(), 0);
    drop(streams);
}

#[test]
fn a_link_dropped_outside_its_namespace_removes_its_table_there() {
    if !require_privileges("raw mode table removal across namespaces") {
        return;
    }
    let pair = Pair::new(54).expect("namespaces");
    let day_if = pair.day_if.clone();
    // Opened in the Daytona-side namespace, handed to this thread (in the
    // test's own namespace), dropped here.
    let link = pair.day.run(move || {
        RawLink::open(RawConfig::new().interface(&day_if).tcp_port(80)).expect("raw link")
    });
    let name = link.table_name().expect("a table").to_string();
    assert!(pair.day_tables().contains(&name));
    link.close().expect("removed in its namespace");
    assert!(!pair.day_tables().contains(&name), "table left behind");
}

/// Sends one ICMP echo request to `dst` from a raw ICMP socket and waits
/// (at most 5 s, a safety net) for the reply.
fn kernel_ping(dst: std::net::Ipv4Addr) -> bool {
    use rustix::net::{ipproto, AddressFamily, RecvFlags, SendFlags, SocketType};
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::ICMP))
        .expect("raw ICMP socket");
    rustix::net::sockopt::set_socket_timeout(
        &fd,
        rustix::net::sockopt::Timeout::Recv,
        Some(std::time::Duration::from_secs(5)),
    )
    .expect("timeout");
    let mut echo = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'd', b'a', b'y', b't'];
    let c = daytona_wire::checksum::checksum(&echo);
    echo[2..4].copy_from_slice(&c.to_be_bytes());
    rustix::net::sendto(&fd, &echo, SendFlags::empty(), &SocketAddrV4::new(dst, 0))
        .expect("send echo");
    let mut buf = [0u8; 256];
    while let Ok((n, _)) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty()) {
        // An IPv4 packet: find the ICMP header after the IP header.
        let hl = usize::from(buf[0] & 0xf) * 4;
        let from = std::net::Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
        if n >= hl + 8 && from == dst && buf[hl] == 0 && buf[hl + 4..hl + 6] == [0x12, 0x34] {
            return true;
        }
    }
    false
}

#[test]
fn raw_mode_icmp_errors_reach_the_stack_and_the_kernel_answers_pings() {
    if !require_privileges("raw mode ICMP") {
        return;
    }
    let pair = Pair::new(56).expect("namespaces");
    // The kernel peer refuses port 6020 with ICMP port unreachable.
    pair.peer
        .nft(
            "table ip refuse {\n chain input {\n type filter hook input priority 0;\n \
             tcp dport 6020 reject with icmp type port-unreachable\n }\n}\n",
        )
        .expect("reject rule");
    let to = SocketAddrV4::new(pair.peer_addr(), 6020);
    let day_addr = pair.day_addr();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let pinger = pair.peer.thread(move || {
        go_rx.recv().expect("go");
        kernel_ping(day_addr)
    });
    let day_if = pair.day_if.clone();
    let (err, delivered, echoed, ping_ok) = pair.day.run(move || {
        let link = RawLink::open(RawConfig::new().interface(&day_if)).expect("raw link");
        let mut drv = Driver::new(new_stack(link.stack_config()), link).expect("driver");
        let clock = Clock::new();
        let c = drv
            .stack()
            .tcp_connect(clock.now(), to, None)
            .expect("connect");
        let mut err = None;
        let mut buf = [0u8; 16];
        drive(&mut drv, clock, |s, now| {
            match s.tcp_recv(now, c, &mut buf) {
                Err(daytona_core::Error::WouldBlock) => Step::Idle,
                Err(e) => {
                    err = Some(e);
                    Step::Done
                }
                Ok(_) => Step::Progress,
            }
        })
        .expect("an error arrives");
        // A ping of the shared address is the kernel's to answer: the
        // filter keeps echo requests from the stack (else two replies).
        go_tx.send(()).expect("pinger waits");
        drive(&mut drv, clock, |_, _| {
            if pinger.is_finished() {
                Step::Done
            } else {
                Step::Idle
            }
        })
        .expect("ping");
        // The packet socket got any copy of the request before the kernel
        // answered it: one more round takes it in.
        drv.poll(clock.now()).expect("poll");
        let ping_ok = pinger.join().expect("pinger");
        let c = drv.stack().counters();
        (err, c.icmp_errors_delivered, c.icmp_echo_replied, ping_ok)
    });
    // RFC 1122 §4.2.3.9: port unreachable during the handshake aborts it.
    assert!(
        matches!(
            err,
            Some(daytona_core::Error::PortUnreachable | daytona_core::Error::ConnectionRefused)
        ),
        "{err:?}"
    );
    assert!(delivered >= 1);
    assert!(ping_ok, "the kernel did not answer the ping");
    assert_eq!(echoed, 0, "the stack answered a ping of the shared address");
}

/// A rate-limited interface (a `tbf` qdisc with a 32 KB queue on
/// Daytona's side of the veth) refuses packets while its queue is full
/// (`ENOBUFS`): the link holds them in its backlog, in order, and sends
/// them when called back, instead of waiting inside `send_batch`.
#[test]
fn raw_mode_through_a_rate_limited_interface_holds_packets_in_its_backlog() {
    if !require_privileges("raw mode through a tbf qdisc") {
        return;
    }
    let pair = Pair::new(61).expect("namespaces");
    rate_limit(&pair, "16kb", "32kb");
    let day_if = pair.day_if.clone();
    let open = move || {
        let link = RawLink::open(RawConfig::new().interface(&day_if)).expect("raw link");
        Driver::new(new_stack(link.stack_config()), link).expect("driver")
    };
    let stats = bulk_to_kernel(&pair, 61, 8 << 20, open, |d| d.link().stats());
    eprintln!("link stats: {stats:?}");
    assert!(stats.tx_stalls > 0, "the queue never filled: {stats:?}");
}
