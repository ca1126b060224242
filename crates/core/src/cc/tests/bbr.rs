//! BBR v1 against Linux `tcp_bbr.c`'s rules, over a simulated bottleneck
//! of 10 Mbit/s and 40 ms: a BDP of 50 segments of 1000 bytes.

use super::harness::{Flow, Path, Policer, Row, MSS};
use crate::cc::bbr::{Bbr, BBR_UNIT, CWND_MIN_TARGET, HIGH_GAIN, PACING_GAIN};
use crate::time::{Duration, Instant};

const RATE: u64 = 1_250_000;
const RTPROP: Duration = Duration::from_millis(40);

fn flow(seed: u64) -> Flow {
    let mut f = Flow::new(
        Box::new(Bbr::with_seed(seed)),
        Path {
            rate: RATE,
            rtprop: RTPROP,
        },
    );
    f.tracing = true;
    f
}

fn secs(s: f64) -> Instant {
    Instant::from_micros((s * 1e6) as u64)
}

/// The index of the first row in `mode`, after `from`.
fn first_in(trace: &[Row], mode: &str, from: usize) -> Option<usize> {
    trace[from..]
        .iter()
        .position(|r| r.mode == Some(mode))
        .map(|i| i + from)
}

/// Linux `bbr_tso_segs_goal`: about 1 ms of data at the pacing rate, at
/// least 2 segments above 1.2 Mbit/s.
fn tso_goal(pacing_rate: Option<u64>) -> u64 {
    let rate = pacing_rate.unwrap_or(0);
    let min = if rate < 150_000 { 1 } else { 2 };
    ((rate >> 10).min(65_215) / u64::from(MSS))
        .max(min)
        .min(127)
}

/// Linux `bbr_bdp` + `bbr_quantization_budget`, in segments, with the
/// pacing rate in force when BBR computed it.
fn inflight_target(bw: f64, min_rtt_us: f64, gain: u32, pacing: Option<u64>) -> u64 {
    let bdp = (bw * min_rtt_us * f64::from(gain) / f64::from(BBR_UNIT) / 1e6 / f64::from(MSS))
        .ceil() as u64;
    let c = bdp + 3 * tso_goal(pacing);
    (c + 1) & !1
}

#[test]
fn startup_ends_after_three_rounds_without_25_percent_growth() {
    let mut f = flow(1);
    f.run(secs(3.0));
    let t = &f.trace;
    let drain = first_in(t, "drain", 0).expect("leaves STARTUP");
    assert!(t[..drain].iter().all(|r| r.mode == Some("startup")));
    assert!(t[..drain]
        .iter()
        .all(|r| r.get("pacing_gain") == f64::from(HIGH_GAIN) / 256.0));

    // Replay the full-pipe rule on the max-bw filter at each round start:
    // a round whose bw is under 1.25× the last "full_bw" counts, three in
    // a row mean the pipe is full.
    let mut full_bw: f64 = 0.0;
    let mut cnt = 0;
    let mut expected = None;
    for (i, r) in t.iter().enumerate().skip(1) {
        if r.get("round_trips") == t[i - 1].get("round_trips") {
            continue;
        }
        let bw = r.get("bw_bytes_per_sec");
        if bw >= (full_bw * 1.25).floor() {
            full_bw = bw;
            cnt = 0;
        } else {
            cnt += 1;
            if cnt == 3 {
                expected = Some(i);
                break;
            }
        }
    }
    assert_eq!(Some(drain), expected, "DRAIN at the third flat round");
    // The plateau it found is the bottleneck rate.
    let bw = t[drain].get("bw_bytes_per_sec");
    assert!(
        bw > 0.95 * RATE as f64 && bw < 1.02 * RATE as f64,
        "bw {bw}"
    );
    // Linux `bbr_check_drain`: ssthresh = one BDP (with the budget, at the
    // STARTUP pacing rate still in force when it is computed).
    let min_rtt = t[drain].get("min_rtt_us");
    assert_eq!(
        u64::from(f.d.w.ssthresh) / u64::from(MSS),
        inflight_target(bw, min_rtt, BBR_UNIT, t[drain - 1].pacing_rate),
    );
}

#[test]
fn drain_ends_when_in_flight_is_down_to_one_bdp() {
    let mut f = flow(2);
    f.run(secs(3.0));
    let t = &f.trace;
    let drain = first_in(t, "drain", 0).expect("DRAIN");
    let probe = first_in(t, "probe_bw", drain).expect("PROBE_BW");
    assert!(probe > drain + 1, "DRAIN lasts some ACKs");
    for (i, r) in t.iter().enumerate().take(probe + 1).skip(drain) {
        // Checked before this ACK's pacing update: the previous rate.
        let target = inflight_target(
            r.get("bw_bytes_per_sec"),
            r.get("min_rtt_us"),
            BBR_UNIT,
            t[i - 1].pacing_rate,
        );
        let in_flight = u64::from(r.in_flight).div_ceil(u64::from(MSS));
        if i < probe {
            assert!(in_flight > target, "row {i}: still above one BDP");
            assert_eq!(r.get("pacing_gain"), 88.0 / 256.0, "drain gain 1/2.885");
        } else {
            assert!(in_flight <= target, "PROBE_BW at {in_flight} ≤ {target}");
        }
    }
}

#[test]
fn probe_bw_cycles_the_pacing_gains_one_phase_per_min_rtt() {
    let mut f = flow(3);
    f.run(secs(6.0));
    let t = &f.trace;
    let start = first_in(t, "probe_bw", 0).expect("PROBE_BW");
    let mut phases = 0;
    let mut phase_start = t[start].now;
    for i in start + 1..t.len() {
        let (a, b) = (&t[i - 1], &t[i]);
        if b.mode != Some("probe_bw") {
            break;
        }
        let gain = (b.get("pacing_gain") * 256.0).round() as u32;
        let idx = b.get("cycle_idx") as usize;
        assert_eq!(gain, PACING_GAIN[idx], "gain follows the cycle");
        let prev = a.get("cycle_idx") as usize;
        if idx != prev {
            assert_eq!(idx, (prev + 1) % 8, "phases advance one at a time");
            let len = b.now - phase_start;
            let min_rtt = Duration::from_micros(a.get("min_rtt_us") as u64);
            if PACING_GAIN[prev] != BBR_UNIT * 3 / 4 {
                // 1.0 and 1.25 phases last at least a min_rtt; 0.75 may end
                // early once in-flight is down to a BDP.
                assert!(len > min_rtt, "phase {prev} lasted {len:?}");
            }
            phase_start = b.now;
            phases += 1;
        }
        // Linux `bbr_rate_bytes_per_sec`: gain·bw less 1%.
        let bw = b.get("bw_bytes_per_sec");
        let expect = ((bw as u128 * u128::from(gain)) >> 8) * 99 / 100;
        assert_eq!(b.pacing_rate, Some(expect as u64));
    }
    assert!(phases >= 16, "two full cycles: {phases}");
}

#[test]
fn the_initial_probe_bw_phase_is_seeded_and_never_the_drain_phase() {
    let first_phase = |seed| {
        let mut f = flow(seed);
        f.run(secs(2.0));
        let i = first_in(&f.trace, "probe_bw", 0).expect("PROBE_BW");
        f.trace[i].get("cycle_idx") as usize
    };
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..24 {
        let p = first_phase(seed);
        assert_ne!(p, 1, "never starts with the 3/4 phase");
        assert_eq!(p, first_phase(seed), "deterministic for a seed");
        seen.insert(p);
    }
    assert!(seen.len() >= 4, "phases vary with the seed: {seen:?}");
}

#[test]
fn cwnd_is_two_bdp_plus_budget_in_probe_bw() {
    let mut f = flow(4);
    f.run(secs(5.0));
    let t = &f.trace;
    let start = first_in(t, "probe_bw", 0).expect("PROBE_BW") + 200;
    let (mut equal, mut total) = (0, 0);
    for r in &t[start..] {
        if r.mode != Some("probe_bw") {
            continue;
        }
        let bw = r.get("bw_bytes_per_sec");
        let bdp2 = (bw * r.get("min_rtt_us") * 2.0 / 1e6 / f64::from(MSS)).ceil() as u64;
        let aggr = (r.get("extra_acked_segments") as u64).min((bw * 0.1 / f64::from(MSS)) as u64);
        let mut target = bdp2 + aggr + 3 * tso_goal(r.pacing_rate);
        target = (target + 1) & !1;
        if r.get("cycle_idx") == 0.0 {
            target += 2;
        }
        let cwnd = u64::from(r.cwnd / MSS);
        assert!(cwnd <= target, "cwnd {cwnd} > target {target}");
        assert!(cwnd >= 2 * 50, "at least 2·BDP of the path");
        total += 1;
        if cwnd == target {
            equal += 1;
        }
    }
    assert!(total > 500);
    assert!(
        equal * 10 >= total * 9,
        "cwnd at its target on {equal}/{total} ACKs"
    );
}

#[test]
fn probe_rtt_after_ten_seconds_without_a_lower_rtt() {
    let mut f = flow(5);
    f.run(secs(14.0));
    let t = &f.trace;
    let enter = first_in(t, "probe_rtt", 0).expect("PROBE_RTT");
    // min_rtt was last lowered at the first sample of the lowest RTT.
    let min_rtt = t[enter - 1].get("min_rtt_us");
    let stamp = t
        .iter()
        .find(|r| r.get("min_rtt_us") == min_rtt)
        .map(|r| r.now)
        .expect("min_rtt measured");
    let entered = t[enter].now;
    assert!(entered > stamp + Duration::from_secs(10));
    assert!(
        t[enter - 1].now <= stamp + Duration::from_secs(10),
        "first ACK after expiry"
    );
    let exit = enter
        + t[enter..]
            .iter()
            .position(|r| r.mode != Some("probe_rtt"))
            .expect("leaves");
    for r in &t[enter..exit] {
        assert!(r.cwnd <= CWND_MIN_TARGET * MSS, "cwnd 4 in PROBE_RTT");
        assert_eq!(r.get("pacing_gain"), 1.0);
    }
    // 200 ms after in-flight reached 4 segments, and a round trip.
    let low = t[enter..]
        .iter()
        .find(|r| r.in_flight <= CWND_MIN_TARGET * MSS)
        .expect("in-flight drained")
        .now;
    assert!(t[exit].now > low + Duration::from_millis(200));
    assert_eq!(
        t[exit].mode,
        Some("probe_bw"),
        "full pipe: back to PROBE_BW"
    );
    // cwnd restored to what it was before.
    assert!(t[exit].cwnd >= t[enter - 1].cwnd);
}

#[test]
fn packet_conservation_on_loss_then_restore() {
    let mut f = flow(6);
    f.run(secs(2.0));
    let lost = f.d.w.snd_nxt + 10 * MSS;
    f.drop.push(lost);
    f.run(secs(3.0));
    let t = &f.trace;
    let i = t.iter().position(|r| r.losses > 0).expect("a loss");
    let before = t[i - 1].cwnd;
    // Linux `bbr_set_cwnd_to_recover_or_restore`: cwnd = in-flight + acked.
    assert_eq!(t[i].cwnd, t[i].in_flight + MSS);
    assert!(t[i].cwnd < before);
    // Recovery over at the next ACK: back to at least the saved window.
    assert!(t[i + 1].cwnd >= before, "{} < {before}", t[i + 1].cwnd);
}

#[test]
fn a_policer_is_detected_and_its_rate_used() {
    let mut f = flow(7);
    // 4 Mbit/s policer in front of the 10 Mbit/s link.
    f.policer = Some(Policer {
        rate: 500_000,
        burst: 20_000,
    });
    f.run(secs(20.0));
    let t = &f.trace;
    let lt = t
        .iter()
        .position(|r| r.get("lt_use_bw") == 1.0)
        .expect("policer detected");
    let bw = t[lt].get("bw_bytes_per_sec");
    assert!(bw > 0.9 * 500_000.0 && bw < 1.1 * 500_000.0, "lt_bw {bw}");
    assert_eq!(t[lt].get("pacing_gain"), 1.0);
}

#[test]
fn ack_aggregation_is_measured_and_added_to_cwnd() {
    let extra = |agg: Option<Duration>| {
        let mut f = flow(8);
        f.ack_aggregation = agg;
        f.run(secs(6.0));
        let last = f.trace.last().expect("ACKs").clone();
        (last.get("extra_acked_segments"), last)
    };
    let (smooth, _) = extra(None);
    let (bursty, row) = extra(Some(Duration::from_millis(20)));
    // Linux `bbr_update_ack_aggregation`: ACKs held for 20 ms arrive about
    // 20 ms of data (25 segments at 10 Mbit/s) ahead of what bw predicts.
    assert!(smooth <= 3.0, "smooth ACKs: {smooth}");
    assert!((15.0..=40.0).contains(&bursty), "aggregated ACKs: {bursty}");
    // And cwnd carries that allowance on top of 2·BDP.
    let bw = row.get("bw_bytes_per_sec");
    let bdp2 = (bw * row.get("min_rtt_us") * 2.0 / 1e6 / f64::from(MSS)).ceil();
    assert!(f64::from(row.cwnd / MSS) >= bdp2 + bursty.min(bw * 0.1 / f64::from(MSS)));
}

#[test]
fn app_limited_samples_only_raise_the_bandwidth_estimate() {
    use crate::cc::{CongestionControl, RateSample, Window};
    let mut bbr = Bbr::with_seed(9);
    let mut w = Window::new(10 * MSS, MSS);
    let mut now = Instant::from_millis(1);
    bbr.init(&mut w, now);
    // Rounds of 40 ms at 1 MB/s, each ACK starting a new round.
    let sample = |bbr: &mut Bbr, w: &mut Window, now: Instant, rate: u64, app: bool| {
        let prior = w.delivered;
        w.delivered += rate / 25;
        let rs = RateSample {
            delivered: rate / 25,
            interval: Duration::from_millis(40),
            prior_delivered: prior,
            rtt: Some(Duration::from_millis(40)),
            acked_sacked: MSS,
            is_app_limited: app,
            ..RateSample::default()
        };
        bbr.cong_control(w, &rs, now);
    };
    for _ in 0..3 {
        now += Duration::from_millis(40);
        sample(&mut bbr, &mut w, now, 1_000_000, false);
    }
    assert_eq!(bbr.max_bw(), 1_000_000);
    now += Duration::from_millis(40);
    sample(&mut bbr, &mut w, now, 200_000, true);
    assert_eq!(
        bbr.max_bw(),
        1_000_000,
        "a low app-limited sample is ignored"
    );
    now += Duration::from_millis(40);
    sample(&mut bbr, &mut w, now, 2_000_000, true);
    assert_eq!(bbr.max_bw(), 2_000_000, "a higher one counts");
    // And app-limited rounds do not count toward a full pipe.
    for _ in 0..5 {
        now += Duration::from_millis(40);
        sample(&mut bbr, &mut w, now, 2_000_000, true);
    }
    assert!(!bbr.full_bw_reached());
    // The first full round sees 2 MB/s ≥ 1.25 × 1 MB/s (growth), then three
    // flat rounds fill the pipe.
    for round in 1..=4 {
        now += Duration::from_millis(40);
        sample(&mut bbr, &mut w, now, 2_000_000, false);
        assert_eq!(bbr.full_bw_reached(), round == 4, "round {round}");
    }
}
