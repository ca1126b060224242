//! The std::net-like TCP API between two runtimes over a socket pair.

mod common;

use common::*;
use std::io::{Read, Write};

#[test]
fn handshake_and_echo() {
    let (a, b) = pair();
    let listener = daytona_runtime::TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    assert_eq!(listener.local_addr().unwrap(), addr(B, 7));
    let server = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), std::net::IpAddr::V4(A));
        let mut buf = [0u8; 64];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).unwrap();
        }
    });
    let mut c = daytona_runtime::TcpStream::connect(&a, addr(B, 7)).unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr(B, 7));
    c.set_nodelay(true).unwrap();
    for i in 0..100u32 {
        let msg = i.to_be_bytes();
        c.write_all(&msg).unwrap();
        let mut got = [0u8; 4];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, msg);
    }
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    server.join().unwrap();
}
