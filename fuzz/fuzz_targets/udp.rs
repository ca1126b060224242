#![no_main]
use daytona_wire::{ChecksumMode, UdpPacket, UdpRepr};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

const S: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const D: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = UdpPacket::new_checked(data) {
        if let Ok(repr) = UdpRepr::parse(&p, &S, &D, ChecksumMode::Ignore) {
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(&mut out, &S, &D, ChecksumMode::Compute).unwrap();
            let again = UdpRepr::parse(&UdpPacket::new_checked(&out[..]).unwrap(), &S, &D, ChecksumMode::Verify).unwrap();
            assert_eq!(again, repr);
        }
    }
});
