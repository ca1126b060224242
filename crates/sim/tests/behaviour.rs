//! Behaviour on virtual time: deterministic, so the bounds are checks of
//! the model and the stack, not of the machine's speed.

use daytona_core::cc::CcRegistry;
use daytona_core::time::Duration;
use daytona_link::{Aqm, CoDelParams, Impairment};
use daytona_sim::scenario::{jain, FlowDef, Scenario, ScenarioReport};
use daytona_sim::workload::{FlowReport, Workload};

fn link(rate: u64, queue: usize) -> Impairment {
    Impairment {
        rate_bps: Some(rate),
        queue_bytes: Some(queue),
        ..Impairment::default()
    }
}

fn bulk(bytes: u64) -> FlowDef {
    FlowDef {
        workload: Workload::Bulk { bytes },
        ..FlowDef::default()
    }
}

fn run(s: &Scenario) -> ScenarioReport {
    let r = s
        .run(&CcRegistry::with_builtin(), &mut |_| {})
        .expect("scenario runs");
    assert!(r.all_exact(), "not byte-exact");
    r
}

#[test]
fn clean_link_goodput_is_at_least_ninety_percent_of_the_bottleneck() {
    // 100 Mbit/s, 20 ms (a 250 kB BDP) and a one-BDP queue. The sender's
    // window is bounded by 400 KiB buffers: more than the BDP, so the
    // link never idles, and less than BDP plus queue, so nothing is
    // dropped. (With autotuned buffers the window overflows the queue and
    // the run measures loss recovery instead.)
    let s = Scenario {
        rtt: Duration::from_millis(20),
        forward: link(100_000_000, 250_000),
        reverse: link(100_000_000, 250_000),
        flows: vec![FlowDef {
            buffer: Some(400 << 10),
            ..bulk(50_000_000)
        }],
        ..Scenario::default()
    };
    let r = run(&s);
    assert_eq!(r.forward.queue_drops, 0);
    let goodput = r.flows[0].goodput_bps();
    assert!(goodput >= 90e6, "goodput {:.2} Mbit/s", goodput / 1e6);
}

/// Mathis et al. 1997: throughput ≈ (MSS/RTT)·(1.22/√p) for Reno under
/// random loss p.
#[test]
fn reno_under_random_loss_follows_the_mathis_model() {
    for (p, seed) in [(0.005, 1), (0.01, 2), (0.02, 3)] {
        // A fast link with a deep queue: only the random loss limits the
        // window, and the RTT stays at the propagation delay.
        let rtt = Duration::from_millis(40);
        let s = Scenario {
            seed,
            rtt,
            forward: Impairment {
                loss: p,
                ..link(1_000_000_000, 20_000_000)
            },
            reverse: link(1_000_000_000, 20_000_000),
            flows: vec![FlowDef {
                cc: "reno".into(),
                ..bulk(8_000_000)
            }],
            sample_interval: None,
            ..Scenario::default()
        };
        let r = run(&s);
        let f = &r.flows[0];
        let mss = f64::from(f.sender_info.snd_mss);
        let model = mss * 8.0 / rtt.as_secs_f64() * 1.22 / p.sqrt();
        let ratio = f.goodput_bps() / model;
        assert!(
            (0.5..=2.0).contains(&ratio),
            "p {p}: goodput {:.2} Mbit/s, Mathis {:.2} Mbit/s",
            f.goodput_bps() / 1e6,
            model / 1e6
        );
    }
}

/// Bytes a flow had acknowledged at `t` since the run's start, from its
/// samples.
fn acked_at(f: &FlowReport, t: Duration) -> u64 {
    f.samples
        .iter()
        .take_while(|s| s.time <= t)
        .last()
        .map_or(0, |s| s.bytes_acked)
}

#[test]
fn two_identical_flows_converge_to_a_fair_share() {
    // The second flow joins 2 s in; over the last stretch both run, the
    // shares must be even.
    let s = Scenario {
        rtt: Duration::from_millis(20),
        forward: link(50_000_000, 125_000),
        reverse: link(50_000_000, 125_000),
        flows: vec![
            bulk(60_000_000),
            FlowDef {
                start: Duration::from_secs(2),
                ..bulk(60_000_000)
            },
        ],
        sample_interval: Some(Duration::from_millis(10)),
        ..Scenario::default()
    };
    let r = run(&s);
    let first_end = r
        .flows
        .iter()
        .filter_map(|f| f.completion.map(|c| f.start + c))
        .min()
        .expect("a flow finished");
    // Measure over the later half of the overlap.
    let from = Duration::from_secs(2) + (first_end - Duration::from_secs(2)) / 2;
    let shares: Vec<f64> = r
        .flows
        .iter()
        .map(|f| (acked_at(f, first_end) - acked_at(f, from)) as f64)
        .collect();
    let j = jain(&shares).expect("both flows moved data");
    assert!(j >= 0.9, "Jain {j:.3}, shares {shares:?}");
    // And together they kept the link busy.
    let total: f64 = shares.iter().sum::<f64>() * 8.0 / (first_end - from).as_secs_f64();
    assert!(total > 40e6, "{:.1} Mbit/s together", total / 1e6);
}

#[test]
fn codel_keeps_the_rtt_low_where_a_deep_drop_tail_queue_bloats_it() {
    let run_with = |aqm| {
        let deep = Impairment {
            aqm,
            ..link(20_000_000, 2_000_000)
        };
        // 1 MiB socket buffers: a window far above the 50 kB BDP that
        // still fits the 2 MB queue, so drop-tail never drops and the
        // queue stands; CoDel must drop to keep it short.
        let s = Scenario {
            rtt: Duration::from_millis(20),
            forward: deep.clone(),
            reverse: deep,
            flows: vec![FlowDef {
                buffer: Some(1 << 20),
                ..bulk(10_000_000)
            }],
            ..Scenario::default()
        };
        run(&s).flows[0].rtt_quantile(0.5).expect("RTT samples")
    };
    let tail = run_with(Aqm::DropTail);
    let codel = run_with(Aqm::CoDel(CoDelParams::default()));
    // ~1 MB standing in a 20 Mbit/s queue is ~400 ms; CoDel aims at 5 ms.
    assert!(
        tail > Duration::from_millis(150),
        "drop-tail median {tail:?}"
    );
    assert!(codel < Duration::from_millis(60), "CoDel median {codel:?}");
}

/// CUBIC's window grows with time since the last loss, not with RTTs, so
/// it fills a long fat pipe sooner than NewReno (RFC 9438 §1).
#[test]
fn cubic_fills_a_high_bdp_path_faster_than_newreno() {
    let registry = CcRegistry::with_builtin();
    if !registry.contains("cubic") {
        println!(
            "SKIPPED: no \"cubic\" in the congestion-control registry (known: {})",
            registry.names().join(", ")
        );
        return;
    }
    let run_cc = |cc: &str| {
        let s = Scenario {
            seed: 5,
            rtt: Duration::from_millis(100),
            forward: Impairment {
                loss: 0.0001,
                ..link(1_000_000_000, 12_500_000)
            },
            reverse: link(1_000_000_000, 12_500_000),
            flows: vec![FlowDef {
                cc: cc.into(),
                ..bulk(200_000_000)
            }],
            sample_interval: None,
            ..Scenario::default()
        };
        let r = s.run(&registry, &mut |_| {}).expect("runs");
        assert!(r.all_exact());
        r.flows[0].goodput_bps()
    };
    let (cubic, reno) = (run_cc("cubic"), run_cc("newreno"));
    assert!(
        cubic > reno * 1.2,
        "cubic {:.1} Mbit/s vs newreno {:.1} Mbit/s",
        cubic / 1e6,
        reno / 1e6
    );
}
