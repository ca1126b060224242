//! Seeded byte streams and the hash both ends compare.

/// A cheap seeded byte stream (xorshift64*), reproducible on both ends.
#[derive(Debug, Clone)]
pub struct Stream {
    state: u64,
    word: u64,
    left: u32,
}

impl Stream {
    pub fn new(seed: u64) -> Stream {
        Stream {
            state: seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1,
            word: 0,
            left: 0,
        }
    }

    pub fn next_byte(&mut self) -> u8 {
        if self.left == 0 {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            self.word = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d);
            self.left = 8;
        }
        let b = self.word as u8;
        self.word >>= 8;
        self.left -= 1;
        b
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_byte();
        }
    }
}

/// FNV-1a, 64 bits: a running hash of every byte written or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Distinct, reproducible values from a seed and a few labels.
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut x = seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.rotate_left(32);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Distinct, reproducible stack secrets per run and host.
pub fn seeded_secret(seed: u64, host: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, chunk) in s.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(seed, host, i as u64).to_le_bytes());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_repeat_and_differ_by_seed() {
        let (mut a, mut b, mut c) = (Stream::new(1), Stream::new(1), Stream::new(2));
        let (mut x, mut y, mut z) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        let (mut h1, mut h2) = (Fnv::default(), Fnv::default());
        h1.update(&x);
        h2.update(&x[..32]);
        h2.update(&x[32..]);
        assert_eq!(h1, h2);
        assert_ne!(seeded_secret(1, 1), seeded_secret(1, 2));
    }
}
