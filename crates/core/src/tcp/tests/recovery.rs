//! Congestion control and NewReno loss recovery for peers without SACK
//! (RFC 5681, RFC 6582, RFC 3042), with PRR (RFC 6937) reducing the window.

use super::harness::*;
use crate::cc::CaState;
use crate::observe::{CwndCause, EventKind, RetransmitCause};
use crate::tcp::TcpConfig;
use crate::time::Duration;
use daytona_wire::SeqNum;

const M: u32 = 1460;

fn seq(segment: u32) -> SeqNum {
    ISS + 1 + segment * M
}

/// Sends `n` duplicate ACKs of `seq(0)`, letting the connection transmit
/// after each one.
fn dup_acks(h: &mut Harness, n: usize) -> Vec<Seg> {
    let mut out = Vec::new();
    for _ in 0..n {
        h.send(PeerSeg::ack(IRS + 1, seq(0)));
        out.extend(h.recv());
    }
    out
}

/// Established with ten full segments in flight.
fn ten_in_flight() -> Harness {
    let mut h = Harness::established(config());
    h.write(&pattern(30 * M as usize));
    assert_eq!(h.recv().len(), 10);
    h.events.clear();
    h
}

#[test]
fn slow_start_grows_cwnd_by_the_bytes_acked() {
    let mut h = ten_in_flight();
    h.send(PeerSeg::ack(IRS + 1, seq(2)));
    // RFC 5681 §3.1: in slow start, at most one SMSS per ACK... per
    // appropriate byte counting, cwnd grows with the bytes acknowledged.
    let cwnd = h.conn.info(h.now).snd_cwnd;
    assert!(cwnd > 10 * M && cwnd <= 12 * M, "cwnd {cwnd}");
    assert!(h.events.iter().any(|e| matches!(
        e,
        EventKind::CwndChange {
            cause: CwndCause::Ack,
            ..
        }
    )));
}

#[test]
fn three_duplicate_acks_trigger_exactly_one_fast_retransmit() {
    let mut h = ten_in_flight();
    h.send(PeerSeg::ack(IRS + 1, seq(1)));
    h.recv(); // new data released by the ACK
    h.events.clear();
    for _ in 0..2 {
        h.send(PeerSeg::ack(IRS + 1, seq(1)));
    }
    assert_eq!(h.conn.info(h.now).ca_state, CaState::Disorder);
    h.recv(); // limited transmit
    h.send(PeerSeg::ack(IRS + 1, seq(1)));
    let segs = h.recv();
    let retransmits: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            EventKind::Retransmit { seq, cause, .. } => Some((*seq, *cause)),
            _ => None,
        })
        .collect();
    assert_eq!(retransmits, vec![(seq(1), RetransmitCause::FastRetransmit)]);
    assert_eq!(segs[0].seq, seq(1));
    let info = h.conn.info(h.now);
    assert_eq!(info.ca_state, CaState::Recovery);
    assert_eq!(info.fast_retransmits, 1);
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, EventKind::RecoveryStart { .. })));
    // A fourth duplicate does not retransmit again.
    h.events.clear();
    h.send(PeerSeg::ack(IRS + 1, seq(1)));
    h.recv();
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, EventKind::Retransmit { .. })));
}

#[test]
fn fast_recovery_halves_ssthresh_and_prr_sends_one_segment_per_two_acks() {
    let mut h = ten_in_flight();
    let sent = dup_acks(&mut h, 3);
    let info = h.conn.info(h.now);
    // RFC 5681 §3.2: ssthresh = FlightSize/2, the flight being the ten
    // segments plus two sent by limited transmit.
    assert_eq!(info.snd_ssthresh, 12 * M / 2);
    // RFC 6937: pipe is 12 − 3 duplicates − 1 lost = 8 segments; the first
    // ACK of the episode lets exactly the fast retransmission out.
    assert_eq!(info.snd_cwnd, 9 * M);
    assert_eq!(sent.last().map(|s| s.seq), Some(seq(0)));
    // Each further duplicate delivers one segment; PRR sends ssthresh /
    // RecoverFS = one segment for every two.
    let more = dup_acks(&mut h, 6);
    assert_eq!(more.len(), 3, "{more:#?}");
    assert!(more.iter().all(|s| s.len() == M as usize));
}

#[test]
fn limited_transmit_sends_new_data_on_the_first_two_duplicates() {
    let mut h = ten_in_flight();
    h.send(PeerSeg::ack(IRS + 1, seq(0)));
    let first = h.recv();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].seq, seq(10));
    h.send(PeerSeg::ack(IRS + 1, seq(0)));
    let second = h.recv();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].seq, seq(11));
}

#[test]
fn limited_transmit_can_be_turned_off() {
    let mut h = Harness::established(TcpConfig {
        limited_transmit: false,
        ..config()
    });
    h.write(&pattern(30 * M as usize));
    h.recv();
    h.send(PeerSeg::ack(IRS + 1, seq(0)));
    h.recv_nothing();
}

#[test]
fn partial_ack_retransmits_the_next_hole_and_full_ack_ends_recovery() {
    let mut h = ten_in_flight();
    // Segments 0 and 5 are lost; limited transmit sends 10 and 11.
    dup_acks(&mut h, 3);
    h.events.clear();
    // The retransmission of 0 arrives: the ACK is partial, up to 5.
    h.send(PeerSeg::ack(IRS + 1, seq(5)));
    let segs = h.recv();
    assert_eq!(segs[0].seq, seq(5));
    assert!(h.events.contains(&EventKind::Retransmit {
        seq: seq(5),
        len: M,
        cause: RetransmitCause::PartialAck
    }));
    assert_eq!(h.conn.info(h.now).ca_state, CaState::Recovery);
    // Everything up to `recover` (the 12 segments sent) is acknowledged.
    h.send(PeerSeg::ack(IRS + 1, seq(12)));
    let info = h.conn.info(h.now);
    assert_eq!(info.ca_state, CaState::Open);
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, EventKind::RecoveryEnd { .. })));
    // RFC 6582 §3.2 step 3: cwnd = min(ssthresh, FlightSize + SMSS).
    assert!(info.snd_cwnd <= info.snd_ssthresh);
}

#[test]
fn rto_in_recovery_goes_back_to_slow_start() {
    let mut h = ten_in_flight();
    for _ in 0..3 {
        h.send(PeerSeg::ack(IRS + 1, seq(0)));
    }
    h.recv();
    h.fire_next_timer();
    let info = h.conn.info(h.now);
    assert_eq!(info.ca_state, CaState::Loss);
    assert_eq!(info.snd_cwnd, M);
    // After the timeout, duplicate ACKs of the old flight do not start a
    // second fast retransmit (RFC 6582 §4.1).
    h.recv();
    h.events.clear();
    for _ in 0..3 {
        h.send(PeerSeg::ack(IRS + 1, seq(0)));
    }
    h.recv();
    assert!(!h.events.iter().any(|e| matches!(
        e,
        EventKind::Retransmit {
            cause: RetransmitCause::FastRetransmit,
            ..
        }
    )));
}

#[test]
fn congestion_avoidance_adds_about_one_segment_per_round_trip() {
    let mut h = Harness::established(TcpConfig {
        send_buffer: 4 << 20,
        ..config()
    });
    h.write(&pattern(3 << 20));
    // Force congestion avoidance: one fast recovery episode.
    h.recv();
    for _ in 0..3 {
        h.send(PeerSeg::ack(IRS + 1, seq(0)));
    }
    h.recv();
    let mut acked = 0;
    let mut round_cwnds = Vec::new();
    for _round in 0..4 {
        // Acknowledge everything in flight, one segment per ACK.
        let in_flight = h.conn.info(h.now).unacked;
        for _ in 0..in_flight {
            acked += 1;
            h.send(PeerSeg::ack(IRS + 1, seq(acked)));
            h.recv();
        }
        h.advance(Duration::from_millis(10));
        round_cwnds.push(h.conn.info(h.now).snd_cwnd);
    }
    for pair in round_cwnds.windows(2) {
        let growth = pair[1] - pair[0];
        assert!(
            growth <= 2 * M,
            "per-round growth {growth} in {round_cwnds:?}"
        );
        assert!(
            growth >= M / 2,
            "per-round growth {growth} in {round_cwnds:?}"
        );
    }
}

#[test]
fn delivery_rate_comes_from_the_timed_flight() {
    let mut h = Harness::established(config());
    h.write(&pattern(10 * M as usize));
    h.recv();
    h.advance(Duration::from_millis(20));
    h.send(PeerSeg::ack(IRS + 1, seq(10)));
    // draft-cheng-iccrg-delivery-rate-estimation: 10 segments in 20 ms.
    assert_eq!(
        h.conn.info(h.now).delivery_rate,
        Some(u64::from(10 * M) * 50)
    );
}

/// A controller that takes the window from every rate sample.
#[derive(Debug, Default)]
struct RateDriven {
    samples: u32,
}

impl crate::cc::CongestionControl for RateDriven {
    fn name(&self) -> &'static str {
        "rate-driven"
    }
    fn ssthresh(&mut self, w: &crate::cc::Window, _now: crate::time::Instant) -> u32 {
        w.cwnd
    }
    fn cong_avoid(
        &mut self,
        _w: &mut crate::cc::Window,
        _a: &crate::cc::AckSample,
        _now: crate::time::Instant,
    ) {
        panic!("cong_avoid must not run when cong_control owns the window");
    }
    fn cong_control(
        &mut self,
        w: &mut crate::cc::Window,
        rs: &crate::cc::RateSample,
        _now: crate::time::Instant,
    ) -> bool {
        self.samples += 1;
        // Two bandwidth-delay products of the sample.
        let rate = rs.delivery_rate().unwrap_or(0);
        let rtt = rs.rtt.unwrap_or_default();
        w.cwnd = (2 * rate as u128 * rtt.as_micros() / 1_000_000) as u32;
        w.pacing_rate = Some(rate);
        true
    }
}

#[test]
fn a_controller_with_cong_control_owns_the_window() {
    let mut p = params(config());
    p.cc = Box::new(RateDriven::default());
    let now = crate::time::Instant::from_secs(1);
    let mut h = Harness::wrap(crate::tcp::Connection::connect(p, now), now);
    h.recv_one();
    h.advance(Duration::from_millis(10));
    h.send(PeerSeg {
        seq: IRS,
        ack: Some(ISS + 1),
        control: daytona_wire::Control::Syn,
        window: 65_535,
        options: daytona_wire::TcpOptions {
            mss: Some(MSS),
            ..Default::default()
        },
        payload: vec![],
        ece: false,
        cwr: false,
    });
    h.recv();
    h.write(&pattern(10 * M as usize));
    h.recv();
    h.advance(Duration::from_millis(20));
    h.send(PeerSeg::ack(IRS + 1, seq(10)));
    let info = h.conn.info(h.now);
    // 2 × 730,000 B/s × 20 ms.
    assert_eq!(info.snd_cwnd, 29_200);
    assert_eq!(info.pacing_rate, Some(730_000));
    assert!(h.events.iter().any(|e| matches!(
        e,
        EventKind::CwndChange {
            cause: CwndCause::Controller,
            ..
        }
    )));
}

#[test]
fn every_partial_ack_restarts_the_timer() {
    // RFC 6582 §3.2 step 5 leaves the choice; Linux (and Daytona) restart
    // the timer on every ACK of new data ("Slow-but-Steady").
    let mut h = ten_in_flight();
    dup_acks(&mut h, 3);
    h.advance(Duration::from_millis(10));
    h.send(PeerSeg::ack(IRS + 1, seq(3)));
    h.recv();
    assert_eq!(h.conn.poll_timeout(), Some(h.now + h.conn.info(h.now).rto));
    h.advance(Duration::from_millis(10));
    h.send(PeerSeg::ack(IRS + 1, seq(6)));
    h.recv();
    assert_eq!(h.conn.poll_timeout(), Some(h.now + h.conn.info(h.now).rto));
}
