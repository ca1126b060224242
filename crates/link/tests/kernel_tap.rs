//! Daytona over a TAP device against the kernel's TCP (CUBIC), inside a
//! network namespace per test. Run as root; otherwise each test prints
//! `SKIPPED:` (a failure with `DAYTONA_REQUIRE_PRIV=1`).
//!
//! Sizes are chosen so each test takes a few seconds on two cores:
//! 100 MB for the clean transfers (both directions, offloads on and off),
//! 50 MB at MTU 9000, 2–20 MB under impairment (a 20 ms path with 1% loss
//! moves under 1 MB/s with any loss-based controller).

mod kernel;

use daytona_core::time::Duration;
use daytona_link::Impairment;
use kernel::{Direction, Outcome, Run};

const MB: u64 = 1_000_000;

fn privileged(what: &str) -> bool {
    daytona_testnet::require_privileges(what)
}

fn check(o: &Outcome, r: &Run) {
    assert_eq!(o.sent.0, r.bytes, "the sender sent everything");
    assert_eq!(o.received, o.sent, "byte-exact: same length and hash");
}

fn transfer(what: &str, r: Run) -> Option<Outcome> {
    if !privileged(what) {
        return None;
    }
    let o = kernel::run(&r).unwrap_or_else(|e| panic!("{what}: {e}"));
    check(&o, &r);
    println!(
        "{what}: {} bytes in {:?}, Daytona retrans {}, kernel retrans {}, tap {:?}",
        o.received.0, o.elapsed, o.info.total_retrans, o.kernel.total_retrans, o.tap
    );
    Some(o)
}

#[test]
fn handshake_both_directions() {
    for dir in [Direction::KernelToDaytona, Direction::DaytonaToKernel] {
        let Some(o) = transfer("handshake_both_directions", Run::new(dir, 1000)) else {
            return;
        };
        // The kernel's SYN options were understood and ours accepted.
        let opts = o.info.options;
        assert!(
            opts.sack && opts.timestamps && opts.window_scale,
            "{opts:?}"
        );
        assert_eq!(o.kernel.snd_mss, 1448, "MSS 1460 minus timestamps");
        if dir == Direction::KernelToDaytona {
            assert_eq!(o.counters.tcp_passive_opens, 1);
        } else {
            assert_eq!(o.counters.tcp_active_opens, 1);
        }
    }
}

#[test]
fn bulk_100mb_kernel_to_daytona_offloads_on() {
    let Some(o) = transfer(
        "bulk_100mb_kernel_to_daytona_offloads_on",
        Run::new(Direction::KernelToDaytona, 100 * MB),
    ) else {
        return;
    };
    assert!(o.offloads_in_effect);
    // The kernel handed us unsegmented super-segments with partial
    // checksums, which the stack did not verify again.
    assert!(o.tap.rx_gso > 0 && o.tap.rx_csum_partial > 0, "{:?}", o.tap);
    assert_eq!(o.counters.tcp_bad_checksum, 0);
}

#[test]
fn bulk_100mb_daytona_to_kernel_offloads_on() {
    let Some(o) = transfer(
        "bulk_100mb_daytona_to_kernel_offloads_on",
        Run::new(Direction::DaytonaToKernel, 100 * MB),
    ) else {
        return;
    };
    // Daytona sent TSO super-segments for the kernel to cut.
    assert!(o.tap.tx_gso > 0, "{:?}", o.tap);
    assert!(o.tap.tx_bytes / o.tap.tx_frames > 1500, "{:?}", o.tap);
    // Their checksums were left partial by the stack (checksum offload),
    // and the kernel completed them: the transfer is byte-exact.
    assert!(o.tap.tx_csum_partial > 0, "{:?}", o.tap);
    assert!(o.tap.tx_csum_partial <= o.tap.tx_gso, "{:?}", o.tap);
}

#[test]
fn bulk_100mb_both_directions_offloads_off() {
    for dir in [Direction::KernelToDaytona, Direction::DaytonaToKernel] {
        let r = Run {
            offloads: false,
            ..Run::new(dir, 100 * MB)
        };
        let Some(o) = transfer("bulk_100mb_both_directions_offloads_off", r) else {
            return;
        };
        assert!(!o.offloads_in_effect);
        let t = &o.tap;
        assert_eq!(
            (t.rx_gso, t.tx_gso, t.rx_csum_partial, t.tx_csum_partial),
            (0, 0, 0, 0),
            "{t:?}"
        );
        assert!(t.tx_bytes / t.tx_frames <= 1514, "{t:?}");
    }
}

#[test]
fn bulk_mtu_9000_both_directions() {
    for offloads in [true, false] {
        for dir in [Direction::KernelToDaytona, Direction::DaytonaToKernel] {
            let r = Run {
                mtu: 9000,
                offloads,
                ..Run::new(dir, 50 * MB)
            };
            let Some(o) = transfer("bulk_mtu_9000_both_directions", r) else {
                return;
            };
            assert_eq!(o.kernel.snd_mss, 9000 - 52, "jumbo MSS on both ends");
            assert_eq!(o.info.snd_mss, 9000 - 52);
        }
    }
}

#[test]
fn tun_mode_both_directions() {
    for offloads in [true, false] {
        for dir in [Direction::KernelToDaytona, Direction::DaytonaToKernel] {
            let r = Run {
                mode: daytona_link::TapMode::Tun,
                offloads,
                ..Run::new(dir, 20 * MB)
            };
            let Some(o) = transfer("tun_mode_both_directions", r) else {
                return;
            };
            // Bare IP: no ARP, no Ethernet headers.
            assert_eq!(o.counters.arp_requests_answered, 0);
            assert_eq!(
                o.tap.tx_gso > 0 || o.tap.rx_gso > 0,
                offloads,
                "{:?}",
                o.tap
            );
        }
    }
}

/// Daytona-side impairment of one direction.
fn lossy_path() -> Impairment {
    Impairment {
        delay: Duration::from_millis(20),
        loss: 0.01,
        ..Impairment::default()
    }
}

fn messy_path() -> Impairment {
    Impairment {
        reorder: 0.02,
        reorder_delay: Duration::from_millis(2),
        duplicate: 0.01,
        corrupt: 0.005,
        ..Impairment::default()
    }
}

#[test]
fn impaired_delay_and_loss_daytona_to_kernel() {
    let r = Run {
        tx_impair: Some(lossy_path()),
        ..Run::new(Direction::DaytonaToKernel, 2 * MB)
    };
    let Some(o) = transfer("impaired_delay_and_loss_daytona_to_kernel", r) else {
        return;
    };
    let f = o.tx_faults.expect("tx model");
    assert!(f.lost > 0, "{f:?}");
    assert!(o.info.total_retrans > 0, "Daytona repaired the losses");
    assert!(o
        .info
        .min_rtt
        .is_some_and(|r| r >= Duration::from_millis(20)));
    // No super-segments went through the per-packet model.
    assert_eq!(o.tap.tx_gso, 0);
}

#[test]
fn impaired_delay_and_loss_kernel_to_daytona() {
    let r = Run {
        rx_impair: Some(lossy_path()),
        ..Run::new(Direction::KernelToDaytona, 2 * MB)
    };
    let Some(o) = transfer("impaired_delay_and_loss_kernel_to_daytona", r) else {
        return;
    };
    let f = o.rx_faults.expect("rx model");
    assert!(f.lost > 0, "{f:?}");
    assert!(o.kernel.total_retrans > 0, "the kernel repaired the losses");
    // GRO super-segments from the kernel were cut into packets first.
    assert!(f.frames > o.tap.rx_frames, "{f:?} {:?}", o.tap);
}

#[test]
fn impaired_reorder_duplicate_corrupt_both_ways() {
    for dir in [Direction::KernelToDaytona, Direction::DaytonaToKernel] {
        let r = Run {
            tx_impair: Some(messy_path()),
            rx_impair: Some(messy_path()),
            ..Run::new(dir, 20 * MB)
        };
        let Some(o) = transfer("impaired_reorder_duplicate_corrupt_both_ways", r) else {
            return;
        };
        let (tx, rx) = (o.tx_faults.expect("tx"), o.rx_faults.expect("rx"));
        assert!(
            tx.reordered > 0 && tx.duplicated > 0 && tx.corrupted > 0,
            "{tx:?}"
        );
        assert!(
            rx.reordered > 0 && rx.duplicated > 0 && rx.corrupted > 0,
            "{rx:?}"
        );
        // Corrupted frames that reached Daytona were caught by checksums
        // (a flipped bit in the payload, most of the bytes).
        let c = &o.counters;
        assert!(c.tcp_bad_checksum + c.ip_bad_checksum > 0, "{c:?}");
        if dir == Direction::DaytonaToKernel {
            // The kernel dropped our corrupted segments; we resent them.
            assert!(o.info.total_retrans > 0);
        } else {
            assert!(o.kernel.total_retrans > 0);
        }
    }
}

// The kernel's TCP builds GSO super-packets even when the TAP cannot take
// them (they are cut after the hooks), and Daytona sends TSO super-segments
// when offloads are on. Per packet, the kernel side of the TAP gets
// `gso_max_segs 1` and offloads are off; with offloads on, one rule hit
// drops or duplicates a whole super-segment (a burst).

#[test]
fn kernel_side_loss_with_nftables_daytona_to_kernel() {
    for (offloads, percent) in [(false, 1), (true, 3)] {
        let r = Run {
            offloads,
            kernel_per_packet: !offloads,
            kernel_ingress: vec![format!("numgen random mod 100 < {percent} counter drop")],
            ..Run::new(Direction::DaytonaToKernel, 20 * MB)
        };
        let Some(o) = transfer("kernel_side_loss_with_nftables_daytona_to_kernel", r) else {
            return;
        };
        assert!(
            o.rule_hits.len() == 1 && o.rule_hits[0] > 0,
            "{:?}",
            o.rule_hits
        );
        assert!(o.info.total_retrans > 0, "Daytona repaired the losses");
        assert!(
            o.info.fast_retransmits > 0,
            "by fast recovery: {:?}",
            o.info
        );
    }
}

#[test]
fn kernel_side_loss_with_nftables_kernel_to_daytona_via_a_router() {
    // The kernel's own drops are not loss (see kernel/mod.rs); one hop
    // away, a router namespace's forward hook drops the kernel's data as
    // a wire would.
    for (offloads, percent) in [(false, 1), (true, 3)] {
        let r = Run {
            offloads,
            kernel_router: true,
            kernel_per_packet: !offloads,
            kernel_forward: vec![
                format!("numgen random mod 100 < {percent} counter drop"),
                "numgen random mod 100 < 2 counter dup to 198.18.1.2 device \"{dev}\"".into(),
            ],
            ..Run::new(Direction::KernelToDaytona, 20 * MB)
        };
        let Some(o) = transfer(
            "kernel_side_loss_with_nftables_kernel_to_daytona_via_a_router",
            r,
        ) else {
            return;
        };
        assert!(
            o.rule_hits.len() == 2 && o.rule_hits.iter().all(|n| *n > 0),
            "{:?}",
            o.rule_hits
        );
        assert!(o.kernel.total_retrans > 0, "the kernel repaired the losses");
        assert!(
            o.kernel.dsack_dups > 0,
            "Daytona reported duplicates: {:?}",
            o.kernel
        );
    }
}

#[test]
fn kernel_side_duplication_with_nftables_kernel_to_daytona() {
    for (offloads, percent) in [(false, 2), (true, 3)] {
        let r = Run {
            offloads,
            kernel_per_packet: !offloads,
            kernel_egress: vec![format!(
                "numgen random mod 100 < {percent} counter dup to \"{{dev}}\""
            )],
            ..Run::new(Direction::KernelToDaytona, 20 * MB)
        };
        let Some(o) = transfer("kernel_side_duplication_with_nftables_kernel_to_daytona", r) else {
            return;
        };
        assert!(
            o.rule_hits.len() == 1 && o.rule_hits[0] > 0,
            "{:?}",
            o.rule_hits
        );
        // Daytona told the kernel about the duplicates (RFC 2883 D-SACK).
        assert!(o.kernel.dsack_dups > 0, "{:?}", o.kernel);
    }
}

/// Drops CAP_NET_ADMIN from the calling thread's effective set
/// (capabilities are per thread on Linux).
fn drop_cap_net_admin() -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget with a valid header and room for two data structs
    // (version 3), as the kernel expects; pid 0 is the calling thread.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    d[0].effective &= !(1 << CAP_NET_ADMIN);
    // SAFETY: as above; capset only lowers this thread's effective set.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[test]
fn without_cap_net_admin_the_error_names_it() {
    if !privileged("without_cap_net_admin_the_error_names_it") {
        return;
    }
    let ns = daytona_testnet::Netns::new("dtcap").expect("namespace");
    let result = ns.run(|| {
        drop_cap_net_admin().expect("capset");
        daytona_link::TapConfig::default()
            .name(daytona_testnet::unique_name("dtcap"))
            .open()
            .map(|_| ())
    });
    let e = result.expect_err("creating a TAP without CAP_NET_ADMIN must fail");
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
}
