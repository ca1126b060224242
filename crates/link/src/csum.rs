//! Completing checksums the kernel left partial. A packet socket sees a
//! locally generated or GSO packet (a veth peer's TCP sends 64 KiB
//! super-segments) with `CHECKSUM_PARTIAL`: the transport checksum field
//! holds only the pseudo-header sum and the packet's status says
//! `TP_STATUS_CSUMNOTREADY`. Such a packet never crossed a wire, so its
//! payload is intact; computing the real checksum lets the stack verify it
//! like any other packet.

use crate::{gso, CsumPartial};
use daytona_wire::checksum;
use std::net::Ipv4Addr;

/// Where the partial checksum of the IPv4 packet `ip` starts and sits
/// (TCP or UDP), for [`crate::FrameMeta::csum_partial`].
pub fn partial_at(ip: &[u8]) -> Option<CsumPartial> {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let hl = usize::from(ip[0] & 0xf) * 4;
    let offset: u16 = match ip[9] {
        6 => 16,
        17 => 6,
        _ => return None,
    };
    if hl < 20 || hl + usize::from(offset) + 2 > ip.len() {
        return None;
    }
    Some(CsumPartial {
        start: hl as u16,
        offset,
    })
}

/// The segment size of a TCP super-packet (a local peer's GSO packet,
/// larger than the MTU): `SOCK_DGRAM` packet sockets do not report it, so
/// it is taken as what fits the MTU behind this packet's own headers —
/// Linux's `mss_now` for a peer on this link. `None` for a packet that fits
/// the MTU.
pub fn gso_estimate(ip: &[u8], mtu: usize) -> Option<u16> {
    if ip.len() <= mtu || ip.len() < 40 || ip[9] != 6 {
        return None;
    }
    let hl = usize::from(ip[0] & 0xf) * 4;
    let doff = usize::from(ip.get(hl + 12)? >> 4) * 4;
    let seg = mtu.checked_sub(hl + doff)?;
    u16::try_from(seg).ok().filter(|s| *s > 0)
}

/// Rewrites the TCP or UDP checksum of the IPv4 packet `ip`. Returns
/// false (and leaves the packet alone) when it is not a complete,
/// unfragmented TCP/UDP packet.
pub fn complete_l4_checksum(ip: &mut [u8]) -> bool {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return false;
    }
    let hl = usize::from(ip[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if hl < 20 || total < hl || total > ip.len() || frag & 0x3fff != 0 {
        return false;
    }
    let ip = &mut ip[..total];
    let Some(partial) = partial_at(ip) else {
        return false;
    };
    // Make the checksum partial, then complete it: one routine does both
    // (`gso::complete_checksum`, which also sends a computed zero as all
    // ones, as RFC 768 requires for UDP).
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let pseudo = checksum::pseudo_header_v4(&src, &dst, ip[9], (total - hl) as u32);
    let field = hl + usize::from(partial.offset);
    ip[field..field + 2].copy_from_slice(&pseudo.to_be_bytes());
    gso::complete_checksum(ip, partial)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_packet(payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        let total = (40 + payload.len()) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[6] = 0x40; // DF
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[198, 18, 0, 1]);
        p[16..20].copy_from_slice(&[198, 18, 0, 2]);
        p[32] = 0x50; // data offset 5
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn completed_checksum_verifies_with_the_wire_parser() {
        let mut p = tcp_packet(b"hello, partial checksum");
        // What the kernel leaves: the pseudo-header sum only.
        p[36..38].copy_from_slice(&[0x12, 0x34]);
        assert!(complete_l4_checksum(&mut p));
        let src = Ipv4Addr::new(198, 18, 0, 1);
        let dst = Ipv4Addr::new(198, 18, 0, 2);
        let pseudo = checksum::pseudo_header_v4(&src, &dst, 6, (p.len() - 20) as u32);
        assert_eq!(
            checksum::combine(&[pseudo, checksum::sum(&p[20..])]),
            0xffff
        );
        // Not touched: ICMP, a fragment, a truncated packet.
        let mut icmp = p.clone();
        icmp[9] = 1;
        assert!(!complete_l4_checksum(&mut icmp));
        let mut frag = p.clone();
        frag[7] = 1;
        assert!(!complete_l4_checksum(&mut frag));
        assert_eq!(
            partial_at(&p),
            Some(CsumPartial {
                start: 20,
                offset: 16
            })
        );
        assert_eq!(partial_at(&icmp), None);
        assert_eq!(partial_at(&p[..30]), None);
        let len = p.len();
        assert!(!complete_l4_checksum(&mut p[..len - 1]));
        assert!(!complete_l4_checksum(&mut [0x45u8; 10]));
    }

    #[test]
    fn gso_segment_size_is_what_fits_the_mtu_behind_the_headers() {
        let mut p = vec![0u8; 20 + 32 + 10_000];
        p[0] = 0x45;
        p[9] = 6;
        p[20 + 12] = 8 << 4; // 32-byte TCP header (timestamps)
        assert_eq!(gso_estimate(&p, 1500), Some(1448));
        assert_eq!(gso_estimate(&p, 9000), Some(8948));
        assert_eq!(gso_estimate(&p[..1500], 1500), None); // fits the MTU
        p[9] = 17;
        assert_eq!(gso_estimate(&p, 1500), None); // not TCP
        p[9] = 6;
        p[0] = 0x4f; // 60-byte IP header
        p[60 + 12] = 15 << 4; // and a 60-byte TCP header
        assert_eq!(gso_estimate(&p, 1500), Some(1380));
        assert_eq!(gso_estimate(&p, 100), None);
    }

    #[test]
    fn udp_checksum_is_completed_and_padding_ignored() {
        let mut p = tcp_packet(b"udp payload, odd length");
        p[9] = 17;
        let l4 = p.len() - 20;
        p[24..26].copy_from_slice(&(l4 as u16).to_be_bytes());
        // Ethernet padding after the IP packet is not summed.
        p.extend_from_slice(&[0xab; 7]);
        assert!(complete_l4_checksum(&mut p));
        let src = Ipv4Addr::new(198, 18, 0, 1);
        let dst = Ipv4Addr::new(198, 18, 0, 2);
        let pseudo = checksum::pseudo_header_v4(&src, &dst, 17, l4 as u32);
        let sum = checksum::combine(&[pseudo, checksum::sum(&p[20..20 + l4])]);
        assert_eq!(sum, 0xffff);
        assert_ne!(&p[26..28], &[0, 0], "UDP sends no zero checksum");
    }
}
