//! HyStart++ (RFC 9406) inside CUBIC, over an ACK-clocked flow whose path
//! delay rises: slow start → CSS on the RTT increase → congestion
//! avoidance after CSS_ROUNDS rounds; and back to slow start when the
//! increase was spurious.

use super::harness::{Flow, Path, MSS};
use crate::cc::hystart::{CSS_GROWTH_DIVISOR, CSS_ROUNDS};
use crate::cc::Cubic;
use crate::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// 1 Gbit/s, 50 ms: the queue never builds in these runs.
fn flow() -> Flow {
    Flow::new(
        Box::new(Cubic::new()),
        Path {
            rate: 125_000_000,
            rtprop: ms(50),
        },
    )
}

fn mode(f: &Flow) -> &'static str {
    f.d.cc.mode().unwrap_or("none")
}

/// Runs in 100 µs steps until the mode is `m`; returns the time.
fn run_until_mode(f: &mut Flow, m: &str, limit: Instant) -> Option<Instant> {
    while f.now() < limit {
        let next = f.now() + Duration::from_micros(100);
        f.run(next);
        if mode(f) == m {
            return Some(f.now());
        }
    }
    None
}

#[test]
fn an_rtt_increase_enters_css_and_css_rounds_later_congestion_avoidance() {
    let mut f = flow();
    f.run(at(175));
    assert_eq!(mode(&f), "slow_start");
    assert_eq!(f.d.w.cwnd, 80 * MSS, "three doublings from 10 segments");
    // +10 ms ≥ RttThresh = max(4 ms, min(50/8 ms, 16 ms)) = 6.25 ms. The
    // segments sent from now on come back 10 ms later: the round whose
    // ACKs arrive from 260 ms on sees the increase after N_RTT_SAMPLE = 8.
    f.path.rtprop = ms(60);
    let css = run_until_mode(&mut f, "css", at(400)).expect("enters CSS");
    assert!(css >= at(260) && css < at(262), "CSS at {css}");
    assert_eq!(f.d.w.ssthresh, u32::MAX, "CSS is still slow start");

    // CSS grows by a quarter of slow start's rate: 250 bytes per segment.
    let before = f.d.w.cwnd;
    let acked = f.d.w.delivered;
    f.run(f.now() + ms(1));
    let segs = ((f.d.w.delivered - acked) / u64::from(MSS)) as u32;
    assert!(segs > 0);
    assert_eq!(f.d.w.cwnd - before, segs * MSS / CSS_GROWTH_DIVISOR);

    // The rest of the round CSS began in (it began near the round's start:
    // the 8th sample), then CSS_ROUNDS full rounds of a little over 60 ms
    // (serialisation adds up to 2 ms), then CA with ssthresh = cwnd.
    let ca = run_until_mode(&mut f, "congestion_avoidance", at(1000)).expect("leaves CSS");
    let rounds = (ca - css).as_micros() as f64 / 60_000.0;
    assert!(
        rounds > f64::from(CSS_ROUNDS) + 0.9 && rounds < f64::from(CSS_ROUNDS) + 1.25,
        "{rounds:.2} rounds in CSS"
    );
    assert_ne!(f.d.w.ssthresh, u32::MAX);
    assert!(f.d.w.ssthresh <= f.d.w.cwnd && f.d.w.cwnd - f.d.w.ssthresh < MSS);
}

#[test]
fn a_constant_rtt_stays_in_slow_start() {
    let mut f = flow();
    assert_eq!(run_until_mode(&mut f, "css", at(400)), None);
    assert_eq!(mode(&f), "slow_start");
    assert_eq!(f.d.w.ssthresh, u32::MAX);
}

#[test]
fn an_rtt_that_falls_back_during_css_resumes_slow_start() {
    let mut f = flow();
    f.run(at(175));
    f.path.rtprop = ms(60);
    run_until_mode(&mut f, "css", at(400)).expect("enters CSS");
    f.path.rtprop = ms(50);
    let back = run_until_mode(&mut f, "slow_start", at(600)).expect("back to slow start");
    assert!(back < at(400), "within two rounds: {back}");
    assert_eq!(f.d.w.ssthresh, u32::MAX);
}

#[test]
fn a_loss_during_slow_start_ends_hystart() {
    let mut f = flow();
    f.drop.push(30 * MSS);
    f.run(at(300));
    assert_eq!(mode(&f), "congestion_avoidance");
    assert_ne!(f.d.w.ssthresh, u32::MAX);
}
