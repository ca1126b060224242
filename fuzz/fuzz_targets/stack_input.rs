#![no_main]
//! Arbitrary frames into a stack with a listener and an open connection:
//! nothing may panic, and whatever the stack sends must parse.
use daytona_core::cc::CcRegistry;
use daytona_core::stack::{Stack, StackConfig};
use daytona_core::time::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, SocketAddrV4};

fuzz_target!(|data: &[u8]| {
    let mut stack = Stack::new(StackConfig::ip(Ipv4Addr::new(198, 18, 0, 1), 24), CcRegistry::with_builtin()).unwrap();
    stack.tcp_listen(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80), 8).unwrap();
    let mut now = Instant::from_secs(1);
    stack.tcp_connect(now, SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80), None).unwrap();
    let mut buf = vec![0u8; 2000];
    // The input is a sequence of frames, each prefixed by a length byte.
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        stack.handle_frame(now, &tail[..n]);
        while stack.poll_transmit(now, &mut buf).is_some() {}
        rest = &tail[n..];
        now += Duration::from_millis(10);
        stack.handle_timeout(now);
    }
});
