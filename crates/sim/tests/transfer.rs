//! Two real stacks over simulated, impaired links: every transfer must
//! complete and be byte-exact.

use daytona_core::cc::CcRegistry;
use daytona_core::observe::EventKind;
use daytona_core::tcp::TcpConfig;
use daytona_core::time::Duration;
use daytona_link::Impairment;
use daytona_sim::{transfer, TransferSpec};
use proptest::prelude::*;

fn path(delay_ms: u64) -> Impairment {
    Impairment {
        delay: Duration::from_millis(delay_ms),
        rate_bps: Some(100_000_000),
        queue_bytes: Some(1 << 20),
        ..Impairment::default()
    }
}

fn run(
    bytes: u64,
    forward: Impairment,
    reverse: Impairment,
    seed: u64,
) -> daytona_sim::TransferReport {
    let spec = TransferSpec {
        bytes,
        seed,
        forward,
        reverse,
        ..TransferSpec::default()
    };
    let report = transfer(&spec, &CcRegistry::with_builtin()).expect("transfer completes");
    assert!(
        report.byte_exact,
        "not byte-exact: got {} of {bytes}",
        report.bytes
    );
    assert_eq!(report.bytes, bytes);
    report
}

/// Buffers fixed at `size` (autotuning off, like SO_SNDBUF/SO_RCVBUF).
fn fixed_buffers(size: usize) -> TcpConfig {
    TcpConfig {
        send_buffer: size,
        recv_buffer: size,
        send_buffer_max: None,
        recv_buffer_max: None,
        ..TcpConfig::default()
    }
}

#[test]
fn clean_link_fills_the_pipe() {
    // 512 KiB windows: twice the 250 kB BDP, less than BDP plus the 1 MiB
    // queue, so slow start never overflows the queue.
    let spec = TransferSpec {
        bytes: 4 << 20,
        seed: 1,
        forward: path(10),
        reverse: path(10),
        sender: fixed_buffers(512 << 10),
        receiver: fixed_buffers(512 << 10),
        ..TransferSpec::default()
    };
    let r = transfer(&spec, &CcRegistry::with_builtin()).expect("transfer completes");
    assert!(r.byte_exact);
    assert_eq!(r.retransmissions, 0);
    // 4 MiB over 100 Mbit/s, 20 ms RTT: slow start costs a few RTTs.
    let goodput = r.goodput_bps();
    assert!(goodput > 50e6, "goodput {goodput}");
}

#[test]
fn buffer_autotuning_opens_the_window_on_a_long_path() {
    // 100 Mbit/s, 100 ms RTT: the BDP is 1.25 MB, ten times the initial
    // 128 KiB receive buffer.
    let long = Impairment {
        queue_bytes: Some(1_250_000),
        ..path(50)
    };
    let spec = |sender: TcpConfig, receiver: TcpConfig| TransferSpec {
        bytes: 20 << 20,
        seed: 12,
        forward: long.clone(),
        reverse: long.clone(),
        sender,
        receiver,
        keep_events: true,
        time_limit: Duration::from_secs(120),
        ..TransferSpec::default()
    };
    let registry = CcRegistry::with_builtin();
    let fixed = transfer(
        &spec(fixed_buffers(128 << 10), fixed_buffers(128 << 10)),
        &registry,
    )
    .expect("fixed transfer completes");
    let tuned = transfer(&spec(TcpConfig::default(), TcpConfig::default()), &registry)
        .expect("autotuned transfer completes");
    assert!(fixed.byte_exact && tuned.byte_exact);
    // A fixed 128 KiB window carries at most 128 KiB per 100 ms.
    assert!(fixed.goodput_bps() < 10.5e6, "{}", fixed.goodput_bps());
    assert!(
        tuned.goodput_bps() > 3.0 * fixed.goodput_bps(),
        "autotuned {} vs fixed {}",
        tuned.goodput_bps(),
        fixed.goodput_bps()
    );
    let grown = |f: fn(&EventKind) -> bool| tuned.events.iter().any(|e| f(&e.kind));
    assert!(grown(
        |k| matches!(k, EventKind::ReceiveBufferGrown { to, .. } if *to > 1 << 20)
    ));
    assert!(grown(
        |k| matches!(k, EventKind::SendBufferGrown { to, .. } if *to > 1 << 20)
    ));
    assert!(fixed.events.iter().all(|e| !matches!(
        e.kind,
        EventKind::ReceiveBufferGrown { .. } | EventKind::SendBufferGrown { .. }
    )));
    // The receiver measured the path's round trip on its own side.
    let rcv_rtt = tuned.receiver_info.rcv_rtt.expect("receiver RTT estimate");
    assert!(rcv_rtt >= Duration::from_millis(100), "{rcv_rtt:?}");
}

#[test]
fn one_percent_loss() {
    let lossy = Impairment {
        loss: 0.01,
        ..path(10)
    };
    let r = run(2 << 20, lossy, path(10), 2);
    assert!(r.retransmissions > 0);
    assert!(
        r.fast_retransmits > 0,
        "loss repaired by fast retransmit too"
    );
}

#[test]
fn five_percent_loss_both_ways() {
    let lossy = Impairment {
        loss: 0.05,
        ..path(5)
    };
    run(1 << 20, lossy.clone(), lossy, 3);
}

#[test]
fn twenty_percent_loss() {
    let lossy = Impairment {
        loss: 0.2,
        ..path(2)
    };
    let r = run(200_000, lossy.clone(), lossy, 4);
    assert!(r.rtos > 0);
}

#[test]
fn reordering() {
    let reorder = Impairment {
        reorder: 0.1,
        reorder_delay: Duration::from_millis(3),
        ..path(10)
    };
    run(2 << 20, reorder, path(10), 5);
}

#[test]
fn duplication() {
    let dup = Impairment {
        duplicate: 0.1,
        ..path(10)
    };
    run(2 << 20, dup.clone(), dup, 6);
}

#[test]
fn corruption_is_caught_by_checksums() {
    let corrupt = Impairment {
        corrupt: 0.05,
        ..path(5)
    };
    run(1 << 20, corrupt.clone(), corrupt, 7);
}

#[test]
fn bursty_loss() {
    let burst = Impairment {
        burst: Some(daytona_link::GilbertElliott::gilbert(0.005, 0.3)),
        ..path(10)
    };
    run(1 << 20, burst, path(10), 8);
}

#[test]
fn everything_at_once() {
    let bad = Impairment {
        loss: 0.02,
        duplicate: 0.02,
        reorder: 0.05,
        reorder_delay: Duration::from_millis(2),
        corrupt: 0.01,
        jitter: Duration::from_millis(2),
        ..path(10)
    };
    run(1 << 20, bad.clone(), bad, 9);
}

#[test]
fn tiny_receive_buffer_forces_zero_windows() {
    let spec = TransferSpec {
        bytes: 300_000,
        seed: 10,
        forward: path(5),
        reverse: path(5),
        receiver: TcpConfig {
            recv_buffer: 4096,
            recv_buffer_max: None,
            ..TcpConfig::default()
        },
        ..TransferSpec::default()
    };
    let r = transfer(&spec, &CcRegistry::with_builtin()).unwrap();
    assert!(r.byte_exact);
    // The receiver's window limited the sender.
    assert!(r.sender_info.rwnd_limited > Duration::ZERO);
}

#[test]
fn small_mtu() {
    let spec = TransferSpec {
        bytes: 500_000,
        seed: 11,
        mtu: 576,
        forward: Impairment {
            loss: 0.01,
            ..path(5)
        },
        reverse: path(5),
        ..TransferSpec::default()
    };
    let r = transfer(&spec, &CcRegistry::with_builtin()).unwrap();
    assert!(r.byte_exact);
    assert_eq!(r.sender_info.snd_mss, 576 - 40 - 12);
}

#[test]
fn without_options() {
    let plain = TcpConfig {
        timestamps: false,
        window_scaling: false,
        sack: false,
        ..TcpConfig::default()
    };
    let spec = TransferSpec {
        bytes: 1 << 20,
        seed: 12,
        forward: Impairment {
            loss: 0.01,
            ..path(10)
        },
        reverse: path(10),
        sender: plain.clone(),
        receiver: plain,
        ..TransferSpec::default()
    };
    assert!(
        transfer(&spec, &CcRegistry::with_builtin())
            .unwrap()
            .byte_exact
    );
}

#[test]
fn same_seed_same_events() {
    let spec = TransferSpec {
        bytes: 300_000,
        seed: 42,
        forward: Impairment {
            loss: 0.03,
            reorder: 0.05,
            jitter: Duration::from_millis(1),
            ..path(5)
        },
        reverse: path(5),
        keep_events: true,
        ..TransferSpec::default()
    };
    let reg = CcRegistry::with_builtin();
    let a = transfer(&spec, &reg).unwrap();
    let b = transfer(&spec, &reg).unwrap();
    assert!(!a.events.is_empty());
    assert_eq!(format!("{:?}", a.events), format!("{:?}", b.events));
    assert_eq!(a.duration, b.duration);
    let other = transfer(&TransferSpec { seed: 43, ..spec }, &reg).unwrap();
    assert_ne!(format!("{:?}", a.events), format!("{:?}", other.events));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    #[test]
    fn any_seed_and_impairment_delivers_exactly(
        seed in any::<u64>(),
        loss in 0.0f64..0.1,
        dup in 0.0f64..0.05,
        reorder in 0.0f64..0.1,
        corrupt in 0.0f64..0.02,
    ) {
        let bad = Impairment { loss, duplicate: dup, reorder, corrupt, ..path(3) };
        run(100_000, bad.clone(), bad, seed);
    }
}
