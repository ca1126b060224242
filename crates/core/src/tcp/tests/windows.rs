//! Data transfer, windows, Nagle, silly-window avoidance, ACK policy,
//! reassembly and SACK generation.

use super::harness::*;
use crate::observe::{EventKind, ProbeKind};
use crate::tcp::TcpConfig;
use crate::time::Duration;
use daytona_wire::tcp::TcpOptions;

#[test]
fn data_is_segmented_at_the_mss_and_acknowledged() {
    let mut h = Harness::established(config());
    let data = pattern(4 * 1460);
    assert_eq!(h.write(&data), data.len());
    let segs = h.recv();
    assert_eq!(segs.len(), 4);
    for (i, s) in segs.iter().enumerate() {
        assert_eq!(s.seq, ISS + 1 + (i as u32) * 1460);
        assert_eq!(s.len(), 1460);
        assert_eq!(s.payload, &data[i * 1460..(i + 1) * 1460]);
    }
    assert!(segs[3].psh, "PSH on the segment that empties the buffer");
    h.send(PeerSeg::ack(IRS + 1, ISS + 1 + 4 * 1460));
    assert_eq!(h.conn.info(h.now).bytes_acked, 4 * 1460);
    assert_eq!(h.conn.send_queued(), 0);
}

#[test]
fn initial_window_is_ten_segments() {
    let mut h = Harness::established(config());
    h.write(&pattern(20 * 1460));
    // RFC 6928.
    assert_eq!(h.recv().len(), 10);
}

#[test]
fn peer_mss_limits_segment_size() {
    let mut h = Harness::established_with(
        config(),
        TcpOptions {
            mss: Some(500),
            ..TcpOptions::default()
        },
    );
    h.write(&pattern(1200));
    let sizes: Vec<usize> = h.recv().iter().map(Seg::len).collect();
    // The 200-byte tail is held by Nagle while data is outstanding.
    assert_eq!(sizes, vec![500, 500]);
}

#[test]
fn nagle_holds_a_small_segment_until_the_ack() {
    let mut h = Harness::established(config());
    h.write(b"first");
    assert_eq!(h.recv_one().payload, b"first");
    h.write(b"second");
    h.write(b"third");
    // RFC 896: a small segment waits while data is unacknowledged.
    h.recv_nothing();
    h.send(PeerSeg::ack(IRS + 1, ISS + 6));
    assert_eq!(h.recv_one().payload, b"secondthird");
}

#[test]
fn nodelay_sends_small_segments_at_once() {
    let mut h = Harness::established(config());
    h.conn.set_nodelay(true);
    h.write(b"first");
    h.recv_one();
    h.write(b"second");
    assert_eq!(h.recv_one().payload, b"second");
}

#[test]
fn every_second_full_segment_is_acked_and_a_lone_one_after_the_delay() {
    let mut h = Harness::established(TcpConfig {
        delayed_ack: Some(Duration::from_millis(40)),
        ..config()
    });
    let full = pattern(1460);
    h.send(PeerSeg::data(IRS + 1, ISS + 1, &full));
    h.recv_nothing();
    h.send(PeerSeg::data(IRS + 1461, ISS + 1, &full));
    // RFC 9293 §3.8.6.3: at least every second full-sized segment.
    assert_eq!(h.recv_one().ack, Some(IRS + 2921));
    h.send(PeerSeg::data(IRS + 2921, ISS + 1, &full));
    h.recv_nothing();
    h.advance(Duration::from_millis(39));
    h.recv_nothing();
    h.advance(Duration::from_millis(1));
    assert_eq!(h.recv_one().ack, Some(IRS + 4381));
}

#[test]
fn quickack_mode_acks_every_segment_at_connection_start() {
    let mut h = Harness::established(TcpConfig {
        delayed_ack: Some(Duration::from_millis(40)),
        quickack_segments: 2,
        ..config()
    });
    h.send(PeerSeg::data(IRS + 1, ISS + 1, b"a"));
    assert_eq!(h.recv_one().ack, Some(IRS + 2));
    h.send(PeerSeg::data(IRS + 2, ISS + 1, b"b"));
    assert_eq!(h.recv_one().ack, Some(IRS + 3));
    h.send(PeerSeg::data(IRS + 3, ISS + 1, b"c"));
    h.recv_nothing();
}

#[test]
fn reassembly_handles_any_number_of_holes() {
    let mut h = Harness::established(config());
    let data = pattern(40 * 100);
    // Every other 100-byte chunk first, then the rest in reverse.
    let mut order: Vec<usize> = (0..40).step_by(2).collect();
    order.extend((1..40).step_by(2).rev());
    for i in order {
        let chunk = &data[i * 100..(i + 1) * 100];
        h.send(PeerSeg::data(IRS + 1 + (i * 100) as u32, ISS + 1, chunk));
    }
    assert_eq!(h.read_all(), data);
    let acks = h.recv();
    assert_eq!(acks.last().unwrap().ack, Some(IRS + 1 + 4000));
}

#[test]
fn out_of_order_data_is_acked_at_once_with_sack_blocks() {
    let mut h = Harness::established_with(
        TcpConfig {
            sack: true,
            delayed_ack: Some(Duration::from_millis(40)),
            ..config()
        },
        TcpOptions {
            mss: Some(MSS),
            sack_permitted: true,
            ..TcpOptions::default()
        },
    );
    h.send(PeerSeg::data(IRS + 101, ISS + 1, &[1; 100]));
    let ack = h.recv_one();
    // RFC 5681 §4.2: immediate duplicate ACK; RFC 2018 §4: the block.
    assert_eq!(ack.ack, Some(IRS + 1));
    assert_eq!(ack.sack(), vec![((IRS + 101).0, (IRS + 201).0)]);
    h.send(PeerSeg::data(IRS + 301, ISS + 1, &[3; 100]));
    let ack = h.recv_one();
    // The most recent block first.
    assert_eq!(
        ack.sack(),
        vec![
            ((IRS + 301).0, (IRS + 401).0),
            ((IRS + 101).0, (IRS + 201).0)
        ]
    );
    // Filling the first hole is acknowledged at once too.
    h.send(PeerSeg::data(IRS + 1, ISS + 1, &[0; 100]));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(IRS + 201));
    assert_eq!(ack.sack(), vec![((IRS + 301).0, (IRS + 401).0)]);
}

#[test]
fn window_scaling_applies_both_ways() {
    let mut h = Harness::established_with(
        TcpConfig {
            window_scaling: true,
            recv_buffer: 1 << 20,
            ..config()
        },
        TcpOptions {
            mss: Some(MSS),
            window_scale: Some(3),
            ..TcpOptions::default()
        },
    );
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_window(1000));
    assert_eq!(h.conn.info(h.now).snd_wnd, 8000);
    h.write(&pattern(1460));
    let seg = h.recv_one();
    // Our 1 MiB window, scaled by our shift of 5.
    assert_eq!(u32::from(seg.window) << 5, 1 << 20);
}

#[test]
fn send_window_limits_data_in_flight() {
    let mut h = Harness::established(config());
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_window(3000));
    h.write(&pattern(10_000));
    let sent: usize = h.recv().iter().map(Seg::len).sum();
    assert_eq!(sent, 2920, "two full segments; the 80-byte rest is silly");
}

#[test]
fn zero_window_is_probed_until_it_opens() {
    let mut h = Harness::established(config());
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_window(0));
    assert!(h.events.contains(&EventKind::ZeroWindowReceived));
    h.write(b"blocked");
    h.recv_nothing();
    // RFC 9293 §3.8.6.1: the persist timer sends probes with backoff.
    let first = h.fire_next_timer();
    let probe = h.recv_one();
    assert_eq!(probe.seq, ISS);
    assert!(probe.payload.is_empty());
    assert!(h.events.contains(&EventKind::Probe {
        kind: ProbeKind::ZeroWindow
    }));
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_window(0));
    let second = h.fire_next_timer();
    h.recv_one();
    assert!(second > first, "backoff: {second:?} after {first:?}");
    // The window opens: the data goes out.
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_window(1000));
    assert_eq!(h.recv_one().payload, b"blocked");
}

#[test]
fn unanswered_zero_window_probes_end_the_connection() {
    let mut h = Harness::established(TcpConfig {
        max_persist_probes: 3,
        ..config()
    });
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_window(0));
    h.write(b"blocked");
    h.recv_nothing();
    for _ in 0..3 {
        h.fire_next_timer();
        h.recv_one();
    }
    h.fire_next_timer();
    assert_eq!(h.conn.error(), Some(crate::Error::TimedOut));
}

#[test]
fn receiver_does_not_advertise_silly_window_increases() {
    let mut h = Harness::established(TcpConfig {
        recv_buffer: 4000,
        ..config()
    });
    h.send(PeerSeg::data(IRS + 1, ISS + 1, &pattern(4000)));
    let ack = h.recv_one();
    assert_eq!(ack.window, 0);
    assert!(h.events.contains(&EventKind::ZeroWindowSent));
    // Reading 100 bytes opens less than min(buffer/2, MSS): no update.
    let mut small = [0u8; 100];
    h.conn.recv(&mut small).unwrap();
    h.recv_nothing();
    // Reading enough opens the window and sends an update.
    let mut big = [0u8; 2000];
    h.conn.recv(&mut big).unwrap();
    let update = h.recv_one();
    assert_eq!(update.window, 2100);
}

#[test]
fn sender_avoids_silly_window_then_overrides_after_the_timer() {
    let mut h = Harness::established(config());
    // A peer that offered 65535 now offers 100 bytes.
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_window(100));
    h.write(&pattern(1000));
    // RFC 9293 §3.8.6.2.1: 100 < MSS and < max window / 2: wait.
    h.recv_nothing();
    h.fire_next_timer();
    let seg = h.recv_one();
    assert_eq!(seg.len(), 100);
}

#[test]
fn zero_window_still_processes_acks() {
    let mut h = Harness::established(TcpConfig {
        recv_buffer: 1000,
        ..config()
    });
    h.write(b"hello");
    h.recv_one();
    h.send(PeerSeg::data(IRS + 1, ISS + 1, &pattern(1000)));
    h.recv_one();
    // Our window is zero; a segment at RCV.NXT still acknowledges our data.
    h.send(PeerSeg::data(IRS + 1001, ISS + 6, b"x"));
    assert_eq!(h.conn.send_queued(), 0);
    assert_eq!(h.conn.recv_available(), 1000);
}

#[test]
fn answered_zero_window_probes_keep_backing_off() {
    // Linux keeps `icsk_backoff` while the window stays closed: a peer that
    // answers every probe with a zero window is probed ever more slowly,
    // not every 200 ms forever.
    let mut h = Harness::established(config());
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_window(0));
    h.write(b"blocked");
    h.recv_nothing();
    let mut intervals = Vec::new();
    for _ in 0..6 {
        intervals.push(h.fire_next_timer());
        let probe = h.recv_one();
        assert!(probe.payload.is_empty());
        h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_window(0));
    }
    for w in intervals.windows(2) {
        assert_eq!(w[1], w[0] * 2, "doubling: {intervals:?}");
    }
    // Answered probes never time the connection out.
    assert_eq!(h.conn.error(), None);
    // Once the window opens, the backoff is forgotten.
    h.send(PeerSeg::ack(IRS + 1, ISS + 1).with_window(1000));
    assert_eq!(h.recv_one().payload, b"blocked");
    assert_eq!(h.conn.persist_backoff, 0);
}
