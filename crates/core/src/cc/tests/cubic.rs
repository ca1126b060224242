//! CUBIC against RFC 9438's formulas.

use super::harness::{Driver, MSS};
use crate::cc::cubic::{Cubic, CubicParams};
use crate::cc::CaState;
use crate::time::Duration;

const C: f64 = 0.4;
const BETA: f64 = 0.7;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// W_cubic(t) in segments (RFC 9438 eq. 1).
fn w_cubic(t: f64, k: f64, w_max: f64) -> f64 {
    C * (t - k).powi(3) + w_max
}

fn info(d: &Driver, key: &str) -> Option<f64> {
    d.cc.info()
        .fields
        .iter()
        .find(|(k, _)| *k == key)
        .map(|&(_, v)| v)
}

fn segs(d: &Driver) -> f64 {
    f64::from(d.w.cwnd) / f64::from(MSS)
}

/// A CUBIC connection in congestion avoidance right after a loss at a
/// window of `w_max` segments: ssthresh and cwnd at β·W_max, Open, srtt
/// `rtt`. Time is 0 at the end of recovery.
fn after_loss(w_max: u32, rtt: Duration) -> Driver {
    let mut d = Driver::new(Box::new(Cubic::new()), w_max);
    d.set_rtt(rtt);
    d.loss(w_max * MSS);
    d.recovered();
    d
}

#[test]
fn beta_reduction_sets_ssthresh_to_seventy_percent_of_flight() {
    let mut d = Driver::new(Box::new(Cubic::new()), 100);
    // RFC 9438 §4.6: ssthresh = flight_size · β_cubic.
    let ss = d.loss(100 * MSS);
    assert_eq!(ss, 70 * MSS);
    assert_eq!(info(&d, "w_max_segments"), Some(100.0));
    // ... and never below 2 segments.
    let mut d = Driver::new(Box::new(Cubic::new()), 2);
    assert_eq!(d.loss(MSS), 2 * MSS);
}

#[test]
fn k_is_the_cube_root_of_w_max_times_one_minus_beta_over_c() {
    let mut d = after_loss(100, ms(100));
    d.at(ms(10)).ack(MSS, Some(ms(100)));
    // RFC 9438 eq. 2 with cwnd_epoch = β·W_max.
    let k = (100.0 * (1.0 - BETA) / C).cbrt();
    let got = info(&d, "k_seconds").expect("an epoch started");
    assert!((got - k).abs() < 1e-9, "K = {got}, RFC: {k}");
    assert!((k - 4.2172).abs() < 1e-3);
}

#[test]
fn one_ack_grows_by_target_minus_cwnd_over_cwnd() {
    // RFC 9438 §4.4: cwnd += (target − cwnd)/cwnd per acknowledged segment,
    // target = W_cubic(t + RTT).
    let rtt = ms(100);
    let mut d = after_loss(100, rtt);
    d.at(Duration::ZERO).ack(MSS, Some(rtt)); // starts the epoch at t = 0
    let k = (30.0f64 / C).cbrt();
    let before = segs(&d);
    let t = 1.0;
    d.at(Duration::from_secs(1)).ack(MSS, Some(rtt));
    let target = w_cubic(t + 0.1, k, 100.0).clamp(before, 1.5 * before);
    let expect = before + (target - before) / before;
    assert!(
        (segs(&d) - expect).abs() < 1.0 / f64::from(MSS) + 1e-9,
        "cwnd {} segments, RFC {}",
        segs(&d),
        expect
    );
}

#[test]
fn window_follows_w_cubic_through_the_concave_and_convex_regions() {
    let rtt = ms(100);
    let mut d = after_loss(100, rtt);
    let k = (30.0f64 / C).cbrt();
    d.at(Duration::ZERO).ack(MSS, Some(rtt));
    let mut checked = 0;
    while d.now.total_millis() < 7_000 {
        d.round(rtt);
        let t = d.now.total_micros() as f64 / 1e6;
        // Each round moves cwnd to the target of its ACKs, W_cubic(τ + RTT)
        // for τ in the round: between W_cubic(t) and W_cubic(t + RTT).
        let lo = w_cubic(t - 0.1, k, 100.0).min(w_cubic(t + 0.1, k, 100.0)) - 1.0;
        let hi = w_cubic(t + 0.1, k, 100.0).max(w_cubic(t - 0.1, k, 100.0)) + 1.0;
        // Where Reno's estimate is higher, cwnd follows W_est (§4.3).
        let w_est = info(&d, "w_est_segments").unwrap_or(0.0);
        let hi = hi.max(w_est + 1e-6);
        let c = segs(&d);
        if t > 1.0 {
            assert!(
                (lo..=hi).contains(&c),
                "t = {t:.2} s: cwnd {c:.2} not in W_cubic bounds [{lo:.2}, {hi:.2}]"
            );
            checked += 1;
        }
    }
    assert!(checked > 50);
    // The plateau: at t = K the window is back at W_max (within a segment
    // and the one-RTT look-ahead), and it grows past W_max after K (convex).
    assert!(segs(&d) > 100.0 + C * (7.0 - k - 0.1).powi(3) - 1.0);
}

#[test]
fn reno_friendly_region_sets_cwnd_to_w_est() {
    // A short RTT: Reno's W_est grows faster than W_cubic (RFC 9438 §4.3).
    let rtt = ms(1);
    let mut d = after_loss(10, rtt);
    let alpha = 3.0 * (1.0 - BETA) / (1.0 + BETA);
    d.at(Duration::ZERO).ack(MSS, Some(rtt));
    let w_est0 = info(&d, "w_est_segments").unwrap_or(0.0);
    assert!((w_est0 - (7.0 + alpha / 7.0)).abs() < 1e-9);
    // Reference: per ACK W_est += α·segments_acked/cwnd; cwnd = W_est while
    // W_cubic(t) < W_est; α = 1 from W_est ≥ cwnd_prior (10) on.
    let mut w_est = w_est0;
    let k = (3.0f64 / C).cbrt();
    for _ in 0..20 {
        let start = d.now;
        let n = d.w.cwnd / MSS;
        for i in 1..=n {
            d.now = start + rtt * i / n;
            // In this region cwnd = W_est, so the reference divides by its own.
            let cwnd = w_est;
            let a = if w_est >= 10.0 { 1.0 } else { alpha };
            w_est += a / cwnd;
            d.ack(MSS, Some(rtt));
            let t = d.now.total_micros() as f64 / 1e6;
            assert!(w_cubic(t, k, 10.0) < w_est, "still Reno-friendly");
            let got = info(&d, "w_est_segments").unwrap_or(0.0);
            assert!((got - w_est).abs() < 1e-6, "W_est {got} vs RFC {w_est}");
            assert!((segs(&d) - w_est).abs() < 1.0 / f64::from(MSS) + 1e-6);
        }
    }
    // 20 RTTs: about α per RTT up to cwnd_prior (3/α ≈ 5.7 RTTs), then one
    // segment per RTT (≈ 14 more): about 24 segments.
    assert!(segs(&d) > 22.0 && segs(&d) < 25.0, "cwnd {}", segs(&d));
}

#[test]
fn fast_convergence_lowers_w_max_when_the_window_shrank() {
    let rtt = ms(100);
    let mut d = after_loss(100, rtt);
    d.at(Duration::ZERO).ack(MSS, Some(rtt));
    // A second loss at 80 segments < W_max = 100 (RFC 9438 §4.7).
    d.w.cwnd = 80 * MSS;
    d.at(Duration::from_secs(1));
    d.loss(80 * MSS);
    let fc = info(&d, "w_max_segments").unwrap_or(0.0);
    assert!((fc - 80.0 * (1.0 + BETA) / 2.0).abs() < 1e-9, "W_max {fc}");

    let mut d = Driver::new(
        Box::new(Cubic::with_params(CubicParams {
            fast_convergence: false,
            ..CubicParams::default()
        })),
        100,
    );
    d.loss(100 * MSS);
    d.recovered();
    d.ack(MSS, Some(rtt));
    d.w.cwnd = 80 * MSS;
    d.loss(80 * MSS);
    assert_eq!(info(&d, "w_max_segments"), Some(80.0));
}

#[test]
fn target_is_clamped_to_one_and_a_half_cwnd() {
    let rtt = ms(100);
    let mut d = after_loss(100, rtt);
    d.at(Duration::ZERO).ack(MSS, Some(rtt));
    // Far in the convex region W_cubic(t + RTT) ≫ 1.5·cwnd: a whole
    // window acknowledged at once grows cwnd by exactly half (§4.2).
    let before = d.w.cwnd;
    d.at(Duration::from_secs(30)).ack(before, Some(rtt));
    let expect = f64::from(before) * 1.5;
    assert!((f64::from(d.w.cwnd) - expect).abs() <= 1.0, "{}", d.w.cwnd);
}

#[test]
fn after_a_timeout_k_is_zero_and_w_max_is_the_window_at_ca_start() {
    let rtt = ms(100);
    let mut d = after_loss(100, rtt);
    d.at(Duration::ZERO).ack(MSS, Some(rtt));
    d.at(Duration::from_secs(2));
    let ss = d.rto(60 * MSS);
    // §4.8: ssthresh by β as for any congestion event.
    assert_eq!(ss, 42 * MSS);
    assert_eq!(d.w.ca_state, CaState::Loss);
    d.recovered();
    // Slow start back to ssthresh, then the first CA ACK starts the epoch.
    d.w.cwnd = d.w.ssthresh;
    d.at(Duration::from_secs(3)).ack(MSS, Some(rtt));
    assert_eq!(info(&d, "k_seconds"), Some(0.0));
    assert!((info(&d, "w_max_segments").unwrap_or(0.0) - 42.0).abs() < 1e-9);
    assert!((info(&d, "w_est_segments").unwrap_or(0.0) - 42.0).abs() < 0.1);
}

#[test]
fn undo_restores_window_w_max_k_epoch_and_w_est() {
    let rtt = ms(100);
    let mut d = after_loss(100, rtt);
    d.at(Duration::ZERO).ack(MSS, Some(rtt));
    d.at(Duration::from_secs(1)).round(rtt);
    let before_info = d.cc.info();
    let before_cwnd = d.w.cwnd;
    let before_ss = d.w.ssthresh;
    d.at(Duration::from_secs(2));
    d.loss(before_cwnd);
    assert!(d.w.cwnd < before_cwnd);
    d.undo();
    assert_eq!(d.w.cwnd, before_cwnd);
    assert_eq!(d.w.ssthresh, before_ss);
    let after = d.cc.info();
    for key in [
        "w_max_segments",
        "k_seconds",
        "w_est_segments",
        "epoch_start_us",
    ] {
        let get = |i: &crate::cc::CcInfo| i.fields.iter().find(|(k, _)| *k == key).map(|f| f.1);
        assert_eq!(get(&after), get(&before_info), "{key} restored");
    }
}

#[test]
fn idle_time_does_not_count_as_epoch_time() {
    let rtt = ms(100);
    let mut d = after_loss(100, rtt);
    d.at(Duration::ZERO).ack(MSS, Some(rtt));
    let start = info(&d, "epoch_start_us").unwrap_or(-1.0);
    d.at(Duration::from_secs(1)).ack(MSS, Some(rtt));
    d.at(Duration::from_secs(3));
    d.cc.cwnd_event(&mut d.w, crate::cc::CwndEvent::TxStart, d.now);
    assert_eq!(info(&d, "epoch_start_us"), Some(start + 2e6));
}

#[test]
fn an_ecn_echo_is_a_congestion_event_like_a_loss() {
    // RFC 9438 §4.6: the same β reduction for ECN-Echo as for loss.
    let mut d = Driver::new(Box::new(Cubic::new()), 50);
    assert_eq!(d.ecn(50 * MSS), 35 * MSS);
    assert_eq!(d.w.ca_state, CaState::Cwr);
    assert_eq!(info(&d, "w_max_segments"), Some(50.0));
    assert_eq!(info(&d, "congestion_events"), Some(1.0));
}
