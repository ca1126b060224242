//! Stack-wide settings.

use crate::tcp::TcpConfig;
use crate::time::Duration;
use daytona_wire::EthernetAddress;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

/// What the link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// Ethernet II frames; the stack answers and resolves ARP itself.
    Ethernet { mac: EthernetAddress },
    /// Bare IPv4 packets (TUN, raw sockets): no link header, no ARP.
    Ip,
}

/// Settings for one [`Stack`](super::Stack).
#[derive(Debug, Clone, PartialEq)]
pub struct StackConfig {
    pub medium: Medium,
    /// Our IPv4 address.
    pub addr: Ipv4Addr,
    /// Prefix length of the attached network (for on-link decisions).
    pub prefix_len: u8,
    /// Next hop for destinations off the attached network.
    pub gateway: Option<Ipv4Addr>,
    /// IP MTU of the link, bytes (68..=65535).
    pub mtu: usize,
    /// Defaults for new TCP connections.
    pub tcp: TcpConfig,
    /// Most TCP connections at once (any state).
    pub max_connections: usize,
    /// Most send + receive buffer capacity summed over connections, bytes.
    pub max_buffer_memory: usize,
    /// Per-listener SYN queue (SYN-RECEIVED connections); beyond it, SYN
    /// cookies (Linux `tcp_max_syn_backlog`).
    pub syn_backlog: usize,
    /// Ephemeral ports for active opens (Linux `ip_local_port_range`).
    pub ephemeral_ports: RangeInclusive<u16>,
    /// Secret for ISNs, SYN cookies, port selection and timestamp offsets.
    /// Fixed secrets make the simulator deterministic.
    pub secret: [u8; 32],
    /// TTL of packets we send (Linux `ip_default_ttl`, 64).
    pub ttl: u8,
    /// Verify checksums of received packets (off only when the link has).
    pub verify_checksums: bool,
    /// How long an ARP cache entry stays valid (Linux base_reachable ~30 s).
    pub arp_cache_timeout: Duration,
    /// Interval between ARP requests for an unresolved address.
    pub arp_retry: Duration,
    /// ARP requests before an address is given up (and its frames dropped).
    pub arp_max_tries: u32,
    /// Events held until the application polls them; the oldest are dropped
    /// (and counted) beyond this.
    pub max_events: usize,
    /// Datagrams queued per UDP socket.
    pub udp_queue: usize,
    /// ICMP errors we send per second (RFC 1812 §4.3.2.8 rate limit).
    pub icmp_rate_limit: u32,
    /// TCP segmentation offload: the largest IP packet a connection may
    /// hand the link as one super-segment, which the link (a TAP with
    /// `IFF_VNET_HDR`, Linux `gso_max_size`) cuts into MTU-sized segments.
    /// `None` (default): every segment fits the MTU.
    pub tso_max: Option<usize>,
    /// Transmit checksum offload for super-segments: a TCP super-segment
    /// (one larger than the MTU, see `tso_max`) carries only the
    /// pseudo-header sum in its checksum field, which the link completes
    /// per segment (virtio `VIRTIO_NET_HDR_F_NEEDS_CSUM`, as Linux's
    /// `tcp_v4_send_check` leaves it for a device with `NETIF_F_HW_CSUM`);
    /// [`Stack::tx_csum_partial`](super::Stack::tx_csum_partial) says where
    /// it is. Frames that fit the MTU always carry full checksums. Set it
    /// only for a link that completes partial checksums (a TAP or packet
    /// socket with a vnet header). Off by default.
    pub tx_csum_offload: bool,
}

impl StackConfig {
    /// A stack on an IP link (no link header) at `addr/prefix_len`.
    pub fn ip(addr: Ipv4Addr, prefix_len: u8) -> Self {
        StackConfig {
            medium: Medium::Ip,
            addr,
            prefix_len,
            gateway: None,
            mtu: 1500,
            tcp: TcpConfig::default(),
            max_connections: 65_536,
            max_buffer_memory: 4 << 30,
            syn_backlog: 1024,
            ephemeral_ports: 32_768..=60_999,
            secret: [0x5a; 32],
            ttl: 64,
            verify_checksums: true,
            arp_cache_timeout: Duration::from_secs(30),
            arp_retry: Duration::from_secs(1),
            arp_max_tries: 3,
            max_events: 1 << 16,
            udp_queue: 256,
            icmp_rate_limit: 1000,
            tso_max: None,
            tx_csum_offload: false,
        }
    }

    /// A stack on an Ethernet link.
    pub fn ethernet(mac: EthernetAddress, addr: Ipv4Addr, prefix_len: u8) -> Self {
        StackConfig {
            medium: Medium::Ethernet { mac },
            ..Self::ip(addr, prefix_len)
        }
    }

    /// True if `dst` is on the attached network.
    /// Bytes of the largest frame `Stack::poll_transmit` may write: the
    /// MTU (or the TSO limit) plus the link header.
    pub fn max_frame_len(&self) -> usize {
        let link = match self.medium {
            Medium::Ethernet { .. } => 14,
            Medium::Ip => 0,
        };
        self.mtu.max(self.tso_max.unwrap_or(0)).min(65_535) + link
    }

    pub fn on_link(&self, dst: Ipv4Addr) -> bool {
        let bits = u32::from(self.prefix_len.min(32));
        let mask = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        (u32::from(dst) & mask) == (u32::from(self.addr) & mask)
    }
}
