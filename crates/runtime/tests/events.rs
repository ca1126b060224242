//! Event subscriptions: per connection and stack-wide, bounded, with drops
//! counted; tags; TcpInfo.

mod common;

use common::*;
use daytona_core::tcp::State;
use daytona_runtime::EventKind;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn slow_subscriber_loses_the_oldest_events_and_counts_them() {
    let (a, b) = pair();
    let (c, s) = connected(&a, &b, 80);
    let slow = c.events(8);
    let full = c.events(1 << 20);
    let data = Arc::new(pattern(2 << 20, 1));
    let got = transfer(c.try_clone().unwrap(), s, data.clone());
    assert_eq!(hash(&got), hash(&data));
    let mut rest = Vec::new();
    (&c).read_to_end(&mut rest).unwrap();
    // The subscriber never read during the transfer: it holds the newest 8.
    assert_eq!(slow.len(), 8);
    assert!(slow.dropped() > 0);
    assert_eq!(slow.published(), slow.dropped() + 8);
    assert_eq!(full.dropped(), 0);
    assert_eq!(full.published(), slow.published());
    let all = full.drain();
    let newest: Vec<_> = all[all.len() - 8..].to_vec();
    assert_eq!(slow.drain(), newest);
    // Everything is about this connection and in time order.
    assert!(all.iter().all(|e| e.conn == c.conn_id()));
    assert!(all.windows(2).all(|w| w[0].time <= w[1].time));
    assert!(all
        .iter()
        .any(|e| matches!(e.kind, EventKind::RttSample { .. })));
    assert!(all.iter().any(|e| matches!(
        e.kind,
        EventKind::StateChange {
            to: State::FinWait1,
            ..
        }
    )));
}

#[test]
fn tags_and_stack_wide_subscription() {
    let (a, b) = pair();
    let everything = a.events(1 << 16);
    let (mut c1, _s1) = connected(&a, &b, 80);
    let (c2, _s2) = connected(&a, &b, 81);
    let mine = c1.events(64);
    let mut s1 = _s1;
    let mut buf = [0u8; 6];
    use std::io::Write;
    for tag in [42u64, 43] {
        c1.set_tag(tag).unwrap();
        c1.write_all(b"tagged").unwrap();
        s1.read_exact(&mut buf).unwrap();
        // The ACK of the data produces events (RTT sample …) with the tag;
        // wait for one, bounded.
        let e = std::iter::from_fn(|| mine.next_timeout(Duration::from_secs(5)))
            .find(|e| e.tag == tag)
            .expect("an event with the tag");
        assert_eq!(e.conn, c1.conn_id());
    }
    let seen = everything.drain();
    for id in [c1.conn_id(), c2.conn_id()] {
        assert!(seen
            .iter()
            .any(|e| e.conn == id && matches!(e.kind, EventKind::ConnectionCreated { .. })));
    }
    assert!(seen.iter().any(|e| e.conn == c1.conn_id() && e.tag == 42));
}

#[test]
fn waiting_for_an_event_with_an_unbounded_timeout_does_not_panic() {
    let (mut a, _b) = pair();
    let sub = a.events(4);
    // Once the runtime is gone the subscription is closed: a wait of any
    // length (`Duration::MAX` is what "forever" looks like in `std`)
    // returns `None` instead of overflowing the deadline.
    a.shutdown();
    assert!(sub.next_timeout(Duration::MAX).is_none());
}
