//! The std::net-like TCP API between two runtimes over a socket pair.

mod common;

use common::*;
use daytona_core::tcp::State;
use daytona_runtime::{TcpListener, TcpStream};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Barrier};
use std::time::Duration;

#[test]
fn handshake_and_echo() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    assert_eq!(listener.local_addr().unwrap(), addr(B, 7));
    let server = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), std::net::IpAddr::V4(A));
        assert_eq!(s.local_addr().unwrap(), addr(B, 7));
        let mut buf = [0u8; 64];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).unwrap();
        }
    });
    let mut c = TcpStream::connect(&a, addr(B, 7)).unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr(B, 7));
    assert_eq!(c.state().unwrap(), State::Established);
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    for i in 0..200u32 {
        let msg = i.to_be_bytes();
        c.write_all(&msg).unwrap();
        c.flush().unwrap();
        let mut got = [0u8; 4];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, msg);
    }
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    server.join().unwrap();
}

#[test]
fn bind_port_zero_and_incoming() {
    let (a, b) = pair();
    let l = TcpListener::bind(&b, addr(B, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    assert_ne!(port, 0);
    let c = TcpStream::connect(&a, addr(B, port)).unwrap();
    let s = l.incoming().next().unwrap().unwrap();
    assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
}

#[test]
fn refused_when_nobody_listens() {
    let (a, _b) = pair();
    let err = TcpStream::connect(&a, addr(B, 9)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn connect_timeout_to_a_silent_peer() {
    // The other end of the link exists but nothing answers.
    let (la, _silent) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let a = daytona_runtime::StackBuilder::new()
        .addr(A, 24)
        .link(la)
        .build()
        .unwrap();
    let err = TcpStream::connect_timeout(&a, &addr(B, 80), Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    let zero = TcpStream::connect_timeout(&a, &addr(B, 80), Duration::ZERO).unwrap_err();
    assert_eq!(zero.kind(), ErrorKind::InvalidInput);
}

#[test]
fn syn_retries_exhausted_is_timed_out() {
    let (la, _silent) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let tcp = daytona_core::tcp::TcpConfig {
        syn_retries: 2,
        initial_rto: Duration::from_millis(20),
        min_rto: Duration::from_millis(20),
        ..Default::default()
    };
    let a = daytona_runtime::StackBuilder::new()
        .addr(A, 24)
        .tcp_config(tcp)
        .link(la)
        .build()
        .unwrap();
    let err = TcpStream::connect(&a, addr(B, 80)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
}

#[test]
fn address_errors() {
    let (a, b) = pair();
    let _l = TcpListener::bind(&b, addr(B, 80)).unwrap();
    let again = TcpListener::bind(&b, "0.0.0.0:80").unwrap_err();
    assert_eq!(again.kind(), ErrorKind::AddrInUse);
    let not_ours = TcpListener::bind(&b, addr(A, 81)).unwrap_err();
    assert_eq!(not_ours.kind(), ErrorKind::AddrNotAvailable);
    let port0 = TcpStream::connect(&a, addr(B, 0)).unwrap_err();
    assert_eq!(port0.kind(), ErrorKind::InvalidInput);
    let v6 = TcpStream::connect(&a, "[::1]:80").unwrap_err();
    assert_eq!(v6.kind(), ErrorKind::InvalidInput);
    let off_net = TcpStream::connect(&a, "203.0.113.1:80").unwrap_err();
    assert_eq!(off_net.kind(), ErrorKind::NetworkUnreachable);
    // A listener's port is free again once it is dropped.
    drop(_l);
    let _l2 = TcpListener::bind(&b, addr(B, 80)).unwrap();
}

#[test]
fn nonblocking_calls_would_block() {
    let (a, b) = pair();
    let l = TcpListener::bind(&b, addr(B, 80)).unwrap();
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    let mut c = TcpStream::connect(&a, addr(B, 80)).unwrap();
    // The handshake is done on A; B's accept queue fills when its stack
    // processes the ACK — wait for it with a blocking accept.
    l.set_nonblocking(false).unwrap();
    let (mut s, _) = l.accept().unwrap();
    c.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(c.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    // Fill the send buffer until it would block.
    let chunk = vec![7u8; 64 * 1024];
    let mut queued = 0usize;
    loop {
        match c.write(&chunk) {
            Ok(n) => queued += n,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::WouldBlock);
                break;
            }
        }
        assert!(queued < 1 << 30, "send never blocked");
    }
    // Drain on the other side; everything arrives.
    c.set_nonblocking(false).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = 0usize;
    let mut big = vec![0u8; 64 * 1024];
    loop {
        let n = s.read(&mut big).unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    assert_eq!(got, queued);
}

#[test]
fn read_timeout_is_would_block() {
    let (a, b) = pair();
    let (mut c, _s) = connected(&a, &b, 80);
    assert_eq!(c.read_timeout().unwrap(), None);
    c.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(30)));
    let mut buf = [0u8; 8];
    let err = c.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    let zero = c.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(zero.kind(), ErrorKind::InvalidInput);
    c.set_write_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    assert_eq!(c.write_timeout().unwrap(), Some(Duration::from_millis(30)));
}

#[test]
fn write_timeout_is_would_block_when_the_peer_does_not_read() {
    let (a, b) = pair_with(|x| x.send_buffer(64 * 1024), |x| x.recv_buffer(64 * 1024));
    let (mut c, _s) = connected(&a, &b, 80);
    c.set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let chunk = vec![1u8; 16 * 1024];
    let err = loop {
        if let Err(e) = c.write(&chunk) {
            break e;
        }
    };
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
}

#[test]
fn half_close_client_first() {
    let (a, b) = pair();
    let (mut c, mut s) = connected(&a, &b, 80);
    c.write_all(b"request").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    // Writing after shutdown(Write) is a broken pipe.
    assert_eq!(c.write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    let mut req = Vec::new();
    s.read_to_end(&mut req).unwrap();
    assert_eq!(req, b"request");
    // The server may still answer on its open half.
    s.write_all(b"response after your FIN").unwrap();
    drop(s);
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).unwrap();
    assert_eq!(resp, b"response after your FIN");
}

#[test]
fn half_close_server_first() {
    let (a, b) = pair();
    let (mut c, mut s) = connected(&a, &b, 80);
    s.write_all(b"banner").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut banner = Vec::new();
    c.read_to_end(&mut banner).unwrap();
    assert_eq!(banner, b"banner");
    c.write_all(b"still talking").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"still talking");
}

#[test]
fn shutdown_read_returns_eof() {
    let (a, b) = pair();
    let (mut c, _s) = connected(&a, &b, 80);
    c.shutdown(Shutdown::Read).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(c.read(&mut buf).unwrap(), 0);
}

#[test]
fn reset_by_the_client_is_seen_by_the_server() {
    let (a, b) = pair();
    let (c, mut s) = connected(&a, &b, 80);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        let err = s.read(&mut buf).unwrap_err();
        (err.kind(), s)
    });
    c.abort().unwrap();
    let (kind, mut s) = reader.join().unwrap();
    assert_eq!(kind, ErrorKind::ConnectionReset);
    // The error was reported; now writes are a broken pipe, reads EOF.
    assert_eq!(s.write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    let mut buf = [0u8; 4];
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    // The aborted stream itself is gone.
    assert_eq!(c.info().unwrap_err().kind(), ErrorKind::NotConnected);
}

#[test]
fn reset_by_the_server_is_seen_by_the_client() {
    let (a, b) = pair();
    let (mut c, s) = connected(&a, &b, 80);
    s.abort().unwrap();
    let mut buf = [0u8; 16];
    let err = c.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

#[test]
fn write_after_peer_reset_fails() {
    let (a, b) = pair();
    let (mut c, s) = connected(&a, &b, 80);
    s.abort().unwrap();
    // Wait until the RST has arrived (a read reports it) …
    let mut buf = [0u8; 1];
    assert_eq!(
        c.read(&mut buf).unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    // … then writing is a broken pipe, as on Linux.
    assert_eq!(c.write(b"late").unwrap_err().kind(), ErrorKind::BrokenPipe);
}

#[test]
fn closing_with_unread_data_resets() {
    let (a, b) = pair();
    let (mut c, mut s) = connected(&a, &b, 80);
    c.write_all(b"unread").unwrap();
    // Wait until the data is at the server, then drop it unread.
    let mut one = [0u8; 1];
    s.read_exact(&mut one).unwrap();
    drop(s);
    let mut buf = [0u8; 8];
    assert_eq!(
        c.read(&mut buf).unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
}

#[test]
fn read_and_write_halves_from_two_threads() {
    let (a, b) = pair();
    let (c, s) = connected(&a, &b, 80);
    // Echo server with its own two halves.
    let s2 = s.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(64);
    let srv_reader = std::thread::spawn(move || {
        let mut s = s;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            tx.send(buf[..n].to_vec()).unwrap();
        }
    });
    let srv_writer = std::thread::spawn(move || {
        let mut s2 = s2;
        for chunk in rx {
            s2.write_all(&chunk).unwrap();
        }
        s2.shutdown(Shutdown::Write).unwrap();
    });
    let data = Arc::new(pattern(4 << 20, 5));
    let w = c.try_clone().unwrap();
    let got = {
        let data = data.clone();
        let writer = std::thread::spawn(move || {
            let mut w = w;
            for chunk in data.chunks(10_000) {
                w.write_all(chunk).unwrap();
            }
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        (&c).read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        got
    };
    srv_reader.join().unwrap();
    srv_writer.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert_eq!(hash(&got), hash(&data));
}

#[test]
fn many_concurrent_connections_from_several_threads() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 30;
    let (a, b) = pair();
    let a = Arc::new(a);
    let l = TcpListener::bind(&b, addr(B, 80)).unwrap();
    let server = std::thread::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..THREADS * PER_THREAD {
            let (mut s, _) = l.accept().unwrap();
            handlers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                loop {
                    let n = s.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    s.write_all(&buf[..n]).unwrap();
                }
            }));
        }
        for h in handlers {
            h.join().unwrap();
        }
    });
    // All connections are open at once before any is used.
    let all_open = Arc::new(Barrier::new(THREADS));
    let clients: Vec<_> = (0..THREADS)
        .map(|t| {
            let a = a.clone();
            let all_open = all_open.clone();
            std::thread::spawn(move || {
                let mut conns: Vec<TcpStream> = (0..PER_THREAD)
                    .map(|_| TcpStream::connect(&a, addr(B, 80)).unwrap())
                    .collect();
                all_open.wait();
                for round in 0..3u8 {
                    for (i, c) in conns.iter_mut().enumerate() {
                        let msg = [t as u8, i as u8, round];
                        c.write_all(&msg).unwrap();
                        let mut got = [0u8; 3];
                        c.read_exact(&mut got).unwrap();
                        assert_eq!(got, msg);
                    }
                }
                let ports: Vec<u16> = conns
                    .iter()
                    .map(|c| c.local_addr().unwrap().port())
                    .collect();
                drop(conns);
                ports
            })
        })
        .collect();
    let mut ports: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    server.join().unwrap();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), THREADS * PER_THREAD);
}

#[test]
fn info_reports_the_connection() {
    let (a, b) = pair();
    let (c, s) = connected(&a, &b, 80);
    let data = Arc::new(pattern(1 << 20, 9));
    let got = transfer(c.try_clone().unwrap(), s, data.clone());
    assert_eq!(hash(&got), hash(&data));
    // The server closed after reading: its FIN acknowledges everything.
    let mut rest = Vec::new();
    (&c).read_to_end(&mut rest).unwrap();
    let info = c.info().unwrap();
    assert_eq!(info.bytes_acked, data.len() as u64);
    assert!(info.data_segs_out > 0);
    assert!(info.rtt > Duration::ZERO);
    assert_eq!(info.congestion_control, "cubic");
    assert!(info.options.sack && info.options.timestamps);
}

#[test]
fn congestion_controller_from_the_builder() {
    let (a, b) = pair_with(|x| x.congestion_control("newreno"), |x| x);
    let (c, _s) = connected(&a, &b, 80);
    assert_eq!(c.info().unwrap().congestion_control, "newreno");
}

#[test]
fn timers_fire_while_another_thread_drives_the_link() {
    // T1 blocks in a UDP receive with no deadline and drives the link; the
    // main thread's connect to a silent peer needs its SYN timer to fire.
    let (la, _silent) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let tcp = daytona_core::tcp::TcpConfig {
        syn_retries: 2,
        initial_rto: Duration::from_millis(20),
        min_rto: Duration::from_millis(20),
        ..Default::default()
    };
    let a = daytona_runtime::StackBuilder::new()
        .addr(A, 24)
        .tcp_config(tcp)
        .link(la)
        .build()
        .unwrap();
    let u = daytona_runtime::UdpSocket::bind(&a, addr(A, 4000)).unwrap();
    let u2 = u.try_clone().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        u2.recv_from(&mut buf).map(|(n, _)| n)
    });
    while a.blocked() < 1 {
        std::thread::yield_now();
    }
    let err = TcpStream::connect(&a, addr(B, 80)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    // Shutting the runtime down releases T1.
    drop(a);
    let r = t1.join().unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::NotConnected);
    drop(u);
}

#[test]
fn a_blocked_reader_wakes_when_another_thread_acts() {
    let (a, b) = pair();
    let (c, _s) = connected(&a, &b, 80);
    // shutdown(Read) from a second thread wakes the blocked reader (EOF).
    let c2 = c.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4];
        (&c2).read(&mut buf).map_err(|e| e.kind())
    });
    while a.blocked() < 1 {
        std::thread::yield_now();
    }
    c.shutdown(Shutdown::Read).unwrap();
    assert_eq!(reader.join().unwrap(), Ok(0));
    // abort() from a second thread wakes a blocked reader with an error.
    let (d, _s2) = connected(&a, &b, 81);
    let d2 = d.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4];
        (&d2).read(&mut buf).map_err(|e| e.kind())
    });
    while a.blocked() < 1 {
        std::thread::yield_now();
    }
    d.abort().unwrap();
    assert_eq!(reader.join().unwrap(), Err(ErrorKind::NotConnected));
}

#[test]
fn connecting_to_our_own_address_loops_back() {
    // As on Linux, where traffic to a local address never leaves the host:
    // a client and a server on the same stack talk without the link.
    let (a, _b) = pair();
    let l = TcpListener::bind(&a, addr(A, 90)).unwrap();
    let mut c = TcpStream::connect_timeout(&a, &addr(A, 90), Duration::from_secs(5))
        .expect("connect to our own address");
    let (mut s, peer) = l.accept().unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    let data = pattern(300_000, 9);
    let d2 = data.clone();
    let writer = std::thread::spawn(move || {
        c.write_all(&d2).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        c
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(hash(&got), hash(&data));
    drop(writer.join().unwrap());
    // Nobody listening on our own port: refused at once (our own RST).
    let err = TcpStream::connect_timeout(&a, &addr(A, 91), Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn port_zero_comes_from_the_stacks_ephemeral_range() {
    // As Linux picks from ip_local_port_range. Raw mode gives the stack
    // the ports above the kernel's range and only those reach it, so a
    // listener on any other port would never hear a SYN.
    let (a, _b) = pair_with(|x| x.ephemeral_ports(61_000..=61_003), |x| x);
    let mut listeners = Vec::new();
    for _ in 0..4 {
        let l = TcpListener::bind(&a, addr(A, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!((61_000..=61_003).contains(&port), "{port}");
        listeners.push(l);
    }
    let err = TcpListener::bind(&a, addr(A, 0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    // UDP too, from the same range (its own ports).
    let mut udps = Vec::new();
    for _ in 0..4 {
        let u = daytona_runtime::UdpSocket::bind(&a, addr(A, 0)).unwrap();
        let port = u.local_addr().unwrap().port();
        assert!((61_000..=61_003).contains(&port), "{port}");
        udps.push(u);
    }
    let err = daytona_runtime::UdpSocket::bind(&a, addr(A, 0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    // A port freed is found again.
    drop(listeners.pop());
    TcpListener::bind(&a, addr(A, 0)).unwrap();
}

/// A link whose receive panics once, on the thread named "boom".
struct PanicsOnce(
    daytona_link::SocketPairLink,
    Arc<std::sync::atomic::AtomicBool>,
);

impl daytona_link::Link for PanicsOnce {
    fn caps(&self) -> daytona_link::LinkCaps {
        self.0.caps()
    }
    fn recv_batch(
        &mut self,
        now: daytona_core::time::Instant,
        batch: &mut daytona_link::Batch,
    ) -> std::io::Result<usize> {
        if std::thread::current().name() == Some("boom")
            && !self.1.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("a link bug (on purpose)");
        }
        self.0.recv_batch(now, batch)
    }
    fn send_batch(
        &mut self,
        now: daytona_core::time::Instant,
        batch: &daytona_link::Batch,
    ) -> std::io::Result<usize> {
        self.0.send_batch(now, batch)
    }
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        self.0.wait_fd()
    }
}

#[test]
fn a_panic_while_driving_the_link_does_not_stall_the_stack() {
    let (la, lb) = daytona_link::SocketPairLink::pair(1500).unwrap();
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // No timer of A's may come due during the test (the handshake's RTO
    // is far away): only the link can wake its stack.
    let tcp = daytona_core::tcp::TcpConfig {
        initial_rto: Duration::from_secs(60),
        ..Default::default()
    };
    let a = daytona_runtime::StackBuilder::new()
        .addr(A, 24)
        .tcp_config(tcp)
        .link(PanicsOnce(la, fired.clone()))
        .build()
        .unwrap();
    let b = daytona_runtime::StackBuilder::new()
        .addr(B, 24)
        .link(lb)
        .build()
        .unwrap();
    let (c, s) = connected(&a, &b, 80);
    // "boom" blocks in a read, drives the link, and panics in it.
    let c2 = c.try_clone().unwrap();
    let boom = std::thread::Builder::new()
        .name("boom".into())
        .spawn(move || {
            let mut buf = [0u8; 4];
            let _ = (&c2).read(&mut buf);
        })
        .unwrap();
    while a.blocked() < 1 {
        std::thread::yield_now();
    }
    (&s).write_all(b"ping").unwrap();
    assert!(boom.join().is_err(), "the link panicked on purpose");
    assert!(fired.load(std::sync::atomic::Ordering::SeqCst));
    // The stack keeps serving: the data arrives, and the other way too.
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4];
    (&c).read_exact(&mut buf).expect("the stack still receives");
    assert_eq!(&buf, b"ping");
    (&c).write_all(b"pong").unwrap();
    (&s).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
}
