//! The `virtio_net_hdr` of packet sockets with `PACKET_VNET_HDR`: on
//! receive it says whether a frame is a GSO super-packet and whether its
//! checksum is partial (local, trusted) or validated; on transmit it asks
//! the kernel to segment a TCP super-segment (TSO) and complete its
//! checksum. Little-endian fields (virtio 1.x §5.1.6, as Linux's
//! `virtio_net_hdr_from_skb` writes them for packet sockets).

use crate::{gso, CsumPartial, FrameMeta};

pub const VNET_HDR_LEN: usize = 10;
pub(crate) const F_NEEDS_CSUM: u8 = 1;
pub(crate) const F_DATA_VALID: u8 = 2;
const GSO_NONE: u8 = 0;
pub(crate) const GSO_TCPV4: u8 = 1;
const GSO_ECN: u8 = 0x80;
const TCP_CSUM_OFFSET: usize = 16;
/// The CWR flag in the TCP header's flags byte.
const TCP_CWR: u8 = 0x80;

/// The metadata of a received frame of `len` bytes from its header;
/// `None` for one the stack cannot take as it is (a GSO type other than
/// TCPv4 — UDP GSO — or checksum offsets outside the frame).
pub fn parse(h: &[u8; VNET_HDR_LEN], len: usize) -> Option<FrameMeta> {
    let flags = h[0];
    let gso_type = h[1];
    let gso_size = u16::from_le_bytes([h[4], h[5]]);
    let csum_start = u16::from_le_bytes([h[6], h[7]]);
    let csum_offset = u16::from_le_bytes([h[8], h[9]]);
    let mut meta = FrameMeta::default();
    match gso_type & !GSO_ECN {
        GSO_NONE => {}
        GSO_TCPV4 if gso_size > 0 => meta.gso_size = Some(gso_size),
        _ => return None,
    }
    if flags & F_NEEDS_CSUM != 0 {
        if usize::from(csum_start) + usize::from(csum_offset) + 2 > len {
            return None;
        }
        // Only local packets have partial checksums: they never crossed a
        // wire, so they are trusted.
        meta.csum_partial = Some(CsumPartial {
            start: csum_start,
            offset: csum_offset,
        });
        meta.csum_verified = true;
    } else if flags & F_DATA_VALID != 0 {
        meta.csum_verified = true;
    }
    Some(meta)
}

/// What to send before a frame (TAP and packet sockets alike): the header, and for a TCP super-segment
/// the offset of its checksum field and the pseudo-header sum that must
/// stand there instead of the full checksum (`NEEDS_CSUM`: the kernel
/// completes it per segment, as Linux's `__tcp_v4_send_check` expects).
///
/// A frame whose checksum the stack already left partial
/// ([`FrameMeta::csum_partial`]) goes as it is, marked `NEEDS_CSUM` at
/// those offsets: nothing to rewrite.
pub fn for_transmit(
    frame: &[u8],
    meta: FrameMeta,
    ethernet: bool,
) -> ([u8; VNET_HDR_LEN], Option<(usize, [u8; 2])>) {
    let mut h = [0u8; VNET_HDR_LEN];
    if let Some(p) = meta.csum_partial {
        h[0] = F_NEEDS_CSUM;
        h[6..8].copy_from_slice(&p.start.to_le_bytes());
        h[8..10].copy_from_slice(&p.offset.to_le_bytes());
    }
    let Some(gso_size) = meta.gso_size else {
        return (h, None);
    };
    let Some(l) = gso::tcp_layout(frame, ethernet) else {
        return (h, None);
    };
    if frame.len() - l.payload <= usize::from(gso_size) {
        // One segment's worth: send it as it is (checksum complete, or
        // partial and marked so).
        return (h, None);
    }
    h[0] = F_NEEDS_CSUM;
    h[1] = GSO_TCPV4;
    // A super-segment with CWR set (RFC 3168 §6.1.2) is marked ECN, so a
    // device segmenting it puts CWR on the first segment only.
    if frame[l.tcp + 13] & TCP_CWR != 0 {
        h[1] |= GSO_ECN;
    }
    h[2..4].copy_from_slice(&(l.payload as u16).to_le_bytes());
    h[4..6].copy_from_slice(&gso_size.to_le_bytes());
    h[6..8].copy_from_slice(&(l.tcp as u16).to_le_bytes());
    h[8..10].copy_from_slice(&(TCP_CSUM_OFFSET as u16).to_le_bytes());
    let at = CsumPartial {
        start: l.tcp as u16,
        offset: TCP_CSUM_OFFSET as u16,
    };
    if meta.csum_partial == Some(at) {
        // The stack wrote the pseudo-header sum already.
        return (h, None);
    }
    let partial = gso::tcp_pseudo_sum(frame, l).to_be_bytes();
    (h, Some((l.tcp + TCP_CSUM_OFFSET, partial)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_frame(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 40 + payload];
        f[12] = 0x08;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        f[14 + 9] = 6;
        f[14 + 32] = 0x50;
        f
    }

    #[test]
    fn received_headers_become_metadata() {
        let mut h = [0u8; VNET_HDR_LEN];
        assert_eq!(parse(&h, 60), Some(FrameMeta::default()));
        h[0] = F_NEEDS_CSUM;
        h[1] = GSO_TCPV4 | GSO_ECN;
        h[4..6].copy_from_slice(&1448u16.to_le_bytes());
        h[6..8].copy_from_slice(&34u16.to_le_bytes());
        h[8..10].copy_from_slice(&16u16.to_le_bytes());
        let m = parse(&h, 60_000).unwrap();
        assert_eq!(m.gso_size, Some(1448));
        assert!(m.csum_verified);
        assert_eq!(
            m.csum_partial,
            Some(CsumPartial {
                start: 34,
                offset: 16
            })
        );
        assert_eq!(parse(&h, 40), None); // offsets beyond the frame
        h[1] = 5; // UDP GSO
        assert_eq!(parse(&h, 60_000), None);
        let mut v = [0u8; VNET_HDR_LEN];
        v[0] = F_DATA_VALID;
        assert!(parse(&v, 60).unwrap().csum_verified);
    }

    #[test]
    fn super_segments_ask_for_tso_and_others_go_plain() {
        let big = tcp_frame(10_000);
        let meta = FrameMeta {
            gso_size: Some(1448),
            ..FrameMeta::default()
        };
        let (h, split) = for_transmit(&big, meta, true);
        assert_eq!(h[1], GSO_TCPV4);
        assert_eq!(u16::from_le_bytes([h[2], h[3]]), 54);
        assert_eq!(u16::from_le_bytes([h[4], h[5]]), 1448);
        assert_eq!(u16::from_le_bytes([h[6], h[7]]), 34);
        assert_eq!(split.map(|s| s.0), Some(50));
        let small = tcp_frame(1000);
        assert_eq!(for_transmit(&small, meta, true), ([0; VNET_HDR_LEN], None));
        assert_eq!(
            for_transmit(&big, FrameMeta::default(), true),
            ([0; VNET_HDR_LEN], None)
        );
    }

    #[test]
    fn super_segment_with_cwr_is_marked_ecn_and_its_checksum_left_partial() {
        use crate::gso::tests::tcp_frame;
        let meta = FrameMeta {
            gso_size: Some(1448),
            ..FrameMeta::default()
        };
        let f = tcp_frame(true, 5000, 0x10 | TCP_CWR);
        let (h, split) = for_transmit(&f, meta, true);
        assert_eq!(h[0], F_NEEDS_CSUM);
        assert_eq!(h[1], GSO_TCPV4 | GSO_ECN);
        // Ethernet 14 + IPv4 20 + TCP 32 (with timestamps).
        assert_eq!(u16::from_le_bytes([h[2], h[3]]), 66, "hdr_len");
        assert_eq!(u16::from_le_bytes([h[4], h[5]]), 1448, "gso_size");
        assert_eq!(u16::from_le_bytes([h[6], h[7]]), 34, "csum_start");
        assert_eq!(u16::from_le_bytes([h[8], h[9]]), 16, "csum_offset");
        let (at, partial) = split.expect("a TCP super-segment");
        assert_eq!(at, 50);
        // The kernel completes the checksum from the partial one: doing so
        // here gives the stack's full checksum back.
        let mut done = f.clone();
        done[at..at + 2].copy_from_slice(&partial);
        let p = CsumPartial {
            start: 34,
            offset: 16,
        };
        assert!(crate::gso::complete_checksum(&mut done, p));
        assert_eq!(done, f);
        let plain = tcp_frame(false, 5000, 0x10);
        assert_eq!(for_transmit(&plain, meta, false).0[1], GSO_TCPV4);
        assert_eq!(for_transmit(b"not tcp", meta, true).1, None);
    }

    #[test]
    fn a_checksum_the_stack_left_partial_is_not_rewritten() {
        use crate::gso::tests::tcp_frame;
        let full = tcp_frame(true, 5000, 0x18);
        let l = gso::tcp_layout(&full, true).unwrap();
        let mut f = full.clone();
        let pseudo = gso::tcp_pseudo_sum(&f, l);
        f[l.tcp + 16..l.tcp + 18].copy_from_slice(&pseudo.to_be_bytes());
        let p = CsumPartial {
            start: 34,
            offset: 16,
        };
        let meta = FrameMeta {
            gso_size: Some(1448),
            csum_partial: Some(p),
            ..FrameMeta::default()
        };
        // A super-segment: TSO header as before, no rewrite of the field.
        let (h, split) = for_transmit(&f, meta, true);
        assert_eq!(split, None);
        let (h_full, split_full) = for_transmit(
            &full,
            FrameMeta {
                csum_partial: None,
                ..meta
            },
            true,
        );
        assert_eq!(h, h_full, "the same header either way");
        // What the kernel would receive is the same: the frame as written
        // equals the full-checksum frame with the partial sum spliced in.
        let (at, sum) = split_full.unwrap();
        let mut spliced = full.clone();
        spliced[at..at + 2].copy_from_slice(&sum);
        assert_eq!(spliced, f);
        // One segment's worth (or no GSO at all) with a partial checksum:
        // no GSO, but still NEEDS_CSUM at the stack's offsets.
        let small = FrameMeta {
            gso_size: Some(6000),
            ..meta
        };
        for m in [
            small,
            FrameMeta {
                gso_size: None,
                ..meta
            },
        ] {
            let (h, split) = for_transmit(&f, m, true);
            assert_eq!(split, None);
            assert_eq!(h[0], F_NEEDS_CSUM);
            assert_eq!(h[1], 0, "no GSO");
            assert_eq!(u16::from_le_bytes([h[6], h[7]]), 34);
            assert_eq!(u16::from_le_bytes([h[8], h[9]]), 16);
        }
    }
}
