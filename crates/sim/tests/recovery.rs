//! Loss recovery between two real stacks: each mechanism of RFC 8985
//! (RACK-TLP), RFC 6675 (SACK) and RFC 2883 (D-SACK) does its job on an
//! impaired path, and every transfer stays byte-exact.

use daytona_core::cc::CcRegistry;
use daytona_core::observe::{EventKind, RetransmitCause};
use daytona_core::tcp::TcpConfig;
use daytona_core::time::Duration;
use daytona_link::Impairment;
use daytona_sim::{transfer, TransferReport, TransferSpec};

fn path(delay_ms: u64) -> Impairment {
    Impairment {
        delay: Duration::from_millis(delay_ms),
        rate_bps: Some(50_000_000),
        queue_bytes: Some(400_000),
        ..Impairment::default()
    }
}

fn run(bytes: u64, sender: TcpConfig, forward: Impairment, seed: u64) -> TransferReport {
    let spec = TransferSpec {
        bytes,
        seed,
        forward,
        reverse: path(10),
        sender,
        keep_events: true,
        time_limit: Duration::from_secs(600),
        ..TransferSpec::default()
    };
    let r = transfer(&spec, &CcRegistry::with_builtin()).expect("transfer completes");
    assert!(r.byte_exact, "seed {seed}: not byte-exact");
    assert_eq!(r.bytes, bytes);
    r
}

fn count(r: &TransferReport, f: impl Fn(&EventKind) -> bool) -> usize {
    r.events.iter().filter(|e| f(&e.kind)).count()
}

#[test]
fn rack_tlp_needs_fewer_timeouts_than_dupthresh_recovery() {
    // Short transfers with tail losses: where RFC 6675 alone must wait for
    // the RTO, a tail loss probe repairs the tail.
    let lossy = Impairment {
        loss: 0.05,
        ..path(10)
    };
    let mut rtos = [0u64; 2];
    for seed in 1..=40 {
        for (i, rack) in [true, false].into_iter().enumerate() {
            let cfg = TcpConfig {
                rack,
                tlp: rack,
                ..TcpConfig::default()
            };
            rtos[i] += run(20_000, cfg, lossy.clone(), seed).rtos;
        }
    }
    eprintln!(
        "RTOs over 40 transfers: RACK-TLP {}, RFC 6675 {}",
        rtos[0], rtos[1]
    );
    assert!(
        rtos[0] * 2 <= rtos[1],
        "RTOs with RACK-TLP {} vs without {}",
        rtos[0],
        rtos[1]
    );
}

#[test]
fn sack_recovery_beats_newreno_on_bursty_loss() {
    // Several losses per window: NewReno repairs one hole per round trip
    // (or times out); the SACK scoreboard repairs them all in one.
    let bursty = Impairment {
        burst: Some(daytona_link::GilbertElliott::gilbert(0.005, 0.4)),
        ..path(20)
    };
    let mut t = [Duration::ZERO; 2];
    let mut rtos = [0u64; 2];
    for seed in 1..=4 {
        for (i, sack) in [true, false].into_iter().enumerate() {
            let cfg = TcpConfig {
                sack,
                ..TcpConfig::default()
            };
            let r = run(2 << 20, cfg, bursty.clone(), seed);
            t[i] += r.duration;
            rtos[i] += r.rtos;
        }
    }
    eprintln!(
        "bursty loss: SACK {:?} / {} RTOs, NewReno {:?} / {} RTOs",
        t[0], rtos[0], t[1], rtos[1]
    );
    assert!(t[0] < t[1], "SACK {:?} vs NewReno {:?}", t[0], t[1]);
    assert!(
        rtos[0] <= rtos[1],
        "RTOs SACK {} vs NewReno {}",
        rtos[0],
        rtos[1]
    );
}

#[test]
fn reordering_is_learned_and_spurious_retransmissions_undone() {
    // Heavy reordering without loss: RACK learns the reordering (D-SACKs
    // widen its window), and retransmissions found spurious are undone.
    let reordering = Impairment {
        reorder: 0.05,
        reorder_delay: Duration::from_millis(4),
        ..path(10)
    };
    let r = run(4 << 20, TcpConfig::default(), reordering, 3);
    assert!(r.sender_info.reord_seen > 0);
    assert!(
        r.sender_info.dsack_dups > 0,
        "the receiver reports duplicates"
    );
    let undone = count(&r, |k| {
        matches!(k, EventKind::SpuriousRetransmission { undone: true, .. })
    });
    assert!(undone > 0, "no undo");
    // Nothing was lost, so every retransmission was spurious; RACK's
    // window keeps them few compared with the segments sent.
    let sent = r.sender_info.data_segs_out;
    assert!(
        u64::from(r.sender_info.total_retrans) * 20 < sent,
        "{} retransmissions of {sent} segments",
        r.sender_info.total_retrans
    );
    assert_eq!(r.rtos, 0);
}

#[test]
fn every_mechanism_reports_its_retransmissions() {
    let lossy = Impairment {
        loss: 0.02,
        ..path(10)
    };
    let r = run(1 << 20, TcpConfig::default(), lossy, 5);
    let by = |c: RetransmitCause| {
        count(
            &r,
            |k| matches!(k, EventKind::Retransmit { cause, .. } if *cause == c),
        )
    };
    assert!(by(RetransmitCause::FastRetransmit) + by(RetransmitCause::Rack) > 0);
    assert!(count(&r, |k| matches!(k, EventKind::LossDetected { .. })) > 0);
    assert!(count(&r, |k| matches!(k, EventKind::RecoveryStart { .. })) > 0);
    // The sum of per-cause events equals the sender's counter.
    let total: usize = [
        RetransmitCause::Rto,
        RetransmitCause::FastRetransmit,
        RetransmitCause::PartialAck,
        RetransmitCause::Rack,
        RetransmitCause::Tlp,
        RetransmitCause::Rescue,
    ]
    .into_iter()
    .map(by)
    .sum();
    assert_eq!(total as u64, u64::from(r.sender_info.total_retrans));
}

#[test]
fn bbr_paces_and_keeps_the_queue_short_where_cubic_fills_it() {
    // 50 Mbit/s, 40 ms RTT, a 1 MB queue (4 BDP). CUBIC fills the queue
    // until it drops; BBR paces at its bandwidth estimate and drains it.
    let deep = Impairment {
        queue_bytes: Some(1_000_000),
        ..path(20)
    };
    let max_rtt = |r: &TransferReport| {
        r.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::RttSample { rtt, .. } => Some(rtt),
                _ => None,
            })
            .skip(200) // past slow start / STARTUP
            .max()
            .unwrap_or_default()
    };
    let cfg = |cc: &str| TcpConfig {
        congestion_control: cc.to_string(),
        ..TcpConfig::default()
    };
    let bbr = run(8 << 20, cfg("bbr"), deep.clone(), 1);
    let cubic = run(8 << 20, cfg("cubic"), deep, 1);
    let modes: Vec<(String, String)> = bbr
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::CcStateChange { from, to } => Some((from.clone(), to.clone())),
            _ => None,
        })
        .collect();
    assert!(
        modes.iter().any(|(f, t)| f == "startup" && t == "drain"),
        "{modes:?}"
    );
    assert!(modes.iter().any(|(_, t)| t == "probe_bw"), "{modes:?}");
    assert!(bbr
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::PacingRateChange { rate: Some(_) })));
    eprintln!(
        "max RTT after start: BBR {:?}, CUBIC {:?}",
        max_rtt(&bbr),
        max_rtt(&cubic)
    );
    // BBR v1 bounds inflight by 2 BDP: the RTT stays near twice the base
    // 40 ms; CUBIC's reaches the full queue's 160 ms on top.
    assert!(
        max_rtt(&bbr) * 5 < max_rtt(&cubic) * 3 && max_rtt(&bbr) < Duration::from_millis(110),
        "BBR {:?} vs CUBIC {:?}",
        max_rtt(&bbr),
        max_rtt(&cubic)
    );
    assert!(
        bbr.goodput_bps() > 0.8 * 50e6,
        "BBR goodput {}",
        bbr.goodput_bps()
    );
}
