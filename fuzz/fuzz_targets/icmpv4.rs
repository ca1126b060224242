#![no_main]
use daytona_wire::{Icmpv4Packet, Icmpv4Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Icmpv4Packet::new_checked(data) {
        if let Ok(repr) = Icmpv4Repr::parse(&p, false) {
            let mut out = vec![0u8; repr.buffer_len()];
            if repr.emit(&mut out).is_ok() {
                let again = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&out[..]).unwrap(), true);
                assert!(again.is_ok());
            }
        }
    }
});
