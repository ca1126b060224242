//! Two runtimes in one process over a `SocketPairLink`.
#![allow(dead_code)]

use daytona_link::{FaultModel, Impaired, Impairment, SocketPairLink};
use daytona_runtime::{Runtime, StackBuilder};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

pub const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

pub fn addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

/// Two runtimes, A and B, each customised by its closure.
pub fn pair_with(
    fa: impl FnOnce(StackBuilder) -> StackBuilder,
    fb: impl FnOnce(StackBuilder) -> StackBuilder,
) -> (Runtime, Runtime) {
    let (la, lb) = SocketPairLink::pair(1500).expect("socketpair");
    let a = fa(StackBuilder::new().addr(A, 24).link(la))
        .build()
        .expect("runtime A");
    let b = fb(StackBuilder::new().addr(B, 24).link(lb))
        .build()
        .expect("runtime B");
    (a, b)
}

pub fn pair() -> (Runtime, Runtime) {
    pair_with(|b| b, |b| b)
}

/// Two runtimes whose links both lose `loss` of their frames (seeded).
pub fn lossy_pair(loss: f64) -> (Runtime, Runtime) {
    impaired_pair(Impairment {
        loss,
        ..Impairment::default()
    })
}

/// Two runtimes whose links both apply `imp` on transmit (seeded).
pub fn impaired_pair(imp: Impairment) -> (Runtime, Runtime) {
    let (la, lb) = SocketPairLink::pair(1500).expect("socketpair");
    let a = StackBuilder::new()
        .addr(A, 24)
        .link(Impaired::new(la, FaultModel::new(imp.clone(), 1)))
        .build()
        .expect("runtime A");
    let b = StackBuilder::new()
        .addr(B, 24)
        .link(Impaired::new(lb, FaultModel::new(imp, 2)))
        .build()
        .expect("runtime B");
    (a, b)
}

/// Deterministic test data.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// FNV-1a, enough to compare two streams.
pub fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A connected pair: (client on `a`, server on `b`) through a listener on
/// `port` of B.
pub fn connected(
    a: &Runtime,
    b: &Runtime,
    port: u16,
) -> (daytona_runtime::TcpStream, daytona_runtime::TcpStream) {
    let l = daytona_runtime::TcpListener::bind(b, addr(B, port)).expect("bind");
    let c = daytona_runtime::TcpStream::connect(a, addr(B, port)).expect("connect");
    let (s, _) = l.accept().expect("accept");
    (c, s)
}

/// Sends `data` on `w` from another thread while reading everything from
/// `r` until EOF; returns what was read.
pub fn transfer(
    mut w: daytona_runtime::TcpStream,
    mut r: daytona_runtime::TcpStream,
    data: std::sync::Arc<Vec<u8>>,
) -> Vec<u8> {
    use std::io::{Read, Write};
    let writer = std::thread::spawn(move || {
        for chunk in data.chunks(64 * 1024) {
            w.write_all(chunk).expect("write");
        }
        w.shutdown(std::net::Shutdown::Write).expect("shutdown");
        w
    });
    let mut got = Vec::new();
    r.read_to_end(&mut got).expect("read");
    drop(writer.join().expect("writer"));
    got
}
