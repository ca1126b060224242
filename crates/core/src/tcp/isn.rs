//! RFC 6528 initial sequence numbers: ISN = M + F(localip, localport,
//! remoteip, remoteport, secretkey), where M is a 4-microsecond timer and F
//! a keyed pseudo-random function (SipHash-2-4 here, as Linux uses).
//! The same keyed hash serves SYN cookies, RFC 6056 port selection and
//! timestamp offsets.

use crate::time::Instant;
use daytona_wire::SeqNum;
use siphasher::sip::SipHasher24;
use std::hash::Hasher;
use std::net::SocketAddrV4;

#[derive(Clone)]
pub struct IsnGenerator {
    key: [u8; 16],
}

impl std::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IsnGenerator { key: <secret> }")
    }
}

impl IsnGenerator {
    pub fn new(secret: [u8; 16]) -> Self {
        IsnGenerator { key: secret }
    }

    /// A keyed 64-bit hash of `data`.
    pub fn hash(&self, data: &[u8]) -> u64 {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write(data);
        h.finish()
    }

    /// A keyed hash of a 4-tuple plus `extra` words.
    pub fn hash_tuple(&self, local: SocketAddrV4, remote: SocketAddrV4, extra: &[u32]) -> u64 {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write(&local.ip().octets());
        h.write(&local.port().to_be_bytes());
        h.write(&remote.ip().octets());
        h.write(&remote.port().to_be_bytes());
        for e in extra {
            h.write(&e.to_be_bytes());
        }
        h.finish()
    }

    /// RFC 6528 §3: the ISN for a connection opened at `now`.
    pub fn isn(&self, local: SocketAddrV4, remote: SocketAddrV4, now: Instant) -> SeqNum {
        let m = (now.total_micros() / 4) as u32;
        let f = self.hash_tuple(local, remote, &[]) as u32;
        SeqNum(m.wrapping_add(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 1000);
    const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80);
    const C: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 81);

    #[test]
    fn isn_advances_at_250k_per_second() {
        let g = IsnGenerator::new([7; 16]);
        let a = g.isn(A, B, Instant::from_secs(10));
        let b = g.isn(A, B, Instant::from_secs(11));
        assert_eq!(b.diff(a), 250_000);
    }

    #[test]
    fn different_tuples_and_keys_give_unrelated_isns() {
        let g = IsnGenerator::new([7; 16]);
        let now = Instant::from_secs(1);
        let x = g.isn(A, B, now);
        let y = g.isn(A, C, now);
        assert!(x.diff(y).unsigned_abs() > 1_000_000, "{x:?} vs {y:?}");
        let other = IsnGenerator::new([8; 16]);
        assert_ne!(other.isn(A, B, now), x);
    }
}
