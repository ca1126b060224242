#![no_main]
use daytona_wire::{ArpPacket, ArpRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ArpPacket::new_checked(data) {
        if let Ok(repr) = ArpRepr::parse(&p) {
            let mut out = [0u8; 28];
            repr.emit(&mut out).unwrap();
            assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&out[..]).unwrap()).unwrap(), repr);
        }
    }
});
