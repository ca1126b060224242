//! The Internet checksum (RFC 1071), 8 bytes per step.
//!
//! The one's-complement sum is computed over 64-bit words (four 16-bit
//! words at a time, carries folded at the end), which is byte-order
//! independent as RFC 1071 §2(B) shows: we sum native-endian words and swap
//! once at the end.

use std::net::Ipv4Addr;

/// Whether to compute/verify checksums or trust the link (e.g. a TAP device
/// with offloads that validated them already).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// Compute on emit, verify on parse.
    #[default]
    Compute,
    /// Verify on parse (alias of `Compute` for readability in parsers).
    Verify,
    /// Leave the field alone on emit, skip verification on parse.
    Ignore,
}

impl ChecksumMode {
    pub fn enabled(self) -> bool {
        !matches!(self, ChecksumMode::Ignore)
    }
}

/// Folds a 64-bit accumulator to 16 bits (one's-complement).
fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The one's-complement sum of `data` as big-endian 16-bit words, not
/// complemented. Combine partial sums with [`combine`].
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Add the two 32-bit halves so carries stay within 64 bits.
        acc += (w & 0xffff_ffff) + (w >> 32);
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u64::from(u16::from_ne_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        // An odd trailing byte is padded with zero (RFC 1071 §4.1).
        acc += u64::from(u16::from_ne_bytes([rest[i], 0]));
    }
    let folded = fold(acc);
    if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    }
}

/// One's-complement addition of partial sums.
pub fn combine(parts: &[u16]) -> u16 {
    fold(parts.iter().map(|p| u64::from(*p)).sum())
}

/// The IPv4 pseudo-header sum (RFC 9293 §3.1, RFC 768).
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: u8, length: u32) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    let words = [
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        u16::from(protocol),
        (length >> 16) as u16,
        length as u16,
    ];
    combine(&words)
}

/// The checksum field value for `data` (complement of the sum).
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// A simple reference: 16 bits at a time. Used by tests and the benchmark.
pub fn sum_naive(data: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        acc += u32::from(u16::from_be_bytes([data[i], data[i + 1]]));
        i += 2;
    }
    if i < data.len() {
        acc += u32::from(data[i]) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 0001 f203 f4f5 f6f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(sum_naive(&data), 0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[1, 2, 3]), 0x0102 + 0x0300);
    }

    proptest! {
        #[test]
        fn fast_equals_naive(data in proptest::collection::vec(any::<u8>(), 0..3000), skip in 0usize..8) {
            let d = &data[skip.min(data.len())..];
            prop_assert_eq!(sum(d), sum_naive(d));
        }

        #[test]
        fn split_sums_combine(data in proptest::collection::vec(any::<u8>(), 0..600), at in 0usize..300) {
            // Splitting at an even offset and combining gives the same sum.
            let at = (at * 2).min(data.len() & !1);
            let whole = sum(&data);
            let parts = combine(&[sum(&data[..at]), sum(&data[at..])]);
            // 0x0000 and 0xffff are the same value in one's complement.
            prop_assert!(whole == parts || (whole == 0 && parts == 0xffff) || (whole == 0xffff && parts == 0));
        }
    }
}
