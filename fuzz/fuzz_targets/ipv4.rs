#![no_main]
use daytona_wire::{Ipv4Packet, Ipv4Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        let _ = p.payload();
        if let Ok(repr) = Ipv4Repr::parse(&p, false) {
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(&mut out).unwrap();
            let again = Ipv4Repr::parse(&Ipv4Packet::new_checked(&out[..]).unwrap(), true).unwrap();
            assert_eq!(again, repr);
        }
    }
    if let Ok(p) = Ipv4Packet::new_quoted(data) {
        let _ = Ipv4Repr::parse_quoted(&p);
    }
});
