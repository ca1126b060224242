//! Bulk transfers between two runtimes: both timer modes, busy-polling and
//! a lossy link; byte-exact (hash).

mod common;

use common::*;
use daytona_runtime::{TimerMode, JIFFY};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

const BIG: usize = 20 << 20;

fn both_directions(a: &daytona_runtime::Runtime, b: &daytona_runtime::Runtime, len: usize) {
    let (c, s) = connected(a, b, 5001);
    let up = Arc::new(pattern(len, 1));
    let down = Arc::new(pattern(len, 2));
    // Both directions at once: each side writes from one thread and reads
    // from another.
    let (c2, s2) = (c.try_clone().unwrap(), s.try_clone().unwrap());
    let upt = {
        let up = up.clone();
        std::thread::spawn(move || transfer(c, s, up))
    };
    let got_down = transfer(s2, c2, down.clone());
    let got_up = upt.join().unwrap();
    assert_eq!(got_up.len(), up.len());
    assert_eq!(hash(&got_up), hash(&up));
    assert_eq!(got_down.len(), down.len());
    assert_eq!(hash(&got_down), hash(&down));
}

#[test]
fn twenty_megabytes_each_way_byte_exact() {
    let (a, b) = pair();
    both_directions(&a, &b, BIG);
    assert_eq!(a.link_errors().0, 0, "{:?}", a.link_errors().1);
}

#[test]
fn jiffies_mode_transfer_and_fine_grained_rtt() {
    let (a, b) = pair_with(
        |x| x.timer_mode(TimerMode::Jiffies),
        |x| x.timer_mode(TimerMode::Jiffies),
    );
    both_directions(&a, &b, 4 << 20);
    // Timers run on the 10 ms tick, but RTT samples use the fine clock:
    // over a socket pair the smoothed RTT is far below one tick.
    let (mut c, mut s) = connected(&a, &b, 5002);
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    for _ in 0..20 {
        c.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"pong").unwrap();
        c.read_exact(&mut buf).unwrap();
    }
    let info = c.info().unwrap();
    assert!(info.rtt < JIFFY, "srtt {:?} is not fine-grained", info.rtt);
}

#[test]
fn jiffies_mode_connect_timeout_fires_on_ticks() {
    // SYN retransmissions are timer-driven: with a silent peer and two
    // retries, connect fails with TimedOut in jiffies mode too.
    let (la, _silent) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let tcp = daytona_core::tcp::TcpConfig {
        syn_retries: 2,
        initial_rto: Duration::from_millis(15),
        min_rto: Duration::from_millis(15),
        ..Default::default()
    };
    let a = daytona_runtime::StackBuilder::new()
        .addr(A, 24)
        .tcp_config(tcp)
        .timer_mode(TimerMode::Jiffies)
        .link(la)
        .build()
        .unwrap();
    let events = a.events(64);
    let err = daytona_runtime::TcpStream::connect(&a, addr(B, 80)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    let retransmits = events
        .drain()
        .into_iter()
        .filter(|e| matches!(e.kind, daytona_runtime::EventKind::Retransmit { .. }))
        .count();
    assert_eq!(retransmits, 2);
}

#[test]
fn busy_poll_mode_echo_and_transfer() {
    let spin = Some(Duration::from_micros(50));
    let (a, b) = pair_with(|x| x.busy_poll(spin), |x| x.busy_poll(spin));
    let (mut c, mut s) = connected(&a, &b, 5003);
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 1];
        for _ in 0..500 {
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        }
        s
    });
    c.set_nodelay(true).unwrap();
    for i in 0..500u32 {
        c.write_all(&[i as u8]).unwrap();
        let mut buf = [0u8; 1];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(buf[0], i as u8);
    }
    let s = echo.join().unwrap();
    let data = Arc::new(pattern(4 << 20, 3));
    let got = transfer(c, s, data.clone());
    assert_eq!(hash(&got), hash(&data));
}

#[test]
fn transfer_over_a_lossy_link() {
    let (a, b) = lossy_pair(0.01);
    let (c, s) = connected(&a, &b, 5004);
    let data = Arc::new(pattern(4 << 20, 4));
    let got = transfer(c.try_clone().unwrap(), s, data.clone());
    assert_eq!(got.len(), data.len());
    assert_eq!(hash(&got), hash(&data));
    assert!(
        c.info().unwrap().total_retrans > 0,
        "1% loss and no retransmission?"
    );
}

#[test]
fn transfer_over_a_delayed_link() {
    // 5 ms each way: frames are held by the Impaired middleware and
    // released when the runtime calls back at the link's `poll_at`.
    let (a, b) = impaired_pair(daytona_link::Impairment {
        delay: Duration::from_millis(5),
        ..Default::default()
    });
    let (c, s) = connected(&a, &b, 5005);
    let data = Arc::new(pattern(2 << 20, 6));
    let got = transfer(c.try_clone().unwrap(), s, data.clone());
    assert_eq!(hash(&got), hash(&data));
    let rtt = c.info().unwrap().min_rtt.expect("an RTT sample");
    // (Clock readings are truncated to microseconds.)
    assert!(
        rtt >= Duration::from_micros(9_990),
        "min RTT {rtt:?} below the 10 ms the link adds"
    );
}
