//! Runtime shutdown: graceful close or reset of open connections, blocked
//! calls released, the link dropped.

mod common;

use common::*;
use daytona_core::time::{Duration, Instant};
use daytona_link::{Batch, Link, LinkCaps, SocketPairLink};
use daytona_runtime::{ShutdownPolicy, StackBuilder, TcpListener, TcpStream};
use std::io::{self, ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A link that records being dropped.
struct Watched {
    inner: SocketPairLink,
    dropped: Arc<AtomicBool>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

impl Link for Watched {
    fn caps(&self) -> LinkCaps {
        self.inner.caps()
    }
    fn recv_batch(&mut self, now: Instant, batch: &mut Batch) -> io::Result<usize> {
        self.inner.recv_batch(now, batch)
    }
    fn send_batch(&mut self, now: Instant, batch: &Batch) -> io::Result<usize> {
        self.inner.send_batch(now, batch)
    }
    fn poll_at(&self) -> Option<Instant> {
        self.inner.poll_at()
    }
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        self.inner.wait_fd()
    }
}

fn watched_pair(
    policy: ShutdownPolicy,
) -> (
    daytona_runtime::Runtime,
    daytona_runtime::Runtime,
    Arc<AtomicBool>,
) {
    let (la, lb) = SocketPairLink::pair(1500).unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let a = StackBuilder::new()
        .addr(A, 24)
        .shutdown_policy(policy)
        .link(Watched {
            inner: la,
            dropped: dropped.clone(),
        })
        .build()
        .unwrap();
    let b = StackBuilder::new().addr(B, 24).link(lb).build().unwrap();
    (a, b, dropped)
}

#[test]
fn graceful_shutdown_delivers_queued_data_then_fin_and_drops_the_link() {
    let (mut a, b, dropped) = watched_pair(ShutdownPolicy::Graceful {
        linger: Duration::from_secs(5),
    });
    let (mut c, mut s) = connected(&a, &b, 80);
    let data = pattern(512 * 1024, 7);
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        s.read_to_end(&mut got).map(|_| got)
    });
    c.write_all(&data).unwrap();
    assert!(!dropped.load(Ordering::SeqCst));
    a.shutdown();
    assert!(dropped.load(Ordering::SeqCst), "link not released");
    let got = reader.join().unwrap().expect("clean EOF");
    assert_eq!(hash(&got), hash(&data));
    // The stream outlives the runtime: calls fail, drop is harmless.
    assert_eq!(c.write(b"x").unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(
        TcpStream::connect(&a, addr(B, 80)).unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    drop(c);
    a.shutdown(); // idempotent
}

#[test]
fn reset_policy_resets_open_connections() {
    let (mut a, b, dropped) = watched_pair(ShutdownPolicy::Reset);
    let (_c, mut s) = connected(&a, &b, 80);
    a.shutdown();
    assert!(dropped.load(Ordering::SeqCst));
    let mut buf = [0u8; 4];
    assert_eq!(
        s.read(&mut buf).unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
}

#[test]
fn graceful_shutdown_resets_after_the_linger_time() {
    // B never reads and its window fills, so A's FIN cannot be sent and
    // acknowledged within the linger time: A gives up with a RST.
    let (la, lb) = SocketPairLink::pair(1500).unwrap();
    let mut a = StackBuilder::new()
        .addr(A, 24)
        .shutdown_policy(ShutdownPolicy::Graceful {
            linger: Duration::from_millis(100),
        })
        .link(la)
        .build()
        .unwrap();
    let b = StackBuilder::new()
        .addr(B, 24)
        .recv_buffer(16 * 1024)
        .link(lb)
        .build()
        .unwrap();
    let (mut c, mut s) = connected(&a, &b, 80);
    c.set_nonblocking(true).unwrap();
    let chunk = vec![3u8; 64 * 1024];
    while c.write(&chunk).is_ok() {}
    a.shutdown();
    let mut buf = vec![0u8; 64 * 1024];
    let err = loop {
        match s.read(&mut buf) {
            Ok(0) => panic!("clean EOF although the FIN could not be delivered"),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

#[test]
fn blocked_calls_return_when_the_runtime_shuts_down() {
    let (mut a, b, _) = watched_pair(ShutdownPolicy::Reset);
    let (c, _s) = connected(&a, &b, 80);
    let l = TcpListener::bind(&a, addr(A, 81)).unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4];
        (&c).read(&mut buf).map_err(|e| e.kind())
    });
    let acceptor = std::thread::spawn(move || l.accept().map(|_| ()).map_err(|e| e.kind()));
    // Both threads must be blocked before we shut down.
    while a.blocked() < 2 {
        std::thread::yield_now();
    }
    a.shutdown();
    assert_eq!(reader.join().unwrap(), Err(ErrorKind::NotConnected));
    assert_eq!(acceptor.join().unwrap(), Err(ErrorKind::NotConnected));
}

#[test]
fn dropping_the_runtime_closes_gracefully() {
    let (a, b, dropped) = watched_pair(ShutdownPolicy::default());
    let (mut c, mut s) = connected(&a, &b, 80);
    c.write_all(b"last words").unwrap();
    drop(a);
    assert!(dropped.load(Ordering::SeqCst));
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words");
}

#[test]
fn a_vanished_peer_link_is_survived() {
    let tcp = daytona_core::tcp::TcpConfig {
        syn_retries: 1,
        initial_rto: Duration::from_millis(20),
        min_rto: Duration::from_millis(20),
        ..Default::default()
    };
    let (a, b) = pair_with(|x| x.tcp_config(tcp), |x| x);
    let (mut c, _s) = connected(&a, &b, 80);
    // B goes away with its end of the link: A's link hangs up.
    drop(_s);
    drop(b);
    // A keeps working: reads see the FIN B's shutdown sent (or a reset),
    // new connections time out, and the failed sends are counted.
    let mut buf = [0u8; 4];
    let r = c.read(&mut buf);
    assert!(matches!(r, Ok(0)) || r.is_err(), "{r:?}");
    let err = TcpStream::connect(&a, addr(B, 80)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(a.link_errors().0 > 0);
}

#[test]
fn graceful_shutdown_delivers_what_closed_streams_still_hold() {
    // The peer has closed its side; we write 4 MB, close the stream and
    // drop the runtime at once. Like the kernel after close(2), the
    // runtime still owes the peer those bytes and our FIN.
    let (a, b) = pair();
    let l = TcpListener::bind(&b, addr(B, 80)).unwrap();
    let mut c = TcpStream::connect(&a, addr(B, 80)).unwrap();
    let (s, _) = l.accept().unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut eof = [0u8; 1];
    assert_eq!(c.read(&mut eof).unwrap(), 0, "the peer's FIN");
    let reader = std::thread::spawn(move || {
        let mut s = s;
        let mut got = Vec::new();
        s.read_to_end(&mut got).map(|_| hash(&got))
    });
    let data = pattern(4 << 20, 5);
    c.write_all(&data).unwrap();
    drop(c);
    drop(a);
    assert_eq!(reader.join().unwrap().unwrap(), hash(&data));
}
