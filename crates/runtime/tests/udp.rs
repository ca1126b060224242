//! UdpSocket between two runtimes.

mod common;

use common::*;
use daytona_runtime::UdpSocket;
use std::io::ErrorKind;
use std::time::Duration;

#[test]
fn udp_echo() {
    let (a, b) = pair();
    let server = UdpSocket::bind(&b, addr(B, 53)).unwrap();
    assert_eq!(server.local_addr().unwrap(), addr(B, 53));
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        for _ in 0..50 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    let client = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    let local = client.local_addr().unwrap();
    assert_eq!(local.ip(), std::net::IpAddr::V4(A));
    // Datagrams over a loss-free socket pair arrive; keep one in flight.
    for i in 0..50u32 {
        let msg = format!("datagram {i}");
        client.send_to(msg.as_bytes(), addr(B, 53)).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, addr(B, 53));
        assert_eq!(&buf[..n], msg.as_bytes());
    }
    echo.join().unwrap();
}

#[test]
fn udp_errors_and_timeouts() {
    let (a, _b) = pair();
    let s = UdpSocket::bind(&a, addr(A, 5000)).unwrap();
    assert_eq!(
        UdpSocket::bind(&a, addr(A, 5000)).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        s.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    s.set_nonblocking(true).unwrap();
    assert_eq!(
        s.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let huge = vec![0u8; 2000];
    assert_eq!(
        s.send_to(&huge, addr(B, 9)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        s.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn datagrams_to_our_own_address_loop_back() {
    let (a, _b) = pair();
    let x = UdpSocket::bind(&a, addr(A, 6000)).unwrap();
    let y = UdpSocket::bind(&a, addr(A, 0)).unwrap();
    y.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    x.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    y.send_to(b"hello me", addr(A, 6000)).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = x.recv_from(&mut buf).expect("looped back");
    assert_eq!(&buf[..n], b"hello me");
    assert_eq!(from, y.local_addr().unwrap());
    x.send_to(b"and back", from).unwrap();
    let (n, _) = y.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"and back");
}
