//! SYN cookies (RFC 4987 §3.6): when a listener's SYN queue is full, the
//! state of the half-open connection is folded into our ISS and, when the
//! peer uses timestamps, into the low bits of our TSval.
//!
//! ISS layout: `t (5 bits) | mss index (3 bits) | MAC (24 bits)`, where `t`
//! is a 64-second counter and the MAC a keyed hash of the 4-tuple, `t`, the
//! peer's ISN and the MSS index. A cookie is valid for the current and the
//! previous counter period (64–128 s).

use crate::tcp::IsnGenerator;
use crate::time::Instant;
use daytona_wire::SeqNum;
use std::net::SocketAddrV4;

/// MSS values a cookie can carry (Linux `msstab`, plus jumbo).
pub const MSS_TABLE: [u16; 8] = [536, 1200, 1300, 1360, 1440, 1460, 4312, 8960];
const PERIOD_SECS: u64 = 64;

/// Options recovered from the timestamp echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsCookie {
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
}

fn counter(now: Instant) -> u32 {
    (now.total_micros() / 1_000_000 / PERIOD_SECS) as u32
}

fn mac(
    key: &IsnGenerator,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    t: u32,
    peer_isn: SeqNum,
    m: u32,
) -> u32 {
    (key.hash_tuple(local, remote, &[t, peer_isn.0, m]) & 0x00ff_ffff) as u32
}

/// The largest table MSS not above the peer's.
pub fn mss_index(peer_mss: u16) -> u32 {
    MSS_TABLE.iter().rposition(|m| *m <= peer_mss).unwrap_or(0) as u32
}

/// Our ISS for a SYN answered with a cookie.
pub fn encode(
    key: &IsnGenerator,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    peer_isn: SeqNum,
    peer_mss: u16,
    now: Instant,
) -> SeqNum {
    let t = counter(now);
    let m = mss_index(peer_mss);
    SeqNum(((t & 0x1f) << 27) | (m << 24) | mac(key, local, remote, t, peer_isn, m))
}

/// Checks the cookie an ACK returns (`ack - 1`), for the peer ISN `ack.seq
/// - 1`. Returns the MSS it carried.
pub fn decode(
    key: &IsnGenerator,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    peer_isn: SeqNum,
    cookie: SeqNum,
    now: Instant,
) -> Option<u16> {
    let c = cookie.0;
    let t_bits = c >> 27;
    let m = (c >> 24) & 7;
    let now_t = counter(now);
    for t in [now_t, now_t.wrapping_sub(1)] {
        if t & 0x1f == t_bits && mac(key, local, remote, t, peer_isn, m) == c & 0x00ff_ffff {
            return MSS_TABLE.get(m as usize).copied();
        }
    }
    None
}

/// Low 6 bits of TSval: window scale (4 bits, 15 = none) and SACK-permitted
/// (1 bit), as Linux encodes them.
pub fn ts_encode(tsval: u32, cookie: TsCookie) -> u32 {
    let ws = u32::from(cookie.window_scale.map_or(15, |w| w.min(14)));
    let bits = ws | (u32::from(cookie.sack_permitted) << 4) | (1 << 5);
    (tsval & !0x3f) | bits
}

/// Recovers the options from an echoed TSval, if it carries a cookie.
pub fn ts_decode(tsecr: u32) -> Option<TsCookie> {
    if tsecr & (1 << 5) == 0 {
        return None;
    }
    let ws = (tsecr & 0xf) as u8;
    Some(TsCookie {
        window_scale: (ws != 15).then_some(ws),
        sack_permitted: tsecr & (1 << 4) != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const L: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80);
    const R: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 40000);

    #[test]
    fn cookie_round_trips_within_two_periods() {
        let key = IsnGenerator::new([3; 16]);
        let t0 = Instant::from_secs(1000);
        let c = encode(&key, L, R, SeqNum(77), 1460, t0);
        assert_eq!(decode(&key, L, R, SeqNum(77), c, t0), Some(1460));
        assert_eq!(
            decode(&key, L, R, SeqNum(77), c, Instant::from_secs(1050)),
            Some(1460)
        );
        // Expired after two periods.
        assert_eq!(
            decode(&key, L, R, SeqNum(77), c, Instant::from_secs(1200)),
            None
        );
        // Wrong peer ISN, wrong tuple, tampered bits.
        assert_eq!(decode(&key, L, R, SeqNum(78), c, t0), None);
        assert_eq!(decode(&key, R, L, SeqNum(77), c, t0), None);
        assert_eq!(decode(&key, L, R, SeqNum(77), c + 1, t0), None);
    }

    #[test]
    fn mss_rounds_down_to_the_table() {
        assert_eq!(MSS_TABLE[mss_index(1400) as usize], 1360);
        assert_eq!(MSS_TABLE[mss_index(100) as usize], 536);
        assert_eq!(MSS_TABLE[mss_index(9000) as usize], 8960);
    }

    #[test]
    fn timestamp_carries_wscale_and_sack() {
        let c = TsCookie {
            window_scale: Some(7),
            sack_permitted: true,
        };
        let ts = ts_encode(0x1234_5678, c);
        assert_eq!(ts & !0x3f, 0x1234_5640);
        assert_eq!(ts_decode(ts), Some(c));
        let none = TsCookie {
            window_scale: None,
            sack_permitted: false,
        };
        assert_eq!(ts_decode(ts_encode(0, none)), Some(none));
    }
}
