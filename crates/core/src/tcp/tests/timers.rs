//! RTT estimation, retransmission timeouts, retries, keepalive, PMTU and
//! ICMP errors.

use super::harness::*;
use crate::cc::CaState;
use crate::observe::{CwndCause, EventKind, ProbeKind, RetransmitCause};
use crate::tcp::{IcmpError, Keepalive, State, TcpConfig};
use crate::time::Duration;
use crate::Error;
use daytona_wire::tcp::{Control, TcpOptions, Timestamps};
use std::net::Ipv4Addr;

#[test]
fn syn_is_retransmitted_with_exponential_backoff_then_times_out() {
    let mut h = Harness::connect(TcpConfig {
        syn_retries: 3,
        ..config()
    });
    h.recv_one();
    let mut gaps = Vec::new();
    for _ in 0..3 {
        gaps.push(h.fire_next_timer());
        let syn = h.recv_one();
        assert_eq!((syn.control, syn.seq), (Control::Syn, ISS));
    }
    // RFC 6298 §2.1 and §5.5: 1 s, then doubling.
    assert_eq!(
        gaps,
        vec![
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(4)
        ]
    );
    h.fire_next_timer();
    assert_eq!(h.conn.state(), State::Closed);
    assert_eq!(h.conn.error(), Some(Error::TimedOut));
}

#[test]
fn first_rtt_sample_sets_srtt_rttvar_and_rto() {
    let h = Harness::established(config());
    let info = h.conn.info(h.now);
    // RFC 6298 §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR = 30 ms,
    // raised to the 200 ms minimum.
    assert_eq!(info.rtt, Duration::from_millis(10));
    assert_eq!(info.rttvar, Duration::from_millis(5));
    assert_eq!(info.rto, Duration::from_millis(200));
    assert_eq!(info.min_rtt, Some(Duration::from_millis(10)));
}

#[test]
fn rtt_is_sampled_once_per_flight_and_feeds_the_estimator() {
    let mut h = Harness::established(config());
    h.write(&pattern(1460));
    h.recv_one();
    h.advance(Duration::from_millis(30));
    h.send(PeerSeg::ack(IRS + 1, ISS + 1461));
    let samples: Vec<Duration> = h
        .events
        .iter()
        .filter_map(|e| match e {
            EventKind::RttSample { rtt, .. } => Some(*rtt),
            _ => None,
        })
        .collect();
    assert_eq!(samples, vec![Duration::from_millis(30)]);
    // RFC 6298 §2.3: RTTVAR = 3/4·5 + 1/4·|10−30| = 8.75 ms; SRTT = 7/8·10 + 1/8·30 = 12.5 ms.
    let info = h.conn.info(h.now);
    assert_eq!(info.rtt, Duration::from_micros(12_500));
    assert_eq!(info.rttvar, Duration::from_micros(8_750));
}

#[test]
fn rto_retransmits_the_first_segment_and_collapses_cwnd() {
    let mut h = Harness::established(config());
    h.write(&pattern(5 * 1460));
    assert_eq!(h.recv().len(), 5);
    let waited = h.fire_next_timer();
    assert_eq!(waited, Duration::from_millis(200));
    let seg = h.recv_one();
    assert_eq!((seg.seq, seg.len()), (ISS + 1, 1460));
    assert!(h.events.contains(&EventKind::Retransmit {
        seq: ISS + 1,
        len: 1460,
        cause: RetransmitCause::Rto
    }));
    let info = h.conn.info(h.now);
    // RFC 5681 §3.1: ssthresh = FlightSize / 2, cwnd = 1 segment.
    assert_eq!(info.snd_cwnd, 1460);
    assert_eq!(info.snd_ssthresh, 5 * 1460 / 2);
    assert_eq!(info.ca_state, CaState::Loss);
    assert!(h.events.iter().any(|e| matches!(
        e,
        EventKind::CwndChange {
            cause: CwndCause::Rto,
            ..
        }
    )));
    // RFC 6298 §5.5: the next timeout is twice as long.
    assert_eq!(h.fire_next_timer(), Duration::from_millis(400));
    h.recv_one();
    // The ACK of the retransmission lets slow start resend the rest.
    h.send(PeerSeg::ack(IRS + 1, ISS + 1461));
    let segs = h.recv();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0].seq, ISS + 1461);
}

#[test]
fn retries_exhausted_times_out_with_rst() {
    let mut h = Harness::established(TcpConfig {
        max_retries: 2,
        ..config()
    });
    h.write(b"lost forever");
    h.recv_one();
    h.fire_next_timer();
    h.recv_one();
    h.fire_next_timer();
    h.recv_one();
    h.fire_next_timer();
    assert_eq!(h.conn.error(), Some(Error::TimedOut));
    let rst = h.recv_one();
    assert_eq!(rst.control, Control::Rst);
    assert!(h.conn.is_closed());
}

#[test]
fn timestamps_are_echoed_and_paws_drops_old_segments() {
    let mut h = Harness::established_with(
        TcpConfig {
            timestamps: true,
            ..config()
        },
        TcpOptions {
            mss: Some(MSS),
            timestamps: Some(Timestamps {
                tsval: 1000,
                tsecr: 1,
            }),
            ..TcpOptions::default()
        },
    );
    h.send(PeerSeg::data(IRS + 1, ISS + 1, b"new").with_ts(1005, 0));
    let ack = h.recv_one();
    assert_eq!(ack.options.timestamps.unwrap().tsecr, 1005);
    // RFC 7323 §5.3: an older timestamp is dropped and acknowledged.
    h.send(PeerSeg::data(IRS + 4, ISS + 1, b"old").with_ts(900, 0));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(IRS + 4));
    assert_eq!(h.read_all(), b"new");
}

#[test]
fn pmtu_decrease_shrinks_the_mss_and_resends_without_congestion_response() {
    let mut h = Harness::established(config());
    h.write(&pattern(3 * 1460));
    assert_eq!(h.recv().len(), 3);
    let cwnd = h.conn.info(h.now).snd_cwnd;
    h.conn.handle_icmp_error(
        h.now,
        &IcmpError {
            source: Ipv4Addr::new(198, 18, 0, 254),
            icmp_type: 3,
            code: 4,
            next_hop_mtu: Some(1000),
            seq: ISS + 1,
        },
    );
    h.drain_events();
    assert!(h.events.contains(&EventKind::MssChange { mss: 960 }));
    // Linux `tcp_simple_retransmit`: every segment now too big is resent
    // in pieces that fit, the whole flight, nothing else.
    let segs = h.recv();
    assert!(segs.iter().all(|s| s.len() <= 960), "{segs:?}");
    let resent: usize = segs.iter().map(Seg::len).sum();
    assert_eq!(resent, 3 * 1460);
    assert_eq!(segs[0].seq, ISS + 1);
    assert!(h.events.iter().any(|e| matches!(
        e,
        EventKind::LossDetected {
            by: RetransmitCause::PmtuDecrease,
            ..
        }
    )));
    assert_eq!(h.conn.info(h.now).snd_cwnd, cwnd);
}

fn frag_needed(h: &mut Harness, mtu: Option<u16>) {
    h.conn.handle_icmp_error(
        h.now,
        &IcmpError {
            source: Ipv4Addr::new(198, 18, 0, 254),
            icmp_type: 3,
            code: 4,
            next_hop_mtu: mtu,
            seq: ISS + 1,
        },
    );
    h.drain_events();
}

#[test]
fn frag_needed_without_an_mtu_steps_down_the_plateau_table() {
    let mut h = Harness::established(config());
    h.write(&pattern(1460));
    h.recv_one();
    // RFC 1191 §7: 1500 → 1492 → 1006 → 508.
    for mss in [1452, 966, 468] {
        frag_needed(&mut h, None);
        assert!(h.events.contains(&EventKind::MssChange { mss }), "{mss}");
        h.recv();
    }
}

#[test]
fn a_lowered_path_mtu_expires_after_ten_minutes() {
    let mut h = Harness::established(config());
    h.write(&pattern(1460));
    h.recv_one();
    frag_needed(&mut h, Some(1000));
    let resent: Vec<usize> = h.recv().iter().map(Seg::len).collect();
    assert_eq!(resent, [960, 500]);
    h.send(PeerSeg::ack(IRS + 1, ISS + 1461));
    // Only the PMTU timer is left; RFC 1191 §6.3 (Linux: 10 minutes).
    assert_eq!(h.fire_next_timer(), Duration::from_secs(600));
    assert!(h.events.contains(&EventKind::MssChange { mss: 1460 }));
    h.write(&pattern(3000));
    let sizes: Vec<usize> = h.recv().iter().map(Seg::len).collect();
    assert_eq!(sizes[0], 1460);
}

#[test]
fn a_lowered_path_mtu_can_be_kept() {
    let mut h = Harness::established(TcpConfig {
        pmtu_expires: None,
        ..config()
    });
    h.write(&pattern(1460));
    h.recv_one();
    frag_needed(&mut h, Some(1000));
    h.recv();
    h.send(PeerSeg::ack(IRS + 1, ISS + 1461));
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn port_unreachable_during_connect_refuses() {
    let mut h = Harness::connect(config());
    h.recv_one();
    h.conn.handle_icmp_error(
        h.now,
        &IcmpError {
            source: REMOTE.ip().to_owned(),
            icmp_type: 3,
            code: 3,
            next_hop_mtu: None,
            seq: ISS,
        },
    );
    h.drain_events();
    assert_eq!(h.conn.error(), Some(Error::ConnectionRefused));
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, EventKind::IcmpError { code: 3, .. })));
}

#[test]
fn soft_icmp_error_is_reported_when_the_connection_times_out() {
    let mut h = Harness::established(TcpConfig {
        max_retries: 1,
        ..config()
    });
    h.write(b"x");
    h.recv_one();
    h.conn.handle_icmp_error(
        h.now,
        &IcmpError {
            source: Ipv4Addr::new(198, 18, 0, 254),
            icmp_type: 3,
            code: 1,
            next_hop_mtu: None,
            seq: ISS + 1,
        },
    );
    // RFC 1122 §4.2.3.9: soft error, the connection goes on.
    assert_eq!(h.conn.state(), State::Established);
    h.fire_next_timer();
    h.recv();
    h.fire_next_timer();
    assert_eq!(h.conn.error(), Some(Error::HostUnreachable));
}

#[test]
fn icmp_error_quoting_a_sequence_not_in_flight_is_ignored() {
    let mut h = Harness::established(config());
    h.conn.handle_icmp_error(
        h.now,
        &IcmpError {
            source: Ipv4Addr::new(198, 18, 0, 254),
            icmp_type: 3,
            code: 4,
            next_hop_mtu: Some(600),
            seq: ISS + 5000,
        },
    );
    h.drain_events();
    // RFC 5927 §4.1.
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, EventKind::IcmpError { .. })));
    assert_eq!(h.conn.snd_mss(), 1460);
}

#[test]
fn keepalive_probes_an_idle_peer_and_gives_up() {
    let mut h = Harness::established(config());
    h.conn.set_keepalive(
        h.now,
        Some(Keepalive {
            idle: Duration::from_secs(10),
            interval: Duration::from_secs(2),
            count: 3,
        }),
    );
    assert_eq!(h.fire_next_timer(), Duration::from_secs(10));
    let probe = h.recv_one();
    // RFC 1122 §4.2.3.6: SEG.SEQ = SND.NXT − 1, no data.
    assert_eq!((probe.seq, probe.len()), (ISS, 0));
    assert!(h.events.contains(&EventKind::Probe {
        kind: ProbeKind::Keepalive
    }));
    // An answer resets the count.
    h.send(PeerSeg::ack(IRS + 1, ISS + 1));
    assert_eq!(h.fire_next_timer(), Duration::from_secs(10));
    h.recv_one();
    for _ in 0..2 {
        assert_eq!(h.fire_next_timer(), Duration::from_secs(2));
        h.recv_one();
    }
    h.fire_next_timer();
    assert_eq!(h.conn.error(), Some(Error::TimedOut));
}

#[test]
fn orphaned_fin_wait_2_times_out() {
    let mut h = Harness::established(config());
    h.conn.close(h.now);
    h.recv_one();
    h.send(PeerSeg::ack(IRS + 1, ISS + 2));
    assert_eq!(h.conn.state(), State::FinWait2);
    h.advance(Duration::from_secs(60));
    assert_eq!(h.conn.state(), State::Closed);
}

#[test]
fn idle_connection_restarts_from_the_initial_window() {
    let mut h = Harness::established(config());
    // Grow cwnd beyond IW.
    h.write(&pattern(10 * 1460));
    h.recv();
    h.advance(Duration::from_millis(10));
    h.send(PeerSeg::ack(IRS + 1, ISS + 1 + 10 * 1460));
    assert!(h.conn.info(h.now).snd_cwnd > 10 * 1460);
    // RFC 5681 §4.1: idle longer than the RTO.
    h.advance(Duration::from_secs(5));
    h.write(&pattern(20 * 1460));
    assert_eq!(h.recv().len(), 10);
    assert!(h.events.iter().any(|e| matches!(
        e,
        EventKind::CwndChange {
            cause: CwndCause::IdleRestart,
            ..
        }
    )));
}

#[test]
fn syn_ack_is_retransmitted_then_the_half_open_connection_is_dropped() {
    let now = crate::time::Instant::from_secs(1);
    let syn = PeerSeg {
        seq: IRS,
        ack: None,
        control: Control::Syn,
        window: 1000,
        options: TcpOptions::default(),
        payload: vec![],
        ece: false,
        cwr: false,
    };
    let conn = crate::tcp::Connection::accept(
        params(TcpConfig {
            synack_retries: 2,
            ..config()
        }),
        &syn.repr(),
        now,
    );
    let mut h = Harness::wrap(conn, now);
    h.recv_one();
    for _ in 0..2 {
        h.fire_next_timer();
        let again = h.recv_one();
        assert_eq!((again.control, again.seq), (Control::Syn, ISS));
    }
    h.fire_next_timer();
    // A passive half-open connection just goes away (no error to report).
    assert!(h.conn.is_closed());
    assert_eq!(h.conn.error(), None);
}

#[test]
fn tcp_info_reports_the_connection() {
    let mut h = Harness::established(config());
    h.write(&pattern(3000));
    h.recv();
    let info = h.conn.info(h.now);
    assert_eq!(info.state, State::Established);
    assert_eq!(info.unacked, 2);
    assert_eq!(info.bytes_sent, 2920);
    assert_eq!(info.notsent_bytes, 80);
    assert_eq!(info.snd_wnd, 65_535);
    assert_eq!(info.congestion_control, "newreno");
    assert_eq!(info.snd_cwnd, 10 * 1460);
    assert_eq!(info.snd_ssthresh, u32::MAX);
    h.advance(Duration::from_millis(20));
    h.send(PeerSeg::ack(IRS + 1, ISS + 2921));
    h.send(PeerSeg::data(IRS + 1, ISS + 2921, b"response"));
    let info = h.conn.info(h.now);
    assert_eq!(info.bytes_acked, 2920);
    assert_eq!(info.bytes_received, 8);
    assert_eq!(info.segs_in, 3);
    assert_eq!(info.last_ack_recv, Duration::ZERO);
    assert!(info.busy_time >= Duration::from_millis(20));
}

#[test]
fn ts_recent_is_replaced_after_24_days_idle() {
    let mut h = Harness::established_with(
        TcpConfig {
            timestamps: true,
            ..config()
        },
        TcpOptions {
            mss: Some(MSS),
            timestamps: Some(Timestamps {
                tsval: 1000,
                tsecr: 1,
            }),
            ..TcpOptions::default()
        },
    );
    // RFC 7323 §5.5: after 24 days idle, the peer's clock may have wrapped
    // past TS.Recent; the segment is accepted and its timestamp adopted.
    h.advance(Duration::from_secs(25 * 24 * 3600));
    h.send(PeerSeg::data(IRS + 1, ISS + 1, b"late").with_ts(500, 0));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(IRS + 5));
    assert_eq!(ack.options.timestamps.unwrap().tsecr, 500);
    // And PAWS works again from the new TS.Recent.
    h.send(PeerSeg::data(IRS + 5, ISS + 1, b"next").with_ts(501, 0));
    assert_eq!(h.recv_one().options.timestamps.unwrap().tsecr, 501);
    h.send(PeerSeg::data(IRS + 9, ISS + 1, b"old!").with_ts(400, 0));
    assert_eq!(h.recv_one().ack, Some(IRS + 9));
    assert_eq!(h.read_all(), b"latenext");
}
