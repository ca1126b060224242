#![no_main]
use daytona_wire::{ChecksumMode, TcpPacket, TcpRepr};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

const S: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const D: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = TcpPacket::new_checked(data) {
        if let Ok(repr) = TcpRepr::parse(&p, &S, &D, ChecksumMode::Ignore) {
            // Options that do not fit a header are not re-emittable.
            if repr.header_len() <= 60 {
                let mut out = vec![0u8; repr.buffer_len()];
                repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), &S, &D, ChecksumMode::Compute);
                let again = TcpRepr::parse(&TcpPacket::new_checked(&out[..]).unwrap(), &S, &D, ChecksumMode::Verify).unwrap();
                assert_eq!(again, repr);
            }
        }
    }
});
