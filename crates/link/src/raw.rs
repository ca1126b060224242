//! Raw mode, the paper's path: the stack shares an interface's IPv4
//! address with the kernel. Packets go out through a raw IP socket
//! (`IPPROTO_RAW`, header included), so the kernel routes them and resolves
//! ARP; packets come in through an `AF_PACKET`/`SOCK_DGRAM` socket bound to
//! the interface with a classic BPF filter for the stack's address and
//! ports ([`crate::bpf::ipv4_filter`]); an nftables table
//! ([`crate::nft`]) drops the kernel's own copy so it never answers them.
//!
//! Ports are partitioned with the kernel: the stack owns the listening
//! ports it is told about and an ephemeral range outside the kernel's
//! `ip_local_port_range` (by default the ports above it).
#![allow(unsafe_code)]

use crate::bpf::{self, PortSet};
use crate::csum;
use crate::netif;
use crate::nft::{self, NftTable};
use crate::txq::{Sent, TxQueue, CHUNK};
use crate::{Batch, FrameMeta, Link, LinkCaps, PortProto};
use daytona_core::time::Instant;
use std::io;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Packets per `recvmmsg`.
const BATCH: usize = 32;
/// Most frames one `recv_batch` returns (fairness with timers and TX).
const RX_MAX: usize = 256;
/// Room for the largest IPv4 packet (a GSO packet from a veth peer).
const RX_BUF: usize = 65_536;
const ETH_P_IP: u16 = 0x0800;

/// How to open a [`RawLink`].
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    /// Interface; default: the one holding the IPv4 default route.
    pub interface: Option<String>,
    /// Address the stack shares; default: the interface's first IPv4.
    pub addr: Option<Ipv4Addr>,
    /// TCP ports the stack listens on.
    pub tcp_ports: Vec<u16>,
    /// UDP ports the stack binds.
    pub udp_ports: Vec<u16>,
    /// The stack's ephemeral ports (TCP and UDP); default: above the
    /// kernel's `ip_local_port_range` ([`ephemeral_outside_kernel`]).
    pub ephemeral_ports: Option<RangeInclusive<u16>>,
    /// Skip the nftables table (the kernel then answers the stack's
    /// packets with RSTs — only for experiments).
    pub no_nftables: bool,
    /// Complete partial checksums (GSO packets of a local peer) in
    /// software instead of handing them to the stack as trusted.
    pub no_offload: bool,
}

impl RawConfig {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn interface(mut self, name: &str) -> Self {
        self.interface = Some(name.to_string());
        self
    }

    pub fn addr(mut self, addr: Ipv4Addr) -> Self {
        self.addr = Some(addr);
        self
    }

    pub fn tcp_port(mut self, port: u16) -> Self {
        self.tcp_ports.push(port);
        self
    }

    pub fn udp_port(mut self, port: u16) -> Self {
        self.udp_ports.push(port);
        self
    }

    pub fn ephemeral_ports(mut self, r: RangeInclusive<u16>) -> Self {
        self.ephemeral_ports = Some(r);
        self
    }
}

/// Parses `ip_local_port_range` text ("32768\t60999").
pub fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut it = text.split_whitespace().map(|s| s.parse::<u16>());
    match (it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b))) if a <= b => Some(a..=b),
        _ => None,
    }
}

/// An ephemeral range the kernel does not use for its own connections:
/// the ports above the calling thread's namespace's
/// `ip_local_port_range`, or (when that reaches 65535) the 4096 ports below
/// it but above 1024.
pub fn ephemeral_outside_kernel() -> io::Result<RangeInclusive<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")?;
    let k = parse_port_range(&text).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "unreadable ip_local_port_range")
    })?;
    outside(&k).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the kernel's ip_local_port_range leaves no ports for the stack: \
             give RawConfig::ephemeral_ports",
        )
    })
}

fn outside(k: &RangeInclusive<u16>) -> Option<RangeInclusive<u16>> {
    if *k.end() <= 65_535 - 512 {
        Some(k.end() + 1..=65_535)
    } else if *k.start() >= 1025 + 512 {
        Some(k.start().saturating_sub(4096).max(1025)..=k.start() - 1)
    } else {
        None
    }
}

/// Ports in `ports` that a kernel socket of the calling thread's namespace
/// already holds on `addr` (or the wildcard): TCP listeners
/// (`/proc/thread-self/net/tcp`, state 0A) or bound UDP sockets
/// (`.../udp`). The stack cannot share them.
pub fn kernel_holds(proto: &str, addr: Ipv4Addr, ports: &[u16]) -> io::Result<Vec<u16>> {
    let mut tables = ProcNet::open()?;
    tables.holds(proto, addr, ports)
}

/// The kernel's socket tables (`/proc/thread-self/net/{tcp,udp}`) of the
/// namespace the link was opened in. Held open: a procfs table read again
/// from offset 0 is fresh, and stays the opening thread's namespace's even
/// when a thread of another namespace reads it.
#[derive(Debug)]
struct ProcNet {
    tcp: std::fs::File,
    udp: std::fs::File,
}

impl ProcNet {
    fn open() -> io::Result<ProcNet> {
        Ok(ProcNet {
            tcp: std::fs::File::open("/proc/thread-self/net/tcp")?,
            udp: std::fs::File::open("/proc/thread-self/net/udp")?,
        })
    }

    fn holds(&mut self, proto: &str, addr: Ipv4Addr, ports: &[u16]) -> io::Result<Vec<u16>> {
        use std::io::{Read, Seek};
        if ports.is_empty() {
            return Ok(Vec::new());
        }
        let f = if proto == "tcp" {
            &mut self.tcp
        } else {
            &mut self.udp
        };
        f.rewind()?;
        let mut text = String::new();
        f.read_to_string(&mut text)?;
        Ok(parse_kernel_sockets(&text, proto == "tcp", addr)
            .into_iter()
            .filter(|p| ports.contains(p))
            .collect())
    }

    /// `AddrInUse` when a kernel socket holds one of the ports.
    fn refuse(&mut self, addr: Ipv4Addr, tcp: &PortSet, udp: &PortSet) -> io::Result<()> {
        for (proto, set) in [("tcp", tcp), ("udp", udp)] {
            let taken = self.holds(proto, addr, &set.ports)?;
            if !taken.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{proto} port(s) {taken:?} on {addr} belong to kernel sockets: \
                         the stack shares the address in raw mode and cannot take them"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Local ports of the sockets in a `/proc/net/{tcp,udp}` table bound to
/// `addr` or the wildcard (TCP: listeners only).
pub fn parse_kernel_sockets(text: &str, listeners_only: bool, addr: Ipv4Addr) -> Vec<u16> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || (listeners_only && f[3] != "0A") {
            continue;
        }
        let Some((a, p)) = f[1].split_once(':') else {
            continue;
        };
        let (Ok(a), Ok(p)) = (u32::from_str_radix(a, 16), u16::from_str_radix(p, 16)) else {
            continue;
        };
        // The kernel prints the address (network order in memory) as a
        // host-order word: its bytes in memory are the octets.
        let a = Ipv4Addr::from(a.to_ne_bytes());
        if a == addr || a.is_unspecified() {
            out.push(p);
        }
    }
    out
}

/// Counters of a raw link.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RawStats {
    pub rx_packets: u64,
    /// Received TCP super-packets (GSO of a local peer), their segment
    /// size estimated from the MTU.
    pub rx_gso: u64,
    /// Received packets with a partial checksum (GSO, local), handed to
    /// the stack as trusted.
    pub rx_checksum_partial: u64,
    /// Received packets whose partial checksum we completed (`no_offload`).
    pub rx_checksum_completed: u64,
    /// Received packets larger than the receive buffer (dropped).
    pub rx_truncated: u64,
    /// Packets the kernel took.
    pub tx_packets: u64,
    /// Times the socket's buffer was full (the packets that did not fit
    /// wait in the link's backlog).
    pub tx_stalls: u64,
    /// Packets dropped: malformed, refused by the kernel, or beyond the
    /// backlog's bound.
    pub tx_dropped: u64,
    /// Packets waiting in the backlog now.
    pub tx_held: u64,
}

/// The raw-mode link (IP medium).
pub struct RawLink {
    rx: OwnedFd,
    tx: OwnedFd,
    interface: String,
    addr: Ipv4Addr,
    prefix_len: u8,
    mtu: usize,
    tcp: PortSet,
    udp: PortSet,
    ephemeral: RangeInclusive<u16>,
    table: Option<NftTable>,
    /// Ports added by `Link::open_port` (removed again by `close_port`).
    opened: Vec<(PortProto, u16)>,
    proc_net: ProcNet,
    trust_partial: bool,
    bufs: Vec<Vec<u8>>,
    /// Packets waiting for room in the socket's buffer.
    txq: TxQueue,
    stats: RawStats,
}

impl std::fmt::Debug for RawLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawLink")
            .field("interface", &self.interface)
            .field("addr", &self.addr)
            .field("tcp", &self.tcp)
            .field("udp", &self.udp)
            .field("table", &self.table.as_ref().map(|t| t.name()))
            .finish()
    }
}

impl RawLink {
    /// Opens the sockets and installs the nftables table, in the calling
    /// thread's network namespace. Needs CAP_NET_RAW (sockets) and
    /// CAP_NET_ADMIN (nftables); the error names the one missing.
    pub fn open(cfg: RawConfig) -> io::Result<RawLink> {
        let interface = match cfg.interface {
            Some(i) => i,
            None => netif::default_route_interface()?,
        };
        let ifindex = netif::ifindex(&interface)?;
        let (addr, prefix_len) = match cfg.addr {
            Some(a) => (a, netif::ipv4_of(&interface).map(|(_, p)| p).unwrap_or(32)),
            None => netif::ipv4_of(&interface)?,
        };
        let mtu = netif::mtu(&interface)?;
        let range = match cfg.ephemeral_ports {
            Some(r) => r,
            None => ephemeral_outside_kernel()?,
        };
        let tcp = PortSet {
            ports: cfg.tcp_ports,
            range: Some(range.clone()),
        };
        let udp = PortSet {
            ports: cfg.udp_ports,
            range: Some(range.clone()),
        };
        let prog = bpf::ipv4_filter(addr, &tcp, &udp)?;
        let mut proc_net = ProcNet::open()?;
        proc_net.refuse(addr, &tcp, &udp)?;

        // Receive: protocol 0 until the filter is on, so nothing unfiltered
        // is ever queued; then bind for IPv4 on the interface.
        let rx = netif::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM,
            0,
            "opening the raw-mode AF_PACKET socket",
        )?;
        bpf::attach(rx.as_raw_fd(), &prog)?;
        netif::setsockopt_int(&rx, libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)?;
        // Our own transmissions are not input (Linux 4.20+; older kernels
        // show them, and the filter drops them: their source is ours).
        let _ = netif::setsockopt_int(&rx, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1);
        netif::grow_buffer(&rx, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, 16 << 20);
        netif::bind_packet(&rx, ifindex, ETH_P_IP)
            .map_err(|e| netif::cap_error("binding the AF_PACKET socket", "CAP_NET_RAW", e))?;

        // Transmit: whole IPv4 packets, out of this interface.
        let tx = netif::socket(
            libc::AF_INET,
            libc::SOCK_RAW,
            libc::IPPROTO_RAW,
            "opening the raw IP socket",
        )?;
        let name = std::ffi::CString::new(interface.clone())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the option value is the NUL-terminated interface name.
        let r = unsafe {
            libc::setsockopt(
                tx.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_ptr() as *const libc::c_void,
                name.as_bytes_with_nul().len() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(netif::cap_error(
                "binding the raw IP socket to its interface",
                "CAP_NET_RAW",
                io::Error::last_os_error(),
            ));
        }
        netif::grow_buffer(&tx, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, 16 << 20);
        // Without IP_RECVERR a raw socket hides ENOBUFS (a full device
        // queue dropped the packet) as success: the packet would be lost
        // silently instead of held in the backlog and sent again.
        netif::setsockopt_int(&tx, libc::IPPROTO_IP, libc::IP_RECVERR, 1)?;

        // Before the stack sends its first packet, the kernel must stop
        // answering packets to the stack's ports.
        let table = if cfg.no_nftables {
            None
        } else {
            Some(NftTable::install(
                &nft::table_name(&interface, addr),
                addr,
                &tcp,
                &udp,
            )?)
        };
        Ok(RawLink {
            rx,
            tx,
            interface,
            addr,
            prefix_len,
            mtu,
            tcp,
            udp,
            ephemeral: range,
            table,
            opened: Vec::new(),
            proc_net,
            trust_partial: !cfg.no_offload,
            bufs: (0..BATCH).map(|_| vec![0u8; RX_BUF]).collect(),
            txq: TxQueue::default(),
            stats: RawStats::default(),
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The stack's ephemeral ports: give them to `StackConfig::ephemeral_ports`.
    pub fn ephemeral_ports(&self) -> RangeInclusive<u16> {
        self.ephemeral.clone()
    }

    /// The nftables table's name (`None` when disabled).
    pub fn table_name(&self) -> Option<&str> {
        self.table.as_ref().map(|t| t.name())
    }

    pub fn stats(&self) -> RawStats {
        let q = self.txq.counters();
        RawStats {
            tx_packets: q.sent,
            tx_stalls: q.stalls,
            tx_dropped: q.dropped(),
            tx_held: self.txq.held() as u64,
            ..self.stats
        }
    }

    /// A stack configuration for this link: its address, MTU and the
    /// ephemeral ports the link owns.
    pub fn stack_config(&self) -> daytona_core::stack::StackConfig {
        let mut c = daytona_core::stack::StackConfig::ip(self.addr, self.prefix_len);
        c.mtu = self.mtu;
        c.ephemeral_ports = self.ephemeral_ports();
        c
    }

    /// Changes the ports the stack owns (a new listener): the receive
    /// filter and the nftables rules are replaced.
    pub fn set_ports(&mut self, tcp_ports: &[u16], udp_ports: &[u16]) -> io::Result<()> {
        let tcp = PortSet {
            ports: tcp_ports.to_vec(),
            range: self.tcp.range.clone(),
        };
        let udp = PortSet {
            ports: udp_ports.to_vec(),
            range: self.udp.range.clone(),
        };
        let prog = bpf::ipv4_filter(self.addr, &tcp, &udp)?;
        self.proc_net.refuse(self.addr, &tcp, &udp)?;
        if let Some(t) = self.table.as_mut() {
            t.update(self.addr, &tcp, &udp)?;
        }
        bpf::attach(self.rx.as_raw_fd(), &prog)?;
        self.tcp = tcp;
        self.udp = udp;
        Ok(())
    }

    /// Removes the nftables table now (also done on drop), reporting errors.
    pub fn close(mut self) -> io::Result<()> {
        match self.table.take() {
            Some(mut t) => t.remove(),
            None => Ok(()),
        }
    }

    /// One `recvmmsg`; returns how many packets it appended and whether
    /// the socket may hold more.
    fn recv_some(&mut self, batch: &mut Batch) -> io::Result<(usize, bool)> {
        // SAFETY: these are plain C structs; all-zero is valid for each.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: plain C structs; all-zero is valid.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut cmsg = [[0u64; 8]; BATCH];
        for i in 0..BATCH {
            iov[i].iov_base = self.bufs[i].as_mut_ptr() as *mut libc::c_void;
            iov[i].iov_len = RX_BUF;
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_control = cmsg[i].as_mut_ptr() as *mut libc::c_void;
            msgs[i].msg_hdr.msg_controllen = std::mem::size_of_val(&cmsg[i]);
        }
        // SAFETY: every message points at a live buffer of the stated size
        // and a live control buffer; the arrays outlive the call.
        let n = unsafe { netif::recv_msgs(&self.rx, &mut msgs)? };
        if n == 0 {
            return Ok((0, false));
        }
        let mut got = 0;
        for (i, m) in msgs.iter().enumerate().take(n) {
            let len = m.msg_len as usize;
            if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || len > RX_BUF {
                self.stats.rx_truncated += 1;
                continue;
            }
            let status = aux_status(&m.msg_hdr);
            let pkt = &mut self.bufs[i][..len];
            let mut meta = FrameMeta::default();
            if status & libc::TP_STATUS_CSUMNOTREADY != 0 {
                // A local packet (a veth peer's GSO packet): its checksum
                // field holds the pseudo-header sum; it never crossed a wire.
                match (self.trust_partial, csum::partial_at(pkt)) {
                    (true, Some(p)) => {
                        meta.csum_partial = Some(p);
                        meta.csum_verified = true;
                        meta.gso_size = csum::gso_estimate(pkt, self.mtu);
                        self.stats.rx_gso += u64::from(meta.gso_size.is_some());
                        self.stats.rx_checksum_partial += 1;
                    }
                    _ => {
                        if csum::complete_l4_checksum(pkt) {
                            self.stats.rx_checksum_completed += 1;
                        }
                    }
                }
            }
            batch.push_with(pkt, meta);
            got += 1;
        }
        self.stats.rx_packets += got as u64;
        Ok((got, n == BATCH))
    }
}

/// Sends one chunk of IPv4 packets on the raw socket, each to its
/// destination address.
fn send_chunk(tx: &OwnedFd, pkts: &[(&[u8], FrameMeta)]) -> Sent {
    // SAFETY: plain C structs; all-zero is valid.
    let mut iov: [libc::iovec; CHUNK] = unsafe { std::mem::zeroed() };
    // SAFETY: plain C structs; all-zero is valid.
    let mut msgs: [libc::mmsghdr; CHUNK] = unsafe { std::mem::zeroed() };
    // SAFETY: plain C structs; all-zero is valid.
    let mut dst: [libc::sockaddr_in; CHUNK] = unsafe { std::mem::zeroed() };
    let n = pkts.len().min(CHUNK);
    for i in 0..n {
        // At least 20 bytes: checked by `send_batch`.
        let p = pkts[i].0;
        dst[i].sin_family = libc::AF_INET as libc::sa_family_t;
        dst[i].sin_addr.s_addr = u32::from_ne_bytes([p[16], p[17], p[18], p[19]]);
        iov[i].iov_base = p.as_ptr() as *mut libc::c_void;
        iov[i].iov_len = p.len();
        msgs[i].msg_hdr.msg_iov = &mut iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &mut dst[i] as *mut libc::sockaddr_in as *mut libc::c_void;
        msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
    }
    // SAFETY: the first n messages point at live packets, addresses and
    // iovecs, all of which outlive the call.
    unsafe { netif::send_msgs(tx, &mut msgs[..n]) }
}

/// `tp_status` of the `PACKET_AUXDATA` control message (0 if absent).
pub(crate) fn aux_status(h: &libc::msghdr) -> u32 {
    // SAFETY: the control buffer was filled by recvmmsg; CMSG_* walk it
    // within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                let aux =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::tpacket_auxdata);
                return aux.tp_status;
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    0
}

impl Link for RawLink {
    fn open_port(&mut self, proto: PortProto, port: u16) -> io::Result<()> {
        let (mut tcp, mut udp) = (self.tcp.ports.clone(), self.udp.ports.clone());
        let set = match proto {
            PortProto::Tcp => &mut tcp,
            PortProto::Udp => &mut udp,
        };
        if set.contains(&port) {
            return Ok(());
        }
        set.push(port);
        self.set_ports(&tcp, &udp)?;
        self.opened.push((proto, port));
        Ok(())
    }

    fn close_port(&mut self, proto: PortProto, port: u16) {
        // Only ports opened at run time go; those given at open stay.
        let Some(i) = self.opened.iter().position(|&o| o == (proto, port)) else {
            return;
        };
        self.opened.swap_remove(i);
        let (mut tcp, mut udp) = (self.tcp.ports.clone(), self.udp.ports.clone());
        match proto {
            PortProto::Tcp => tcp.retain(|&p| p != port),
            PortProto::Udp => udp.retain(|&p| p != port),
        }
        if let Err(e) = self.set_ports(&tcp, &udp) {
            eprintln!("daytona: raw link: closing port {port}: {e}");
        }
    }

    fn caps(&self) -> LinkCaps {
        LinkCaps {
            ethernet: false,
            mtu: self.mtu,
            max_segment: self.mtu,
            rx_checksum_verified: false,
            tx_checksum_offload: false,
        }
    }

    fn recv_batch(&mut self, now: Instant, batch: &mut Batch) -> io::Result<usize> {
        let tx = &self.tx;
        self.txq.flush(now, &mut |c| send_chunk(tx, c));
        let mut total = 0;
        while total < RX_MAX {
            let (got, more) = self.recv_some(batch)?;
            total += got;
            if !more {
                break;
            }
        }
        Ok(total)
    }

    fn send_batch(&mut self, now: Instant, batch: &Batch) -> io::Result<usize> {
        let max = self.mtu.max(20);
        let tx = &self.tx;
        let accepted = self
            .txq
            .send(now, batch.iter_meta(), 20..=max, |c| send_chunk(tx, c));
        Ok(accepted)
    }

    fn poll_at(&self) -> Option<Instant> {
        self.txq.poll_at()
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.rx.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_can_move_to_a_runtime_thread() {
        fn send<T: Send>() {}
        send::<RawLink>();
    }

    #[test]
    fn kernel_sockets_on_our_address_or_the_wildcard_are_found() {
        let me = Ipv4Addr::new(198, 18, 0, 2);
        let word = |a: Ipv4Addr| format!("{:08X}", u32::from_ne_bytes(a.octets()));
        let text = format!(
            "  sl  local_address rem_address   st\n\
             0: {}:0050 00000000:0000 0A\n\
             1: {}:1F90 00000000:0000 0A\n\
             2: {}:0016 00000000:0000 0A\n\
             3: {}:C350 {}:0050 01\n",
            word(me),
            word(Ipv4Addr::UNSPECIFIED),
            word(Ipv4Addr::LOCALHOST),
            word(me),
            word(Ipv4Addr::new(198, 18, 0, 1)),
        );
        assert_eq!(parse_kernel_sockets(&text, true, me), vec![80, 8080]);
        assert_eq!(
            parse_kernel_sockets(&text, false, me),
            vec![80, 8080, 50_000]
        );
        assert!(parse_kernel_sockets("header\ngarbage line here\n", true, me).is_empty());
    }

    #[test]
    fn ephemeral_range_avoids_the_kernels() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(32_768..=60_999));
        assert_eq!(parse_port_range("junk"), None);
        assert_eq!(parse_port_range("9 3"), None);
        assert_eq!(outside(&(32_768..=60_999)), Some(61_000..=65_535));
        assert_eq!(outside(&(10_000..=65_535)), Some(5_904..=9_999));
        assert_eq!(outside(&(1_024..=65_535)), None);
    }
}
