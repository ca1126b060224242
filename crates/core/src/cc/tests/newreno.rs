//! NewReno's window against RFC 5681 §3.1 (with RFC 3465 byte counting).

use super::harness::{Driver, MSS};
use crate::cc::NewReno;
use crate::time::Duration;

const RTT: Duration = Duration::from_millis(50);

#[test]
fn slow_start_doubles_the_window_every_round_trip() {
    let mut d = Driver::new(Box::new(NewReno::new()), 10);
    for expect in [20, 40, 80, 160] {
        d.round(RTT);
        assert_eq!(d.w.cwnd, expect * MSS);
    }
}

#[test]
fn congestion_avoidance_adds_one_segment_per_round_trip() {
    let mut d = Driver::new(Box::new(NewReno::new()), 20);
    d.w.ssthresh = 10 * MSS;
    for expect in 21..=30 {
        d.round(RTT);
        assert_eq!(d.w.cwnd, expect * MSS);
    }
}

#[test]
fn a_loss_halves_the_flight_and_growth_resumes_linearly() {
    let mut d = Driver::new(Box::new(NewReno::new()), 40);
    // RFC 5681 eq. (4): ssthresh = max(FlightSize/2, 2·SMSS).
    assert_eq!(d.loss(40 * MSS), 20 * MSS);
    d.recovered();
    assert_eq!(d.w.cwnd, 20 * MSS);
    d.round(RTT);
    assert_eq!(d.w.cwnd, 21 * MSS);
    // A timeout: ssthresh halves the flight, cwnd is one segment, slow
    // start up to ssthresh, then linear again.
    assert_eq!(d.rto(21 * MSS), 10_500);
    d.recovered();
    assert_eq!(d.w.cwnd, MSS);
    for expect in [2, 4, 8] {
        d.round(RTT);
        assert_eq!(d.w.cwnd, expect * MSS);
    }
    d.round(RTT); // 8 one-segment ACKs: 2.5 to reach ssthresh, 5.5 in CA
    assert_eq!(d.w.cwnd, 10_500);
}

#[test]
fn ssthresh_floor_is_two_segments() {
    let mut d = Driver::new(Box::new(NewReno::new()), 10);
    assert_eq!(d.loss(MSS), 2 * MSS);
}

#[test]
fn info_counts_congestion_events_timeouts_ecn_and_undos() {
    let mut d = Driver::new(Box::new(NewReno::new()), 20);
    let get = |d: &Driver, k: &str| {
        d.cc.info()
            .fields
            .iter()
            .find(|(n, _)| *n == k)
            .map(|f| f.1)
    };
    assert_eq!(d.cc.mode(), Some("slow_start"));
    d.loss(20 * MSS);
    d.recovered();
    d.ecn(10 * MSS);
    d.recovered();
    d.rto(10 * MSS);
    d.undo();
    assert_eq!(get(&d, "congestion_events"), Some(3.0));
    assert_eq!(get(&d, "ecn_echoes"), Some(1.0));
    assert_eq!(get(&d, "timeouts"), Some(1.0));
    assert_eq!(get(&d, "undos"), Some(1.0));
    // The undo put back the window from before the timeout.
    assert_eq!(d.w.cwnd, 5 * MSS);
    d.round(RTT);
    assert_eq!(d.cc.mode(), Some("congestion_avoidance"));
}
