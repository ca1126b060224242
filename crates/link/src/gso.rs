//! Software segmentation and checksum completion, for middleware that
//! needs one packet per frame (the fault model) on links that offload.
//!
//! A TCP/IPv4 super-segment (TSO on transmit, GRO on receive) is cut the
//! way Linux's `tcp_gso_segment` does it: every segment gets the headers,
//! its own sequence number, IP total length and ID; CWR stays on the
//! first segment only, FIN and PSH on the last only (RFC 3168 §6.1.2,
//! RFC 9293 §3.1); both checksums are computed in full.

use crate::{Batch, CsumPartial, FrameMeta};
use daytona_wire::checksum;
use std::net::Ipv4Addr;

const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const PROTO_TCP: u8 = 6;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// Header layout of a TCP/IPv4 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLayout {
    /// Offset of the IPv4 header (0 or 14).
    pub ip: usize,
    /// Offset of the TCP header.
    pub tcp: usize,
    /// Offset of the TCP payload (all headers end here).
    pub payload: usize,
}

/// Finds the IPv4 and TCP headers of `frame`, if it is a well-formed,
/// unfragmented TCP/IPv4 packet whose IP length matches the frame.
pub fn tcp_layout(frame: &[u8], ethernet: bool) -> Option<TcpLayout> {
    let ip = if ethernet {
        if frame.get(12..14)? != ETHERTYPE_IPV4 {
            return None;
        }
        ETHERNET_HEADER
    } else {
        0
    };
    let iph = frame.get(ip..ip + 20)?;
    if iph[0] >> 4 != 4 || iph[9] != PROTO_TCP {
        return None;
    }
    let ihl = usize::from(iph[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([iph[2], iph[3]]));
    if ihl < 20 || total < ihl + 20 || ip + total != frame.len() {
        return None;
    }
    let tcp = ip + ihl;
    let doff = usize::from(frame.get(tcp + 12)? >> 4) * 4;
    if doff < 20 || tcp + doff > frame.len() {
        return None;
    }
    Some(TcpLayout {
        ip,
        tcp,
        payload: tcp + doff,
    })
}

fn addrs(frame: &[u8], ip: usize) -> (Ipv4Addr, Ipv4Addr) {
    let a = |i: usize| Ipv4Addr::new(frame[i], frame[i + 1], frame[i + 2], frame[i + 3]);
    (a(ip + 12), a(ip + 16))
}

/// The pseudo-header sum of a TCP/IPv4 packet (RFC 9293 §3.1), folded
/// and *not* complemented: what a partial checksum field holds
/// (Linux `~tcp_v4_check(len, saddr, daddr, 0)`).
pub fn tcp_pseudo_sum(frame: &[u8], layout: TcpLayout) -> u16 {
    let (src, dst) = addrs(frame, layout.ip);
    let len = (frame.len() - layout.tcp) as u32;
    checksum::pseudo_header_v4(&src, &dst, PROTO_TCP, len)
}

/// Completes a partial checksum (virtio `VIRTIO_NET_HDR_F_NEEDS_CSUM`,
/// Linux `skb_checksum_help`): the field at `start + offset` holds the
/// pseudo-header sum; the sum from `start` to the end is complemented into
/// it. Returns false (and leaves the frame alone) when the offsets do not
/// fit the frame.
pub fn complete_checksum(frame: &mut [u8], partial: CsumPartial) -> bool {
    let start = usize::from(partial.start);
    let field = start + usize::from(partial.offset);
    if field + 2 > frame.len() {
        return false;
    }
    let sum = checksum::sum(&frame[start..]);
    // Linux skb_checksum_help: a computed zero is sent as all ones (the
    // same value in one's complement; RFC 768 requires it for UDP).
    let c = match !sum {
        0 => 0xffff,
        c => c,
    };
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Writes the full TCP checksum of a TCP/IPv4 frame: the pseudo-header
/// sum goes into the field, then it is completed like a partial one.
pub fn fill_tcp_checksum(frame: &mut [u8], layout: TcpLayout) {
    let pseudo = tcp_pseudo_sum(frame, layout);
    frame[layout.tcp + 16..layout.tcp + 18].copy_from_slice(&pseudo.to_be_bytes());
    complete_checksum(
        frame,
        CsumPartial {
            start: layout.tcp as u16,
            offset: 16,
        },
    );
}

fn fill_ip_checksum(frame: &mut [u8], layout: TcpLayout) {
    let h = layout.ip..layout.tcp;
    frame[layout.ip + 10..layout.ip + 12].fill(0);
    let c = checksum::checksum(&frame[h]);
    frame[layout.ip + 10..layout.ip + 12].copy_from_slice(&c.to_be_bytes());
}

/// Appends the segments of `frame` to `out`, each a complete packet with
/// full checksums and default metadata. A frame that is not a TCP/IPv4
/// super-segment longer than `gso_size` is appended as it is (its partial
/// checksum, if `meta` says so, completed). Returns the number appended.
pub fn segment(frame: &[u8], meta: FrameMeta, ethernet: bool, out: &mut Batch) -> usize {
    let layout = tcp_layout(frame, ethernet);
    let mss = usize::from(meta.gso_size.unwrap_or(0));
    let Some(layout) = layout.filter(|l| mss > 0 && frame.len() - l.payload > mss) else {
        let _ = out.fill_with(frame.len(), |f| {
            let f = &mut f[..frame.len()];
            f.copy_from_slice(frame);
            if let Some(p) = meta.csum_partial {
                complete_checksum(f, p);
            }
            Ok::<_, ()>(Some((frame.len(), FrameMeta::default())))
        });
        return 1;
    };
    let headers = &frame[..layout.payload];
    let payload = &frame[layout.payload..];
    let seq0 = u32::from_be_bytes([
        frame[layout.tcp + 4],
        frame[layout.tcp + 5],
        frame[layout.tcp + 6],
        frame[layout.tcp + 7],
    ]);
    let id0 = u16::from_be_bytes([frame[layout.ip + 4], frame[layout.ip + 5]]);
    let flags = frame[layout.tcp + 13];
    let count = payload.len().div_ceil(mss);
    for (i, chunk) in payload.chunks(mss).enumerate() {
        let len = headers.len() + chunk.len();
        let _ = out.fill_with(len, |f| {
            let f = &mut f[..len];
            f[..headers.len()].copy_from_slice(headers);
            f[headers.len()..].copy_from_slice(chunk);
            cut(f, layout, i, count, mss, seq0, id0, flags);
            Ok::<_, ()>(Some((len, FrameMeta::default())))
        });
    }
    count
}

/// Fixes the headers of segment `i` of `count`.
#[allow(clippy::too_many_arguments)]
fn cut(
    f: &mut [u8],
    layout: TcpLayout,
    i: usize,
    count: usize,
    mss: usize,
    seq0: u32,
    id0: u16,
    flags: u8,
) {
    {
        let total = (f.len() - layout.ip) as u16;
        f[layout.ip + 2..layout.ip + 4].copy_from_slice(&total.to_be_bytes());
        let id = id0.wrapping_add(i as u16);
        f[layout.ip + 4..layout.ip + 6].copy_from_slice(&id.to_be_bytes());
        let seq = seq0.wrapping_add((i * mss) as u32);
        f[layout.tcp + 4..layout.tcp + 8].copy_from_slice(&seq.to_be_bytes());
        let mut fl = flags;
        if i > 0 {
            fl &= !TCP_CWR;
        }
        if i + 1 < count {
            fl &= !(TCP_FIN | TCP_PSH);
        }
        f[layout.tcp + 13] = fl;
        fill_ip_checksum(f, layout);
        fill_tcp_checksum(f, layout);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A TCP/IPv4 frame with `len` payload bytes and valid checksums.
    pub(crate) fn tcp_frame(ethernet: bool, len: usize, flags: u8) -> Vec<u8> {
        let mut f = Vec::new();
        if ethernet {
            f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        }
        let ip = f.len();
        let total = (20 + 32 + len) as u16;
        f.extend_from_slice(&[0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
        f[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[198, 18, 0, 1, 198, 18, 0, 2]);
        // ports, seq, ack, doff=8 (12 bytes of options), flags, window
        f.extend_from_slice(&[0x30, 0x39, 0, 80, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x80, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        f.extend((0..len).map(|i| (i * 31 % 251) as u8));
        let layout = tcp_layout(&f, ethernet).unwrap();
        fill_ip_checksum(&mut f, layout);
        fill_tcp_checksum(&mut f, layout);
        f
    }

    pub(crate) fn tcp_checksum_ok(f: &[u8], layout: TcpLayout) -> bool {
        checksum::combine(&[tcp_pseudo_sum(f, layout), checksum::sum(&f[layout.tcp..])]) == 0xffff
    }

    #[test]
    fn super_segment_is_cut_like_linux() {
        for ethernet in [false, true] {
            let big = tcp_frame(ethernet, 5000, TCP_PSH | TCP_FIN | TCP_CWR | 0x10);
            let meta = FrameMeta {
                gso_size: Some(1448),
                ..FrameMeta::default()
            };
            let mut out = Batch::new();
            assert_eq!(segment(&big, meta, ethernet, &mut out), 4);
            let l = tcp_layout(&big, ethernet).unwrap();
            let mut payload = Vec::new();
            for (i, f) in out.iter().enumerate() {
                let fl = tcp_layout(f, ethernet).expect("a valid segment");
                assert_eq!(checksum::checksum(&f[fl.ip..fl.tcp]), 0, "IP checksum");
                assert!(tcp_checksum_ok(f, fl), "TCP checksum of segment {i}");
                let seq =
                    u32::from_be_bytes([f[l.tcp + 4], f[l.tcp + 5], f[l.tcp + 6], f[l.tcp + 7]]);
                assert_eq!(seq, 0xffff_fff0u32.wrapping_add(i as u32 * 1448));
                let flags = f[l.tcp + 13];
                assert_eq!(flags & TCP_CWR != 0, i == 0);
                assert_eq!(flags & (TCP_FIN | TCP_PSH) != 0, i == 3);
                assert_eq!(flags & 0x10, 0x10, "ACK on every segment");
                payload.extend_from_slice(&f[fl.payload..]);
            }
            assert_eq!(payload, big[l.payload..]);
        }
    }

    #[test]
    fn partial_checksum_is_completed() {
        let mut f = tcp_frame(true, 300, 0x10);
        let l = tcp_layout(&f, true).unwrap();
        let good = f.clone();
        let pseudo = tcp_pseudo_sum(&f, l);
        f[l.tcp + 16..l.tcp + 18].copy_from_slice(&pseudo.to_be_bytes());
        let p = CsumPartial {
            start: l.tcp as u16,
            offset: 16,
        };
        assert!(complete_checksum(&mut f, p));
        assert_eq!(f, good);
        assert!(!complete_checksum(
            &mut f[..20],
            CsumPartial {
                start: 10,
                offset: 16
            }
        ));
    }

    #[test]
    fn other_frames_pass_through() {
        let mut out = Batch::new();
        let small = tcp_frame(false, 100, 0x10);
        let meta = FrameMeta {
            gso_size: Some(1448),
            ..FrameMeta::default()
        };
        assert_eq!(segment(&small, meta, false, &mut out), 1);
        assert_eq!(segment(b"garbage", meta, true, &mut out), 1);
        assert_eq!(out.iter().collect::<Vec<_>>(), vec![&small[..], b"garbage"]);
    }
}

#[cfg(test)]
mod props {
    use super::tests::{tcp_checksum_ok, tcp_frame};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes from a link never panic, whatever the metadata.
        #[test]
        fn segment_never_panics(
            frame in proptest::collection::vec(any::<u8>(), 0..3000),
            gso in proptest::option::of(any::<u16>()),
            start in any::<u16>(),
            offset in any::<u16>(),
            ethernet in any::<bool>(),
        ) {
            let meta = FrameMeta {
                gso_size: gso,
                csum_verified: true,
                csum_partial: Some(CsumPartial { start, offset }),
            };
            let mut out = Batch::new();
            let n = segment(&frame, meta, ethernet, &mut out);
            prop_assert_eq!(n, out.len());
        }

        /// Valid super-segments are cut into valid packets carrying the
        /// same bytes, none longer than the segment size.
        #[test]
        fn segments_carry_the_payload(
            len in 0usize..20_000,
            mss in 1u16..3000,
            ethernet in any::<bool>(),
        ) {
            let big = tcp_frame(ethernet, len, 0x18);
            let l = tcp_layout(&big, ethernet).unwrap();
            let meta = FrameMeta { gso_size: Some(mss), ..FrameMeta::default() };
            let mut out = Batch::new();
            segment(&big, meta, ethernet, &mut out);
            let mut payload = Vec::new();
            for f in out.iter() {
                let fl = tcp_layout(f, ethernet).unwrap();
                prop_assert!(f.len() - fl.payload <= usize::from(mss));
                prop_assert!(tcp_checksum_ok(f, fl));
                payload.extend_from_slice(&f[fl.payload..]);
            }
            prop_assert_eq!(&payload[..], &big[l.payload..]);
        }
    }
}
