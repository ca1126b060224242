//! Seeded byte streams and the hash both ends compare.

/// A cheap seeded byte stream (xorshift64*), reproducible on both ends.
/// Bytes come from 64-bit words, little-endian, so filling a buffer word
/// by word gives the same stream as byte by byte.
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

    fn next_word(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn next_byte(&mut self) -> u8 {
        if self.left == 0 {
            self.word = self.next_word();
            self.left = 8;
        }
        let b = self.word as u8;
        self.word >>= 8;
        self.left -= 1;
        b
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        // Finish the current word, then whole words, then start the next.
        let mut i = 0;
        while self.left > 0 && i < buf.len() {
            buf[i] = self.next_byte();
            i += 1;
        }
        let mut words = buf[i..].chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next_word().to_le_bytes());
        }
        for b in words.into_remainder() {
            *b = self.next_byte();
        }
    }
}

/// A running 64-bit hash of a byte stream, independent of how the stream
/// is cut into calls: bytes are mixed in 8-byte words at their stream
/// offsets (a multiply–rotate mix, not cryptographic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHash {
    state: u64,
    tail: [u8; 8],
    tail_len: usize,
    len: u64,
}

impl Default for StreamHash {
    fn default() -> Self {
        StreamHash {
            state: 0xcbf2_9ce4_8422_2325,
            tail: [0; 8],
            tail_len: 0,
            len: 0,
        }
    }
}

impl StreamHash {
    fn mix(&mut self, w: u64) {
        self.state = (self.state ^ w)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(31);
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.tail_len > 0 {
            let n = (8 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + n].copy_from_slice(&data[..n]);
            self.tail_len += n;
            data = &data[n..];
            if self.tail_len < 8 {
                return;
            }
            self.mix(u64::from_le_bytes(self.tail));
            self.tail_len = 0;
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.mix(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    /// The hash of everything so far.
    pub fn value(&self) -> u64 {
        let mut h = *self;
        let mut last = [0u8; 8];
        last[..h.tail_len].copy_from_slice(&h.tail[..h.tail_len]);
        h.mix(u64::from_le_bytes(last));
        h.mix(h.len);
        h.state ^ (h.state >> 29)
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
        // Word-wise and byte-wise filling give the same stream.
        let (mut w, mut b) = (Stream::new(9), Stream::new(9));
        let mut words = [0u8; 61];
        w.fill(&mut words[..3]);
        w.fill(&mut words[3..]);
        let bytes: Vec<u8> = (0..61).map(|_| b.next_byte()).collect();
        assert_eq!(&words[..], &bytes[..]);
        // The hash does not depend on how the stream is cut.
        let (mut h1, mut h2, mut h3) = Default::default();
        StreamHash::update(&mut h1, &x);
        StreamHash::update(&mut h2, &x[..5]);
        StreamHash::update(&mut h2, &x[5..13]);
        StreamHash::update(&mut h2, &x[13..]);
        StreamHash::update(&mut h3, &x[..63]);
        assert_eq!(h1.value(), h2.value());
        assert_ne!(h1.value(), h3.value());
        let mut flipped = x;
        flipped[40] ^= 1;
        let mut h4 = StreamHash::default();
        h4.update(&flipped);
        assert_ne!(h1.value(), h4.value());
        assert_ne!(seeded_secret(1, 1), seeded_secret(1, 2));
    }
}
