//! SACK-based loss recovery, RACK-TLP, D-SACK, undo, ECN and pacing
//! (RFC 2018, RFC 2883, RFC 6675, RFC 8985, RFC 6937, RFC 3522, RFC 3168).

use super::harness::*;
use crate::cc::CaState;
use crate::observe::{EventKind, RetransmitCause, SpuriousDetection};
use crate::tcp::{EcnMode, TcpConfig};
use crate::time::Duration;
use daytona_wire::tcp::{Control, TcpOptions, Timestamps};
use daytona_wire::SeqNum;

const M: u32 = 1460;

fn seq(segment: u32) -> SeqNum {
    ISS + 1 + segment * M
}

fn sack_config() -> TcpConfig {
    TcpConfig {
        sack: true,
        ..config()
    }
}

fn sack_peer() -> TcpOptions {
    TcpOptions {
        mss: Some(MSS),
        sack_permitted: true,
        ..TcpOptions::default()
    }
}

/// Established with SACK and `n` full segments in flight.
fn in_flight(cfg: TcpConfig, n: u32) -> Harness {
    let mut h = Harness::established_with(cfg, sack_peer());
    h.write(&pattern((n * M) as usize));
    assert_eq!(h.recv().len(), n as usize);
    h.events.clear();
    h
}

/// An ACK of `ack` SACKing segments `from..to`.
fn sack(ack: u32, from: u32, to: u32) -> PeerSeg {
    PeerSeg::ack(IRS + 1, seq(ack)).with_sack(&[(seq(from), seq(to))])
}

fn retransmissions(h: &Harness) -> Vec<(SeqNum, RetransmitCause)> {
    h.events
        .iter()
        .filter_map(|e| match e {
            EventKind::Retransmit { seq, cause, .. } => Some((*seq, *cause)),
            _ => None,
        })
        .collect()
}

fn data_segs(segs: &[Seg]) -> Vec<SeqNum> {
    segs.iter()
        .filter(|s| !s.payload.is_empty())
        .map(|s| s.seq)
        .collect()
}

#[test]
fn three_sack_dupacks_retransmit_exactly_the_first_hole_with_rack_or_rfc_6675() {
    for rack in [true, false] {
        let mut h = in_flight(
            TcpConfig {
                rack,
                ..sack_config()
            },
            10,
        );
        // Segment 0 is lost; 1, 2, 3 arrive and are SACKed.
        let mut out = Vec::new();
        for k in 2..=4 {
            h.send(sack(0, 1, k));
            out.extend(h.recv());
        }
        assert_eq!(
            retransmissions(&h),
            vec![(seq(0), RetransmitCause::FastRetransmit)],
            "rack {rack}"
        );
        assert_eq!(h.conn.info(h.now).ca_state, CaState::Recovery);
        // Only the hole was resent; the two limited-transmit segments are new.
        let resent: Vec<SeqNum> = data_segs(&out)
            .into_iter()
            .filter(|s| s.before(seq(10)))
            .collect();
        assert_eq!(resent, vec![seq(0)], "rack {rack}");
        // A fourth SACK does not resend it again.
        h.events.clear();
        h.send(sack(0, 1, 5));
        h.recv();
        assert!(retransmissions(&h).is_empty(), "rack {rack}");
    }
}

#[test]
fn sack_recovery_repairs_several_holes_in_one_round_trip() {
    let mut h = in_flight(sack_config(), 10);
    // Segments 0, 3 and 6 are lost.
    h.send(PeerSeg::ack(IRS + 1, seq(0)).with_sack(&[(seq(1), seq(3))]));
    h.send(PeerSeg::ack(IRS + 1, seq(0)).with_sack(&[(seq(4), seq(6)), (seq(1), seq(3))]));
    h.send(PeerSeg::ack(IRS + 1, seq(0)).with_sack(&[
        (seq(7), seq(10)),
        (seq(4), seq(6)),
        (seq(1), seq(3)),
    ]));
    h.recv();
    let mut resent: Vec<SeqNum> = retransmissions(&h).iter().map(|r| r.0).collect();
    // RFC 6675: every hole with DupThresh SACKed segments above it is
    // lost, and PRR lets them out as ACKs arrive — not one per RTT.
    let holes = [seq(0), seq(3), seq(6)];
    let mut more = 0;
    while !holes.iter().all(|s| resent.contains(s)) && more < 6 {
        h.send(PeerSeg::ack(IRS + 1, seq(0)).with_sack(&[
            (seq(7), seq(10 + more)),
            (seq(4), seq(6)),
            (seq(1), seq(3)),
        ]));
        h.recv();
        resent = retransmissions(&h).iter().map(|r| r.0).collect();
        more += 1;
    }
    assert_eq!(resent, holes.to_vec());
    // The holes arrive: one cumulative ACK ends recovery.
    h.send(PeerSeg::ack(IRS + 1, h.conn.snd_max));
    let info = h.conn.info(h.now);
    assert_eq!(info.ca_state, CaState::Open);
    assert_eq!(info.rto_count, 0);
    assert!(info.snd_cwnd >= info.snd_ssthresh);
}

#[test]
fn rack_waits_a_reordering_window_before_declaring_a_loss() {
    let mut h = in_flight(sack_config(), 10);
    h.advance(Duration::from_millis(10));
    // One segment above the hole is SACKed: that may be reordering.
    h.send(sack(0, 1, 2));
    h.recv();
    assert!(retransmissions(&h).is_empty());
    // RFC 8985 §6.3: the reordering timer fires after RACK.rtt + reo_wnd
    // from the hole's transmission, and the hole is resent.
    let waited = h.fire_next_timer();
    h.recv();
    assert!(
        waited > Duration::ZERO && waited < Duration::from_millis(10),
        "{waited:?}"
    );
    assert_eq!(retransmissions(&h).first().map(|r| r.0), Some(seq(0)));
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, EventKind::LossDetected { .. })));
}

#[test]
fn a_tail_loss_is_repaired_by_a_probe_not_an_rto() {
    let mut h = in_flight(sack_config(), 10);
    h.advance(Duration::from_millis(10));
    // The last two segments are lost: no SACKs will come to reveal it.
    h.send(PeerSeg::ack(IRS + 1, seq(8)));
    h.recv();
    h.events.clear();
    // RFC 8985 §7.2: the probe timeout (2·SRTT) comes well before the RTO.
    let waited = h.fire_next_timer();
    let probe = h.recv();
    assert!(waited < h.conn.info(h.now).rto, "PTO {waited:?}");
    assert_eq!(data_segs(&probe), vec![seq(9)]);
    assert!(h.events.contains(&EventKind::LossProbe {
        seq: seq(9),
        retransmission: true
    }));
    // The probe is SACKed; RACK now sees segment 8 lost and fast recovery
    // repairs it — no RTO ever fires.
    h.advance(Duration::from_millis(10));
    h.send(sack(8, 9, 10));
    let repair = h.recv();
    assert_eq!(data_segs(&repair), vec![seq(8)]);
    h.send(PeerSeg::ack(IRS + 1, seq(10)));
    let info = h.conn.info(h.now);
    assert_eq!(info.rto_count, 0);
    assert_eq!(info.ca_state, CaState::Open);
}

#[test]
fn a_lone_tail_segment_is_probed_no_later_than_the_rto() {
    let mut h = in_flight(sack_config(), 10);
    h.advance(Duration::from_millis(10));
    h.send(PeerSeg::ack(IRS + 1, seq(9)));
    h.recv();
    h.events.clear();
    // One segment in flight: PTO = 2·SRTT + WCDelAckT, capped at the RTO.
    h.fire_next_timer();
    assert_eq!(data_segs(&h.recv()), vec![seq(9)]);
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, EventKind::LossProbe { .. })));
    // The probe repaired the loss: a congestion response (§7.4), no RTO.
    h.send(PeerSeg::ack(IRS + 1, seq(10)));
    assert!(h.events.iter().any(|e| matches!(
        e,
        EventKind::LossDetected {
            by: RetransmitCause::Tlp,
            ..
        }
    )));
    let info = h.conn.info(h.now);
    assert_eq!(info.rto_count, 0);
    assert!(info.snd_ssthresh < u32::MAX);
}

#[test]
fn a_probe_with_new_data_available_sends_new_data() {
    let mut h = Harness::established_with(
        TcpConfig {
            initial_cwnd_segments: 4,
            ..sack_config()
        },
        sack_peer(),
    );
    h.write(&pattern(6 * M as usize));
    assert_eq!(h.recv().len(), 4);
    h.events.clear();
    h.fire_next_timer();
    let probe = h.recv();
    assert_eq!(data_segs(&probe), vec![seq(4)]);
    assert!(h.events.contains(&EventKind::LossProbe {
        seq: seq(4),
        retransmission: false
    }));
}

#[test]
fn dsack_is_sent_for_a_duplicate_segment() {
    let mut h = Harness::established_with(sack_config(), sack_peer());
    h.send(PeerSeg::data(IRS + 1, ISS + 1, &pattern(100)));
    h.recv();
    // RFC 2883 §4: the same segment again is reported in a D-SACK block.
    h.send(PeerSeg::data(IRS + 1, ISS + 1, &pattern(100)));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(IRS + 101));
    assert_eq!(ack.sack(), vec![((IRS + 1).0, (IRS + 101).0)]);
    // Only once.
    h.send(PeerSeg::data(IRS + 101, ISS + 1, b"x"));
    assert!(h.recv_one().sack().is_empty());
}

#[test]
fn dsack_widens_the_reordering_window() {
    let mut h = in_flight(sack_config(), 10);
    h.advance(Duration::from_millis(10));
    // Reordering: segment 1 is SACKed, then 0 arrives late.
    h.send(sack(0, 1, 2));
    h.send(PeerSeg::ack(IRS + 1, seq(2)));
    let before = h.conn.current_reo_wnd();
    assert!(before > Duration::ZERO);
    // A D-SACK for a segment below SND.UNA (RFC 2883 §4).
    h.send(PeerSeg::ack(IRS + 1, seq(2)).with_sack(&[(seq(0), seq(1))]));
    assert!(h.events.contains(&EventKind::DsackReceived {
        left: seq(0),
        right: seq(1)
    }));
    // RFC 8985 §6.2 step 4: the multiplier grows to 2.
    assert_eq!(h.conn.current_reo_wnd(), before * 2);
    assert_eq!(h.conn.info(h.now).dsack_dups, 1);
}

fn ts_peer(tsval: u32) -> TcpOptions {
    TcpOptions {
        mss: Some(MSS),
        sack_permitted: true,
        timestamps: Some(Timestamps { tsval, tsecr: 1 }),
        ..TcpOptions::default()
    }
}

#[test]
fn undo_restores_cwnd_after_a_spurious_rto() {
    let cfg = TcpConfig {
        timestamps: true,
        ..sack_config()
    };
    let mut h = Harness::established_with(cfg, ts_peer(500));
    h.write(&pattern(10 * M as usize));
    let sent = h.recv();
    let original_tsval = sent[0].options.timestamps.unwrap().tsval;
    let cwnd = h.conn.info(h.now).snd_cwnd;
    // The ACKs are delayed beyond the RTO: a spurious timeout.
    let mut waited = Duration::ZERO;
    while h.conn.info(h.now).rto_count == 0 {
        waited += h.fire_next_timer();
    }
    assert!(waited >= Duration::from_millis(200));
    h.recv();
    assert_eq!(h.conn.info(h.now).snd_cwnd, h.conn.snd_mss());
    // The delayed ACK echoes the original transmission's timestamp, older
    // than the retransmission's (RFC 3522 Eifel detection).
    let all = h.conn.snd_max;
    h.send(PeerSeg::ack(IRS + 1, all).with_ts(501, original_tsval));
    let info = h.conn.info(h.now);
    assert!(h.events.contains(&EventKind::SpuriousRetransmission {
        by: SpuriousDetection::Timestamps,
        undone: true
    }));
    assert_eq!(info.ca_state, CaState::Open);
    assert!(
        info.snd_cwnd >= cwnd,
        "cwnd {} restored from {}",
        info.snd_cwnd,
        cwnd
    );
}

#[test]
fn dsacks_for_every_retransmission_undo_fast_recovery() {
    let mut h = in_flight(sack_config(), 10);
    h.advance(Duration::from_millis(10));
    let cwnd = h.conn.info(h.now).snd_cwnd;
    for k in 2..=4 {
        h.send(sack(0, 1, k));
    }
    h.recv();
    assert_eq!(h.conn.info(h.now).ca_state, CaState::Recovery);
    // The original segment 0 was only delayed: it arrives, then the
    // retransmission is reported as a duplicate.
    h.send(PeerSeg::ack(IRS + 1, seq(4)));
    h.send(PeerSeg::ack(IRS + 1, seq(4)).with_sack(&[(seq(0), seq(1))]));
    assert!(h.events.contains(&EventKind::SpuriousRetransmission {
        by: SpuriousDetection::Dsack,
        undone: true
    }));
    let info = h.conn.info(h.now);
    assert_eq!(info.ca_state, CaState::Open);
    assert!(info.snd_cwnd >= cwnd);
}

fn ecn_syn(ece_cwr: bool) -> PeerSeg {
    PeerSeg {
        seq: IRS,
        ack: None,
        control: Control::Syn,
        window: 65_535,
        options: sack_peer(),
        payload: vec![],
        ece: ece_cwr,
        cwr: ece_cwr,
    }
}

#[test]
fn ecn_is_accepted_when_the_peer_asks_and_ce_is_echoed_until_cwr() {
    let now = crate::time::Instant::from_secs(1);
    let conn = crate::tcp::Connection::accept(params(sack_config()), &ecn_syn(true).repr(), now);
    let mut h = Harness::wrap(conn, now);
    // RFC 3168 §6.1.1: the SYN-ACK answers with ECE alone.
    let syn_ack = h.recv_one();
    assert!(syn_ack.ece && !syn_ack.cwr);
    h.send(PeerSeg::ack(IRS + 1, ISS + 1));
    assert!(h.conn.info(h.now).options.ecn);
    // A CE-marked data segment: ECE on every ACK until CWR.
    h.conn
        .handle_segment(h.now, &PeerSeg::data(IRS + 1, ISS + 1, b"ab").repr(), true);
    h.drain_events();
    assert!(h.events.contains(&EventKind::EcnCeReceived));
    assert!(h.recv_one().ece);
    h.send(PeerSeg::data(IRS + 3, ISS + 1, b"cd"));
    assert!(h.recv_one().ece);
    h.send(PeerSeg::data(IRS + 5, ISS + 1, b"ef").with_cwr());
    assert!(!h.recv_one().ece);
}

#[test]
fn ecn_is_not_negotiated_unless_both_sides_want_it() {
    let now = crate::time::Instant::from_secs(1);
    let conn = crate::tcp::Connection::accept(params(sack_config()), &ecn_syn(false).repr(), now);
    let mut h = Harness::wrap(conn, now);
    assert!(!h.recv_one().ece);
    // Off: even an ECN-setup SYN is answered without ECE.
    let off = TcpConfig {
        ecn: EcnMode::Off,
        ..sack_config()
    };
    let conn = crate::tcp::Connection::accept(params(off), &ecn_syn(true).repr(), now);
    let mut h = Harness::wrap(conn, now);
    assert!(!h.recv_one().ece);
    // On: our SYN asks with ECE and CWR.
    let mut h = Harness::connect(TcpConfig {
        ecn: EcnMode::On,
        ..sack_config()
    });
    let syn = h.recv_one();
    assert!(syn.ece && syn.cwr);
}

#[test]
fn ece_reduces_the_window_once_per_round_trip_and_sends_cwr() {
    let mut h = Harness::connect(TcpConfig {
        ecn: EcnMode::On,
        ..sack_config()
    });
    h.recv_one();
    h.advance(Duration::from_millis(10));
    h.send(
        PeerSeg {
            ece: true,
            cwr: false,
            ..ecn_syn(false)
        }
        .with_control(Control::Syn)
        .with_ack(ISS + 1),
    );
    h.recv();
    assert!(h.conn.info(h.now).options.ecn);
    h.write(&pattern(20 * M as usize));
    let first = h.recv();
    assert_eq!(first.len(), 10);
    h.events.clear();
    let cwnd = h.conn.info(h.now).snd_cwnd;
    h.send(PeerSeg::ack(IRS + 1, seq(2)).with_ece());
    let out = h.recv();
    let info = h.conn.info(h.now);
    assert_eq!(info.ca_state, CaState::Cwr);
    assert!(info.snd_ssthresh < cwnd);
    assert!(h.events.contains(&EventKind::EcnEchoReceived));
    // RFC 3168 §6.1.2: CWR on the first new data segment after it.
    assert!(out.first().is_some_and(|s| s.cwr), "{out:#?}");
    // More ECEs in the same window do not reduce again.
    let ssthresh = info.snd_ssthresh;
    h.send(PeerSeg::ack(IRS + 1, seq(4)).with_ece());
    assert_eq!(h.conn.info(h.now).snd_ssthresh, ssthresh);
    // New data carries ECT(0); retransmissions and pure ACKs do not.
    h.send(PeerSeg::ack(IRS + 1, seq(6)));
    let mut buf = vec![0u8; 2000];
    if let Some(n) = h.conn.poll_transmit(h.now, &mut buf) {
        assert!(n > 40);
        assert!(h.conn.tx_ect());
    }
}

/// A controller that asks for a fixed pacing rate.
#[derive(Debug)]
struct Paced;

impl crate::cc::CongestionControl for Paced {
    fn name(&self) -> &'static str {
        "paced"
    }
    fn init(&mut self, w: &mut crate::cc::Window, _now: crate::time::Instant) {
        // About one 1500-byte packet per millisecond.
        w.pacing_rate = Some(1_500_000);
        w.cwnd = 100 * M;
    }
    fn ssthresh(&mut self, w: &crate::cc::Window, _now: crate::time::Instant) -> u32 {
        w.cwnd / 2
    }
    fn cong_avoid(
        &mut self,
        _w: &mut crate::cc::Window,
        _a: &crate::cc::AckSample,
        _now: crate::time::Instant,
    ) {
    }
}

#[test]
fn transmissions_are_paced_at_the_controllers_rate() {
    let mut p = params(sack_config());
    p.cc = Box::new(Paced);
    let now = crate::time::Instant::from_secs(1);
    let mut h = Harness::wrap(crate::tcp::Connection::connect(p, now), now);
    h.recv_one();
    h.advance(Duration::from_millis(10));
    h.send(ecn_syn(false).with_ack(ISS + 1));
    h.recv();
    h.write(&pattern(10 * M as usize));
    // One segment now, the next when the pacing timer says.
    assert_eq!(data_segs(&h.recv()).len(), 1);
    let mut gaps = Vec::new();
    for _ in 0..4 {
        gaps.push(h.fire_next_timer());
        assert_eq!(data_segs(&h.recv()).len(), 1);
    }
    // (1460 + 52 + 20) bytes at 1.5 MB/s ≈ 1.02 ms apart.
    for g in gaps {
        assert!(
            g >= Duration::from_micros(1000) && g <= Duration::from_micros(1100),
            "{g:?}"
        );
    }
}

mod model {
    //! Model-based property test: a SACK sender against a model receiver
    //! over a lossy, reordering path. Whatever happens, the scoreboard's
    //! accounting is exact, cwnd never drops below one segment, acknowledged
    //! data is never sent again, and the stream arrives intact.
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        /// The application writes this many bytes.
        Write(u16),
        /// The sender transmits; each segment is lost when its bit is set.
        Send(u16),
        /// The receiver acknowledges, with CE echoed when set.
        Ack(bool),
        /// Time passes (ms), firing timers.
        Wait(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1u16..20_000).prop_map(Op::Write),
            any::<u16>().prop_map(Op::Send),
            any::<bool>().prop_map(Op::Ack),
            (1u8..250).prop_map(Op::Wait),
        ]
    }

    /// Receiver model: bytes received by offset from IRS-side ISS + 1.
    #[derive(Default)]
    struct Receiver {
        got: BTreeMap<u32, Vec<u8>>,
        /// Most recently received segment ranges, newest first.
        recent: Vec<(u32, u32)>,
    }

    impl Receiver {
        fn cum(&self) -> u32 {
            let mut next = 0;
            for (&start, data) in &self.got {
                if start > next {
                    break;
                }
                next = next.max(start + data.len() as u32);
            }
            next
        }

        fn sack_blocks(&self) -> Vec<(u32, u32)> {
            let cum = self.cum();
            let mut out: Vec<(u32, u32)> = Vec::new();
            for &(s, _) in &self.recent {
                if s < cum {
                    continue;
                }
                // The contiguous block holding `s`.
                let mut left = s;
                let mut right = s;
                for (&start, data) in &self.got {
                    let end = start + data.len() as u32;
                    if start <= right && end >= left && start >= cum {
                        left = left.min(start);
                        right = right.max(end);
                    }
                }
                if !out.iter().any(|b| b.0 <= left && right <= b.1) {
                    out.push((left, right));
                }
                if out.len() == 3 {
                    break;
                }
            }
            out
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn sender_invariants_hold_under_any_loss_pattern(ops in prop::collection::vec(op(), 1..80)) {
            let mut h = Harness::established_with(
                TcpConfig { ecn: EcnMode::On, ..sack_config() },
                sack_peer(),
            );
            h.conn.ecn_ok = true;
            let base = ISS + 1;
            let mut written: Vec<u8> = Vec::new();
            let mut rx = Receiver::default();
            for op in ops {
                match op {
                    Op::Write(n) => {
                        let data = pattern(written.len() + n as usize);
                        let chunk = &data[written.len()..];
                        let taken = h.conn.send(chunk).unwrap_or(0);
                        written.extend_from_slice(&chunk[..taken]);
                    }
                    Op::Send(mask) => {
                        let una = h.conn.snd_una;
                        for (k, seg) in h.recv().into_iter().enumerate() {
                            if seg.payload.is_empty() {
                                continue;
                            }
                            // Acknowledged data is never sent again.
                            prop_assert!(!seg.seq.before(una), "resent {:?} below {:?}", seg.seq, una);
                            let off = seg.seq.since(base);
                            prop_assert_eq!(&seg.payload[..], &written[off as usize..off as usize + seg.len()]);
                            if mask & (1 << (k % 16)) == 0 {
                                rx.got.insert(off, seg.payload.clone());
                                rx.recent.insert(0, (off, off + seg.len() as u32));
                            }
                        }
                    }
                    Op::Ack(ce) => {
                        let blocks: Vec<(SeqNum, SeqNum)> = rx
                            .sack_blocks()
                            .into_iter()
                            .map(|(l, r)| (base + l, base + r))
                            .collect();
                        let mut ack = PeerSeg::ack(IRS + 1, base + rx.cum()).with_sack(&blocks);
                        if ce {
                            ack = ack.with_ece();
                        }
                        h.send(ack);
                    }
                    Op::Wait(ms) => h.advance(Duration::from_millis(u64::from(ms))),
                }
                let c = &h.conn;
                prop_assert!(c.window().cwnd >= c.snd_mss());
                // The scoreboard covers exactly SND.UNA..SND.MAX and its
                // counters match its entries.
                let segs: Vec<_> = c.board.iter().copied().collect();
                if let (Some(f), Some(l)) = (segs.first(), segs.last()) {
                    prop_assert_eq!(f.start, c.snd_una);
                    prop_assert_eq!(l.end, c.snd_max);
                }
                for w in segs.windows(2) {
                    prop_assert_eq!(w[0].end, w[1].start);
                }
                let sum = |f: &dyn Fn(&crate::tcp::scoreboard::SentSeg) -> bool| -> u32 {
                    segs.iter().filter(|s| f(s)).map(|s| s.len()).sum()
                };
                prop_assert_eq!(c.board.sacked_bytes(), sum(&|s| s.sacked));
                prop_assert_eq!(c.board.lost_bytes(), sum(&|s| s.lost && !s.sacked));
                prop_assert_eq!(c.board.retrans_bytes(), sum(&|s| s.retrans_in_flight));
                let outstanding = c.snd_max.since(c.snd_una);
                prop_assert_eq!(
                    c.board.in_flight(),
                    outstanding + sum(&|s| s.retrans_in_flight) - sum(&|s| s.sacked) - sum(&|s| s.lost && !s.sacked)
                );
            }
            // Let the path heal: everything written arrives intact.
            for _ in 0..400 {
                if h.conn.snd_una == base + written.len() as u32 {
                    break;
                }
                for seg in h.recv() {
                    if !seg.payload.is_empty() {
                        let off = seg.seq.since(base);
                        rx.got.insert(off, seg.payload.clone());
                        rx.recent.insert(0, (off, off + seg.len() as u32));
                    }
                }
                let blocks: Vec<(SeqNum, SeqNum)> = rx
                    .sack_blocks()
                    .into_iter()
                    .map(|(l, r)| (base + l, base + r))
                    .collect();
                h.send(PeerSeg::ack(IRS + 1, base + rx.cum()).with_sack(&blocks));
                h.advance(Duration::from_millis(50));
            }
            prop_assert_eq!(h.conn.snd_una, base + written.len() as u32);
            prop_assert_eq!(rx.cum() as usize, written.len());
            let mut stream = Vec::new();
            for (off, data) in &rx.got {
                let off = *off as usize;
                if off + data.len() > stream.len() {
                    let skip = stream.len() - off;
                    stream.extend_from_slice(&data[skip..]);
                }
            }
            prop_assert_eq!(stream, written);
        }
    }
}
