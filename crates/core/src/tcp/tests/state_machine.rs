//! RFC 9293 state machine: opens, closes, resets, RFC 5961 hardening.

use super::harness::*;
use crate::observe::{ChallengeReason, EventKind, RstReason};
use crate::tcp::{Connection, Shutdown, State, TcpConfig};
use crate::time::{Duration, Instant};
use crate::Error;
use daytona_wire::tcp::{Control, TcpOptions, Timestamps};

#[test]
fn active_open_sends_syn_with_all_options() {
    let mut h = Harness::connect(TcpConfig::default());
    assert_eq!(h.conn.state(), State::SynSent);
    let syn = h.recv_one();
    assert_eq!(syn.control, Control::Syn);
    assert_eq!(syn.seq, ISS);
    assert_eq!(syn.ack, None);
    assert_eq!(syn.options.mss, Some(MSS));
    // The 6 MiB autotuning limit needs shift 7 (RFC 7323 §2.3), as Linux.
    assert_eq!(syn.options.window_scale, Some(7));
    assert!(syn.options.sack_permitted);
    assert_eq!(syn.options.timestamps.map(|t| t.tsecr), Some(0));
    // RFC 7323 §2.2: the SYN's window is not scaled.
    assert_eq!(syn.window, 65_535);
}

#[test]
fn handshake_negotiates_options_and_establishes() {
    let mut h = Harness::connect(TcpConfig::default());
    let syn = h.recv_one();
    let tsval = syn.options.timestamps.unwrap().tsval;
    h.advance(Duration::from_millis(10));
    h.send(PeerSeg {
        seq: IRS,
        ack: Some(ISS + 1),
        control: Control::Syn,
        window: 65_535,
        options: TcpOptions {
            mss: Some(1400),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some(Timestamps {
                tsval: 777,
                tsecr: tsval,
            }),
            ..TcpOptions::default()
        },
        payload: vec![],
        ece: false,
        cwr: false,
    });
    assert_eq!(h.conn.state(), State::Established);
    let ack = h.recv_one();
    assert_eq!(ack.control, Control::None);
    assert_eq!(ack.seq, ISS + 1);
    assert_eq!(ack.ack, Some(IRS + 1));
    assert_eq!(ack.options.timestamps.unwrap().tsecr, 777);
    let info = h.conn.info(h.now);
    assert!(info.options.timestamps && info.options.sack && info.options.window_scale);
    assert_eq!(info.snd_wscale, 7);
    assert_eq!(info.rcv_wscale, 7);
    // MSS 1400 minus 12 bytes of timestamps in every segment.
    assert_eq!(info.snd_mss, 1388);
    assert_eq!(info.rtt, Duration::from_millis(10));
    assert!(h.events.iter().any(|e| matches!(
        e,
        EventKind::StateChange {
            from: State::SynSent,
            to: State::Established
        }
    )));
}

#[test]
fn options_the_peer_did_not_offer_are_not_used() {
    let mut h = Harness::connect(TcpConfig::default());
    h.recv_one();
    h.send(PeerSeg {
        seq: IRS,
        ack: Some(ISS + 1),
        control: Control::Syn,
        window: 1000,
        options: TcpOptions::default(),
        payload: vec![],
        ece: false,
        cwr: false,
    });
    let info = h.conn.info(h.now);
    assert!(!info.options.timestamps && !info.options.sack && !info.options.window_scale);
    // RFC 9293 §3.7.1: no MSS option means 536.
    assert_eq!(info.snd_mss, 536);
    // RFC 7323 §2.2: without the peer's option, our window is unscaled too.
    assert_eq!(info.rcv_wscale, 0);
    let ack = h.recv_one();
    assert!(ack.options.timestamps.is_none());
}

#[test]
fn passive_open_answers_syn_with_syn_ack_and_establishes_on_ack() {
    let now = Instant::from_secs(1);
    let syn = PeerSeg {
        seq: IRS,
        ack: None,
        control: Control::Syn,
        window: 29_200,
        options: TcpOptions {
            mss: Some(1460),
            sack_permitted: true,
            window_scale: Some(7),
            ..TcpOptions::default()
        },
        payload: vec![],
        ece: false,
        cwr: false,
    };
    let conn = Connection::accept(params(TcpConfig::default()), &syn.repr(), now);
    let mut h = Harness::wrap(conn, now);
    assert_eq!(h.conn.state(), State::SynReceived);
    let syn_ack = h.recv_one();
    assert_eq!(syn_ack.control, Control::Syn);
    assert_eq!(syn_ack.seq, ISS);
    assert_eq!(syn_ack.ack, Some(IRS + 1));
    assert!(syn_ack.options.sack_permitted);
    assert_eq!(syn_ack.options.window_scale, Some(7));
    // The peer offered no timestamps, so the SYN-ACK carries none.
    assert!(syn_ack.options.timestamps.is_none());
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_window(100));
    assert_eq!(h.conn.state(), State::Established);
    // The window of a non-SYN segment is scaled by the peer's shift.
    assert_eq!(h.conn.info(h.now).snd_wnd, 100 << 7);
}

#[test]
fn lost_syn_ack_is_resent_when_the_syn_is_retransmitted() {
    let now = Instant::from_secs(1);
    let syn = PeerSeg {
        seq: IRS,
        ack: None,
        control: Control::Syn,
        window: 29_200,
        options: TcpOptions::default(),
        payload: vec![],
        ece: false,
        cwr: false,
    };
    let conn = Connection::accept(params(config()), &syn.repr(), now);
    let mut h = Harness::wrap(conn, now);
    h.recv_one();
    h.send(syn.clone());
    let again = h.recv_one();
    assert_eq!(again.control, Control::Syn);
    assert_eq!(again.ack, Some(IRS + 1));
}

#[test]
fn simultaneous_open_reaches_established() {
    let mut h = Harness::connect(config());
    h.recv_one();
    // The peer's SYN crosses ours.
    h.send(PeerSeg {
        seq: IRS,
        ack: None,
        control: Control::Syn,
        window: 65_535,
        options: TcpOptions {
            mss: Some(MSS),
            ..TcpOptions::default()
        },
        payload: vec![],
        ece: false,
        cwr: false,
    });
    assert_eq!(h.conn.state(), State::SynReceived);
    let syn_ack = h.recv_one();
    assert_eq!(
        (syn_ack.control, syn_ack.seq, syn_ack.ack),
        (Control::Syn, ISS, Some(IRS + 1))
    );
    // The peer's SYN-ACK is an old duplicate of its SYN: we acknowledge it.
    h.send(PeerSeg {
        seq: IRS,
        ack: Some(ISS + 1),
        control: Control::Syn,
        window: 65_535,
        options: TcpOptions::default(),
        payload: vec![],
        ece: false,
        cwr: false,
    });
    let ack = h.recv_one();
    assert_eq!((ack.seq, ack.ack), (ISS + 1, Some(IRS + 1)));
    // The peer's ACK of our SYN completes the open.
    h.send(PeerSeg::ack(IRS + 1, ISS + 1));
    assert_eq!(h.conn.state(), State::Established);
}

#[test]
fn rst_answering_syn_refuses_the_connection() {
    let mut h = Harness::connect(config());
    h.recv_one();
    h.send(PeerSeg::ack(daytona_wire::SeqNum(0), ISS + 1).with_control(Control::Rst));
    assert_eq!(h.conn.state(), State::Closed);
    assert_eq!(h.conn.error(), Some(Error::ConnectionRefused));
    assert_eq!(h.conn.recv(&mut [0; 8]), Err(Error::ConnectionRefused));
    assert!(h.conn.is_closed());
}

#[test]
fn syn_ack_with_bad_ack_gets_rst_and_connection_stays() {
    let mut h = Harness::connect(config());
    h.recv_one();
    h.send(PeerSeg {
        seq: IRS,
        ack: Some(ISS + 100),
        control: Control::Syn,
        window: 65_535,
        options: TcpOptions::default(),
        payload: vec![],
        ece: false,
        cwr: false,
    });
    let rst = h.recv_one();
    // RFC 9293 §3.10.7.3: <SEQ=SEG.ACK><CTL=RST>.
    assert_eq!(
        (rst.control, rst.seq, rst.ack),
        (Control::Rst, ISS + 100, None)
    );
    assert_eq!(h.conn.state(), State::SynSent);
    // An RST whose ACK is unacceptable is ignored.
    h.send(PeerSeg::ack(IRS, ISS + 100).with_control(Control::Rst));
    assert_eq!(h.conn.state(), State::SynSent);
}

#[test]
fn active_close_goes_through_fin_wait_and_time_wait() {
    let mut h = Harness::established(config());
    h.conn.close(h.now);
    assert_eq!(h.conn.state(), State::FinWait1);
    let fin = h.recv_one();
    assert_eq!((fin.control, fin.seq), (Control::Fin, ISS + 1));
    h.send(PeerSeg::ack(IRS + 1, ISS + 2));
    assert_eq!(h.conn.state(), State::FinWait2);
    h.send(PeerSeg::ack(IRS + 1, ISS + 2).with_control(Control::Fin));
    assert_eq!(h.conn.state(), State::TimeWait);
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(IRS + 2));
    // RFC 9293 §3.4.2: 2·MSL, 60 s by default.
    h.advance(Duration::from_secs(59));
    assert_eq!(h.conn.state(), State::TimeWait);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.conn.state(), State::Closed);
    assert!(h.conn.is_closed());
    assert_eq!(h.conn.error(), None);
}

#[test]
fn retransmitted_fin_in_time_wait_is_acked_and_restarts_the_timer() {
    let mut h = Harness::established(TcpConfig {
        msl: Duration::from_secs(1),
        ..config()
    });
    h.conn.close(h.now);
    h.recv_one();
    h.send(PeerSeg::ack(IRS + 1, ISS + 2).with_control(Control::Fin));
    h.recv_one();
    h.advance(Duration::from_millis(1500));
    h.send(PeerSeg::ack(IRS + 1, ISS + 2).with_control(Control::Fin));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(IRS + 2));
    h.advance(Duration::from_millis(1500));
    assert_eq!(h.conn.state(), State::TimeWait);
    h.advance(Duration::from_millis(600));
    assert_eq!(h.conn.state(), State::Closed);
}

#[test]
fn passive_close_goes_through_close_wait_and_last_ack() {
    let mut h = Harness::established(config());
    h.send(PeerSeg::data(IRS + 1, ISS + 1, b"bye").with_control(Control::Fin));
    assert_eq!(h.conn.state(), State::CloseWait);
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(IRS + 5));
    assert_eq!(h.read_all(), b"bye");
    // EOF after the data.
    assert_eq!(h.conn.recv(&mut [0; 8]), Ok(0));
    // Half-closed: we may still send.
    h.write(b"reply");
    let data = h.recv_one();
    assert_eq!(data.payload, b"reply");
    h.conn.close(h.now);
    assert_eq!(h.conn.state(), State::LastAck);
    let fin = h.recv_one();
    assert_eq!((fin.control, fin.seq), (Control::Fin, ISS + 6));
    h.send(PeerSeg::ack(IRS + 5, ISS + 7));
    assert_eq!(h.conn.state(), State::Closed);
    assert!(h.conn.is_closed());
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut h = Harness::established(config());
    h.conn.close(h.now);
    h.recv_one();
    // The peer's FIN crosses ours: it does not acknowledge our FIN.
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_control(Control::Fin));
    assert_eq!(h.conn.state(), State::Closing);
    h.recv_one();
    h.send(PeerSeg::ack(IRS + 2, ISS + 2));
    assert_eq!(h.conn.state(), State::TimeWait);
}

#[test]
fn half_close_keeps_receiving_after_our_fin() {
    let mut h = Harness::established(config());
    h.conn.shutdown(h.now, Shutdown::Write).unwrap();
    h.recv_one();
    h.send(PeerSeg::ack(IRS + 1, ISS + 2));
    assert_eq!(h.conn.state(), State::FinWait2);
    h.send(PeerSeg::data(IRS + 1, ISS + 2, b"still talking"));
    assert_eq!(h.read_all(), b"still talking");
    assert_eq!(h.conn.send(b"x"), Err(Error::BrokenPipe));
}

#[test]
fn out_of_order_fin_waits_for_the_missing_data() {
    let mut h = Harness::established(config());
    h.send(PeerSeg::data(IRS + 6, ISS + 1, b"world").with_control(Control::Fin));
    assert_eq!(h.conn.state(), State::Established);
    h.send(PeerSeg::data(IRS + 1, ISS + 1, b"hello"));
    assert_eq!(h.conn.state(), State::CloseWait);
    assert_eq!(h.read_all(), b"helloworld");
    assert_eq!(h.conn.recv(&mut [0; 4]), Ok(0));
}

#[test]
fn exact_rst_resets_the_connection() {
    let mut h = Harness::established(config());
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_control(Control::Rst));
    assert_eq!(h.conn.state(), State::Closed);
    assert_eq!(h.conn.error(), Some(Error::ConnectionReset));
    assert_eq!(h.conn.send(b"x"), Err(Error::ConnectionReset));
    assert!(h.events.contains(&EventKind::RstReceived));
    h.recv_nothing();
}

#[test]
fn in_window_rst_not_at_rcv_nxt_draws_a_challenge_ack() {
    let mut h = Harness::established(config());
    h.send(PeerSeg::ack(IRS + 100, ISS + 1).with_control(Control::Rst));
    // RFC 5961 §3.2.
    assert_eq!(h.conn.state(), State::Established);
    let ack = h.recv_one();
    assert_eq!((ack.seq, ack.ack), (ISS + 1, Some(IRS + 1)));
    assert!(h.events.contains(&EventKind::ChallengeAck {
        reason: ChallengeReason::Rst,
        suppressed: false
    }));
}

#[test]
fn syn_in_established_draws_a_challenge_ack() {
    let mut h = Harness::established(config());
    h.send(PeerSeg {
        seq: IRS + 1000,
        ack: None,
        control: Control::Syn,
        window: 100,
        options: TcpOptions::default(),
        payload: vec![],
        ece: false,
        cwr: false,
    });
    // RFC 5961 §4.2.
    assert_eq!(h.conn.state(), State::Established);
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(IRS + 1));
}

#[test]
fn challenge_acks_are_rate_limited() {
    let mut h = Harness::established(TcpConfig {
        challenge_ack_limit: 2,
        ..config()
    });
    for _ in 0..5 {
        h.send(PeerSeg::ack(IRS + 100, ISS + 1).with_control(Control::Rst));
    }
    assert_eq!(h.recv().len(), 1, "ACKs coalesce within one poll");
    let sent = h
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                EventKind::ChallengeAck {
                    suppressed: false,
                    ..
                }
            )
        })
        .count();
    let suppressed = h
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                EventKind::ChallengeAck {
                    suppressed: true,
                    ..
                }
            )
        })
        .count();
    assert_eq!((sent, suppressed), (2, 3));
    // A second later the budget is back.
    h.advance(Duration::from_secs(1));
    h.send(PeerSeg::ack(IRS + 100, ISS + 1).with_control(Control::Rst));
    assert_eq!(h.recv().len(), 1);
}

#[test]
fn ack_of_unsent_data_is_dropped_and_answered() {
    let mut h = Harness::established(config());
    h.send(PeerSeg::data(IRS + 1, ISS + 500, b"data"));
    // RFC 9293 §3.10.7.4 / RFC 5961 §5.2: drop, send an ACK.
    assert_eq!(h.conn.recv_available(), 0);
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(IRS + 1));
}

#[test]
fn segment_outside_the_window_is_answered_with_an_ack() {
    let mut h = Harness::established(config());
    h.send(PeerSeg::data(IRS + 1_000_000, ISS + 1, b"far away"));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(IRS + 1));
    assert_eq!(h.conn.recv_available(), 0);
    // An old duplicate is acknowledged too.
    h.send(PeerSeg::data(IRS + 1, ISS + 1, b"ab"));
    h.recv_one();
    h.send(PeerSeg::data(IRS + 1, ISS + 1, b"ab"));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(IRS + 3));
    assert_eq!(h.read_all(), b"ab");
}

#[test]
fn closing_with_unread_data_resets_the_connection() {
    let mut h = Harness::established(config());
    h.send(PeerSeg::data(IRS + 1, ISS + 1, b"unread"));
    h.recv();
    h.conn.close(h.now);
    // RFC 2525 §2.17.
    let rst = h.recv_one();
    assert_eq!(rst.control, Control::Rst);
    assert_eq!(rst.seq, ISS + 1);
    assert!(h.events.contains(&EventKind::RstSent {
        reason: RstReason::DataLost
    }));
    assert!(h.conn.is_closed());
}

#[test]
fn data_after_close_is_answered_with_rst() {
    let mut h = Harness::established(config());
    h.conn.close(h.now);
    h.recv_one();
    h.send(PeerSeg::ack(IRS + 1, ISS + 2));
    h.send(PeerSeg::data(IRS + 1, ISS + 2, b"too late"));
    let rst = h.recv_one();
    assert_eq!(rst.control, Control::Rst);
    assert_eq!(h.conn.state(), State::Closed);
}

#[test]
fn abort_sends_rst() {
    let mut h = Harness::established(config());
    h.write(b"pending");
    h.recv();
    h.conn.abort(h.now);
    let rst = h.recv_one();
    assert_eq!(
        (rst.control, rst.seq, rst.ack),
        (Control::Rst, ISS + 8, Some(IRS + 1))
    );
    assert!(h.conn.is_closed());
}

#[test]
fn api_misuse_returns_precise_errors() {
    let mut h = Harness::established(config());
    h.conn.shutdown(h.now, Shutdown::Write).unwrap();
    assert_eq!(h.conn.send(b"x"), Err(Error::BrokenPipe));
    let mut h = Harness::established(config());
    h.conn.abort(h.now);
    h.recv();
    assert_eq!(h.conn.send(b"x"), Err(Error::NotConnected));
    assert_eq!(h.conn.recv(&mut [0; 4]), Err(Error::NotConnected));
    assert_eq!(
        h.conn.shutdown(h.now, Shutdown::Read),
        Err(Error::NotConnected)
    );
    let mut h = Harness::established(config());
    assert_eq!(h.conn.recv(&mut [0; 4]), Err(Error::WouldBlock));
}

#[test]
fn full_send_buffer_would_block() {
    let mut h = Harness::established(TcpConfig {
        send_buffer: 1000,
        ..config()
    });
    assert_eq!(h.conn.send(&[7; 1500]), Ok(1000));
    assert_eq!(h.conn.send(&[7; 10]), Err(Error::WouldBlock));
    assert!(!h.conn.is_writable());
}

#[test]
fn shutdown_during_the_handshake_sends_queued_data_then_fin() {
    let mut h = Harness::connect(config());
    h.recv_one();
    h.write(b"early data");
    h.conn.shutdown(h.now, Shutdown::Write).unwrap();
    assert_eq!(h.conn.state(), State::SynSent);
    h.send(PeerSeg {
        seq: IRS,
        ack: Some(ISS + 1),
        control: Control::Syn,
        window: 65_535,
        options: TcpOptions::default(),
        payload: vec![],
        ece: false,
        cwr: false,
    });
    assert_eq!(h.conn.state(), State::FinWait1);
    let segs = h.recv();
    let data: Vec<u8> = segs.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(data, b"early data");
    let last = segs.last().unwrap();
    assert_eq!(last.control, Control::Fin);
    assert_eq!(last.seq + last.len() as u32, ISS + 11);
}

#[test]
fn close_in_syn_sent_with_nothing_queued_deletes_the_connection() {
    let mut h = Harness::connect(config());
    h.recv_one();
    h.conn.close(h.now);
    assert!(h.conn.is_closed());
    h.recv_nothing();
}

#[test]
fn cookie_connection_accepts_out_of_order_data_within_the_offered_window() {
    use crate::tcp::CookieOptions;
    let now = Instant::from_secs(1);
    let ack = PeerSeg::ack(IRS + 1, ISS + 1);
    let cookie = CookieOptions {
        irs: IRS,
        peer_mss: 1460,
        window_scale: None,
        sack_permitted: false,
    };
    let conn = Connection::accept_cookie(params(config()), &cookie, &ack.repr(), now);
    let mut h = Harness::wrap(conn, now);
    assert_eq!(h.conn.state(), State::Established);
    // The second segment of the first flight overtakes the first.
    h.send(PeerSeg::data(IRS + 1001, ISS + 1, &[2; 1000]));
    assert!(!h.events.contains(&EventKind::SegmentDropped {
        reason: crate::observe::DropReason::Unacceptable
    }));
    h.send(PeerSeg::data(IRS + 1, ISS + 1, &[1; 1000]));
    assert_eq!(h.conn.recv_available(), 2000);
}

#[test]
fn handshake_completed_after_a_duplicate_syn_sends_data_after_the_syn() {
    // The peer's SYN is retransmitted (our SYN-ACK is resent), and the ACK
    // of the first SYN-ACK arrives before we transmit again: the first data
    // byte must still be ISS+1, not a repeat of the SYN's sequence number.
    let now = Instant::from_secs(1);
    let syn = PeerSeg {
        seq: IRS,
        ack: None,
        control: Control::Syn,
        window: 29_200,
        options: TcpOptions::default(),
        payload: vec![],
        ece: false,
        cwr: false,
    };
    let conn = Connection::accept(params(config()), &syn.repr(), now);
    let mut h = Harness::wrap(conn, now);
    h.recv_one();
    h.send(syn.clone());
    h.send(PeerSeg::ack(IRS + 1, ISS + 1));
    assert_eq!(h.conn.state(), State::Established);
    h.write(b"hello");
    let segs = h.recv();
    let data: Vec<&Seg> = segs.iter().filter(|s| !s.payload.is_empty()).collect();
    assert_eq!(data.len(), 1, "{segs:#?}");
    assert_eq!(data[0].seq, ISS + 1);
    assert_eq!(data[0].control, Control::None);
    assert_eq!(data[0].payload, b"hello");
}

#[test]
fn send_sequence_stays_right_when_snd_una_wraps_onto_iss() {
    // After 2^32 bytes SND.UNA equals ISS again; that must not be read as
    // "our SYN is unacknowledged". Alias the two directly.
    let mut h = Harness::established(config());
    h.write(&pattern(1000));
    let first = h.recv_one();
    h.send(PeerSeg::ack(IRS + 1, first.seq + 1000));
    h.conn.iss = h.conn.snd_una;
    let una = h.conn.snd_una;
    h.write(&pattern(3000));
    let mut got = Vec::new();
    let mut next = una;
    while got.len() < 3000 {
        let segs = h.recv();
        assert!(!segs.is_empty(), "stalled after {} bytes", got.len());
        for s in &segs {
            assert_eq!(s.seq, next);
            next += s.len() as u32;
            got.extend_from_slice(&s.payload);
        }
        h.send(PeerSeg::ack(IRS + 1, next));
    }
    assert_eq!(got, pattern(3000));
    assert_eq!(h.conn.info(h.now).bytes_acked, 4000);
    assert_eq!(h.conn.info(h.now).unacked, 0);
}
