#![no_main]
use daytona_wire::{EthernetFrame, EthernetRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = EthernetFrame::new_checked(data) {
        if let Ok(repr) = EthernetRepr::parse(&frame) {
            let mut out = [0u8; 14];
            repr.emit(&mut out).unwrap();
            let again = EthernetRepr::parse(&EthernetFrame::new_checked(&out[..]).unwrap()).unwrap();
            assert_eq!(again, repr);
        }
    }
});
