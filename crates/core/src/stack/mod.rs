//! The stack: one IPv4 address on one link, demultiplexing frames to TCP
//! connections, listeners and UDP sockets, answering ARP and ICMP echo, and
//! sending RSTs and ICMP errors where the RFCs say so.
//!
//! Sans-IO like the rest of the core: `handle_frame` / `handle_timeout`
//! are the inputs, `poll_transmit` / `poll_timeout` / `poll_event` the
//! outputs, and the socket calls (`tcp_*`, `udp_*`) the application's side.
//! After any input or socket call, the driver calls `poll_transmit` until it
//! returns `None`, then sleeps until `poll_timeout`.

pub mod arp;
pub mod config;
pub mod counters;
mod slab;
pub mod syncookie;
#[cfg(test)]
mod tests;

pub use config::{Medium, StackConfig};

/// Where a partial transport checksum is in a frame (see
/// [`Stack::tx_csum_partial`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialChecksum {
    /// Offset in the frame where checksumming starts (the TCP header).
    pub start: u16,
    /// Offset of the checksum field from `start`.
    pub offset: u16,
}

/// The TCP checksum field's offset in the TCP header (RFC 9293 §3.1).
const TCP_CHECKSUM_OFFSET: u16 = 16;
pub use counters::StackCounters;
pub use daytona_wire::EthernetAddress;

use crate::cc::CcRegistry;
use crate::observe::{ConnId, Event, EventKind, TcpInfo};
use crate::tcp::connection::window_scale_for;
use crate::tcp::{
    ConnParams, Connection, CookieOptions, IcmpError, IsnGenerator, Keepalive, Shutdown, State,
    TcpConfig,
};
use crate::time::{Duration, Instant};
use crate::Error;
use arp::{ArpCache, Lookup};
use daytona_wire::arp::Operation;
use daytona_wire::{
    ArpPacket, ArpRepr, ChecksumMode, Control, DstUnreachable, Ecn, EtherType, EthernetFrame,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, Ipv4Packet, Ipv4Repr, Protocol, SeqNum, TcpOptions,
    TcpPacket, TcpRepr, Timestamps, UdpPacket, UdpRepr,
};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

const ETHERNET_HEADER: usize = 14;
const IPV4_HEADER: usize = 20;
/// Control packets (RSTs, ICMP, UDP) waiting to be sent, at most.
const CONTROL_QUEUE_LIMIT: usize = 1024;

/// What the link knows about a received frame ([`Stack::handle_frame_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// The link validated the IP, TCP, UDP and ICMP checksums (a TAP with
    /// `VIRTIO_NET_HDR_F_DATA_VALID` or a partial checksum from the local
    /// kernel): skip verifying them.
    pub csum_verified: bool,
    /// The frame is a coalesced super-segment (GRO) of segments carrying
    /// this many payload bytes each.
    pub gso_size: Option<u16>,
}

/// A TCP connection owned by the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnHandle {
    index: u32,
    generation: u32,
}

/// A listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerHandle {
    index: u32,
    generation: u32,
}

/// A UDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpHandle {
    index: u32,
    generation: u32,
}

/// Raw 64-bit forms of the handles, for FFI and other places that need a
/// plain integer. A stale or forged raw handle is harmless: the stack checks
/// the generation and answers `Error::InvalidHandle`.
macro_rules! raw_handle {
    ($($t:ident),*) => {$(
        impl $t {
            /// The handle as one integer (generation in the high half).
            pub fn into_raw(self) -> u64 {
                (u64::from(self.generation) << 32) | u64::from(self.index)
            }

            /// The handle from `into_raw`'s integer.
            pub fn from_raw(raw: u64) -> Self {
                $t {
                    index: raw as u32,
                    generation: (raw >> 32) as u32,
                }
            }
        }
    )*};
}
raw_handle!(ConnHandle, ListenerHandle, UdpHandle);

type Tuple = (SocketAddrV4, SocketAddrV4);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Handed to the application.
    App,
    /// Half-open or waiting in a listener's accept queue.
    Listener(ListenerHandle),
    /// The application closed it; freed once CLOSED.
    Released,
}

struct ConnSlot {
    conn: Connection,
    owner: Owner,
    in_accept_queue: bool,
    scheduled: Option<Instant>,
    in_ready: bool,
    /// Buffer capacity counted against `max_buffer_memory`.
    charged: usize,
}

struct Listener {
    local: SocketAddrV4,
    backlog: usize,
    config: TcpConfig,
    syn_queue: usize,
    accept_queue: VecDeque<ConnHandle>,
}

struct UdpSocket {
    local: SocketAddrV4,
    queue: VecDeque<(SocketAddrV4, Vec<u8>)>,
}

/// The stack.
pub struct Stack {
    config: StackConfig,
    registry: CcRegistry,
    isn: IsnGenerator,
    cookie_key: IsnGenerator,
    conns: Slab<ConnSlot>,
    /// Segment size of the last super-segment `poll_transmit` returned.
    last_gso: Option<u16>,
    last_csum_partial: Option<PartialChecksum>,
    /// Metadata of the frame being handled (`handle_frame_with`).
    rx_meta: RxMeta,
    by_tuple: HashMap<Tuple, ConnHandle>,
    listeners: Slab<Listener>,
    listener_by_port: HashMap<u16, ListenerHandle>,
    udp: Slab<UdpSocket>,
    udp_by_port: HashMap<u16, UdpHandle>,
    arp: ArpCache,
    arp_out: VecDeque<(ArpRepr, EthernetAddress)>,
    /// Connections waiting for their next hop's MAC address.
    arp_waiting: HashMap<Ipv4Addr, Vec<ConnHandle>>,
    /// IP packets built by the stack itself, without link header.
    control: VecDeque<Vec<u8>>,
    pool: Vec<Vec<u8>>,
    ready: VecDeque<ConnHandle>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    events: VecDeque<Event>,
    counters: StackCounters,
    next_conn_id: u64,
    next_ephemeral: u32,
    buffer_memory: usize,
    ip_ident: u16,
    icmp_window: Instant,
    icmp_sent: u32,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("addr", &self.config.addr)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Builds a stack. Fails with `InvalidArgument` on an unusable
    /// configuration (MTU out of range, unknown congestion controller,
    /// empty port range).
    pub fn new(config: StackConfig, registry: CcRegistry) -> Result<Stack, Error> {
        if !(68..=65_535).contains(&config.mtu)
            || !registry.contains(&config.tcp.congestion_control)
            || config.ephemeral_ports.is_empty()
            || *config.ephemeral_ports.start() == 0
            || config.prefix_len > 32
        {
            return Err(Error::InvalidArgument);
        }
        let mut isn_key = [0u8; 16];
        isn_key.copy_from_slice(&config.secret[..16]);
        let mut cookie_key = [0u8; 16];
        cookie_key.copy_from_slice(&config.secret[16..]);
        Ok(Stack {
            isn: IsnGenerator::new(isn_key),
            cookie_key: IsnGenerator::new(cookie_key),
            registry,
            conns: Slab::default(),
            last_gso: None,
            last_csum_partial: None,
            rx_meta: RxMeta::default(),
            by_tuple: HashMap::new(),
            listeners: Slab::default(),
            listener_by_port: HashMap::new(),
            udp: Slab::default(),
            udp_by_port: HashMap::new(),
            arp: ArpCache::default(),
            arp_out: VecDeque::new(),
            arp_waiting: HashMap::new(),
            control: VecDeque::new(),
            pool: Vec::new(),
            ready: VecDeque::new(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            counters: StackCounters::default(),
            next_conn_id: 1,
            next_ephemeral: 0,
            buffer_memory: 0,
            ip_ident: 0,
            icmp_window: Instant::ZERO,
            icmp_sent: 0,
            config,
        })
    }

    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    pub fn counters(&self) -> &StackCounters {
        &self.counters
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.config.addr
    }

    /// Number of TCP connections in any state.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Every TCP connection the stack holds and its state, including those
    /// the application has closed that are still sending (FIN-WAIT,
    /// LAST-ACK, CLOSING) and those not accepted yet.
    pub fn tcp_states(&self) -> impl Iterator<Item = (ConnHandle, State)> + '_ {
        self.conns
            .iter()
            .map(|(index, generation, slot)| (ConnHandle { index, generation }, slot.conn.state()))
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= self.config.max_events.max(1) {
            self.events.pop_front();
            self.counters.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    fn stack_event(&mut self, now: Instant, kind: EventKind) {
        self.push_event(Event {
            time: now,
            conn: ConnId(0),
            tag: 0,
            kind,
        });
    }

    fn link_header_len(&self) -> usize {
        match self.config.medium {
            Medium::Ethernet { .. } => ETHERNET_HEADER,
            Medium::Ip => 0,
        }
    }

    fn mss_limit(&self) -> u16 {
        (self.config.mtu - 40).min(usize::from(u16::MAX)) as u16
    }

    // ================= input =================

    /// Processes one received frame (Ethernet) or IP packet (`Medium::Ip`).
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) {
        self.handle_frame_with(now, frame, RxMeta::default());
    }

    /// Processes one received frame with what the link knows about it:
    /// checksums the kernel validated are not verified again, and a
    /// coalesced super-segment (GRO, up to 64 KiB) counts as segments of
    /// its `gso_size` for ACK pacing, as Linux's `tcp_measure_rcv_mss`.
    pub fn handle_frame_with(&mut self, now: Instant, frame: &[u8], meta: RxMeta) {
        self.rx_meta = meta;
        self.handle_frame_inner(now, frame);
        self.rx_meta = RxMeta::default();
    }

    fn handle_frame_inner(&mut self, now: Instant, frame: &[u8]) {
        self.counters.frames_in += 1;
        match self.config.medium {
            Medium::Ip => self.handle_ipv4(now, frame),
            Medium::Ethernet { mac } => {
                let Ok(eth) = EthernetFrame::new_checked(frame) else {
                    self.counters.eth_truncated += 1;
                    return;
                };
                let dst = eth.dst_addr();
                if dst != mac && !dst.is_broadcast() {
                    self.counters.eth_not_for_us += 1;
                    return;
                }
                match eth.ethertype() {
                    EtherType::Ipv4 => self.handle_ipv4(now, eth.payload()),
                    EtherType::Arp => self.handle_arp(now, eth.payload(), mac),
                    EtherType::Unknown(_) => self.counters.eth_unknown_type += 1,
                }
            }
        }
    }

    /// RFC 826: answer requests for our address, learn from packets that
    /// concern us.
    fn handle_arp(&mut self, now: Instant, payload: &[u8], mac: EthernetAddress) {
        let Ok(repr) = ArpPacket::new_checked(payload).and_then(|p| ArpRepr::parse(&p)) else {
            self.counters.arp_malformed += 1;
            return;
        };
        let sender = repr.source_protocol_addr;
        let for_us = repr.target_protocol_addr == self.config.addr;
        // RFC 826 "merge": update an existing entry, add one if for us.
        if (for_us || self.arp.is_pending(sender)) && repr.source_hardware_addr.is_unicast() {
            self.arp.insert(
                sender,
                repr.source_hardware_addr,
                now,
                self.config.arp_cache_timeout,
            );
            if let Some(waiting) = self.arp_waiting.remove(&sender) {
                for h in waiting {
                    self.mark_ready(h);
                }
            }
        }
        if for_us && repr.operation == Operation::Request {
            self.counters.arp_requests_answered += 1;
            let reply = ArpRepr {
                operation: Operation::Reply,
                source_hardware_addr: mac,
                source_protocol_addr: self.config.addr,
                target_hardware_addr: repr.source_hardware_addr,
                target_protocol_addr: sender,
            };
            self.arp_out.push_back((reply, repr.source_hardware_addr));
        }
    }

    fn handle_ipv4(&mut self, now: Instant, data: &[u8]) {
        let packet = match Ipv4Packet::new_checked(data) {
            Ok(p) => p,
            Err(_) => {
                self.counters.ip_malformed += 1;
                return;
            }
        };
        let ip = match Ipv4Repr::parse(&packet, self.verify_checksums()) {
            Ok(r) => r,
            Err(e) => {
                let c = &mut self.counters;
                StackCounters::wire_error(e, &mut c.ip_malformed, &mut c.ip_bad_checksum);
                return;
            }
        };
        if ip.dst_addr != self.config.addr {
            self.counters.ip_not_for_us += 1;
            return;
        }
        if packet.is_fragment() {
            // Fragments are counted and dropped: we set DF and rely on
            // PMTU discovery (RFC 1191) instead of reassembly.
            self.counters.ip_fragments_dropped += 1;
            return;
        }
        let payload = packet.payload();
        match ip.protocol {
            Protocol::Tcp => self.handle_tcp(now, &ip, payload),
            Protocol::Icmp => self.handle_icmp(now, &ip, payload),
            Protocol::Udp => self.handle_udp(now, &ip, data, payload),
            Protocol::Unknown(_) => self.counters.ip_unknown_protocol += 1,
        }
    }

    /// Whether to verify the checksums of the frame being handled.
    fn verify_checksums(&self) -> bool {
        self.config.verify_checksums && !self.rx_meta.csum_verified
    }

    fn checksum_mode(&self) -> ChecksumMode {
        if self.verify_checksums() {
            ChecksumMode::Verify
        } else {
            ChecksumMode::Ignore
        }
    }

    fn handle_tcp(&mut self, now: Instant, ip: &Ipv4Repr, payload: &[u8]) {
        let seg = match TcpPacket::new_checked(payload)
            .and_then(|p| TcpRepr::parse(&p, &ip.src_addr, &ip.dst_addr, self.checksum_mode()))
        {
            Ok(seg) => seg,
            Err(e) => {
                let c = &mut self.counters;
                StackCounters::wire_error(e, &mut c.tcp_malformed, &mut c.tcp_bad_checksum);
                return;
            }
        };
        let local = SocketAddrV4::new(ip.dst_addr, seg.dst_port);
        let remote = SocketAddrV4::new(ip.src_addr, seg.src_port);
        if let Some(&h) = self.by_tuple.get(&(local, remote)) {
            let reopen = self.listener_by_port.contains_key(&local.port())
                && self
                    .conns
                    .get(h.index, h.generation)
                    .is_some_and(|s| s.conn.time_wait_accepts(&seg));
            if !reopen {
                if self.accept_queue_refuses(h, &seg) {
                    // Linux (tcp_check_req with tcp_abort_on_overflow=0):
                    // the ACK that would complete the handshake is dropped
                    // while the accept queue is full; the connection stays
                    // in SYN-RECEIVED and its SYN-ACK retransmission gets
                    // the peer to ACK again later.
                    self.counters.tcp_listen_overflows += 1;
                    if let Some(local) = self.listener_addr_of(h) {
                        self.stack_event(now, EventKind::ListenOverflow { local });
                    }
                    return;
                }
                if let Some(slot) = self.conns.get_mut(h.index, h.generation) {
                    slot.conn.rx_gso_size = self.rx_meta.gso_size;
                    slot.conn.handle_segment(now, &seg, ip.ecn == Ecn::Ce);
                    slot.conn.rx_gso_size = None;
                }
                self.after_conn(now, h);
                return;
            }
            // RFC 6191: the SYN retires the TIME-WAIT connection and goes
            // to the listener as a new connection.
            self.by_tuple.remove(&(local, remote));
            if let Some(slot) = self.conns.get_mut(h.index, h.generation) {
                slot.conn.finish_time_wait(now);
            }
            self.after_conn(now, h);
        }
        if let Some(&lh) = self.listener_by_port.get(&local.port()) {
            self.listen_input(now, lh, local, remote, &seg);
            return;
        }
        self.counters.tcp_no_listener += 1;
        self.reset_for(local, remote, &seg);
    }

    /// Whether `seg` would complete the handshake of a listener's
    /// connection whose accept queue is full.
    fn accept_queue_refuses(&self, h: ConnHandle, seg: &TcpRepr<'_>) -> bool {
        let Some(slot) = self.conns.get(h.index, h.generation) else {
            return false;
        };
        let Owner::Listener(lh) = slot.owner else {
            return false;
        };
        if slot.in_accept_queue
            || slot.conn.state() != State::SynReceived
            || seg.ack.is_none()
            || matches!(seg.control, Control::Rst | Control::Syn)
        {
            return false;
        }
        self.listeners
            .get(lh.index, lh.generation)
            .is_some_and(|l| l.accept_queue.len() >= l.backlog)
    }

    fn listener_addr_of(&self, h: ConnHandle) -> Option<SocketAddrV4> {
        let slot = self.conns.get(h.index, h.generation)?;
        let Owner::Listener(lh) = slot.owner else {
            return None;
        };
        self.listeners.get(lh.index, lh.generation).map(|l| l.local)
    }

    /// RFC 9293 §3.10.7.1: a segment for no connection gets a RST, unless it
    /// is a RST.
    fn reset_for(&mut self, local: SocketAddrV4, remote: SocketAddrV4, seg: &TcpRepr<'_>) {
        if seg.control == Control::Rst {
            return;
        }
        let (seq, ack) = match seg.ack {
            // <SEQ=SEG.ACK><CTL=RST>
            Some(ack) => (ack, None),
            // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
            None => (SeqNum(0), Some(seg.seq + seg.seq_len())),
        };
        let rst = TcpRepr::rst(local.port(), remote.port(), seq, ack);
        self.counters.tcp_rst_sent += 1;
        self.queue_tcp(local, remote, &rst);
    }

    /// RFC 9293 §3.10.7.2: a segment arrives for a listener.
    fn listen_input(
        &mut self,
        now: Instant,
        lh: ListenerHandle,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr<'_>,
    ) {
        match (seg.control, seg.ack) {
            // First: an incoming RST is ignored.
            (Control::Rst, _) => {}
            (Control::Syn, None) => self.listen_syn(now, lh, local, remote, seg),
            // Second: any ACK, unless it returns a valid SYN cookie, is
            // answered with <SEQ=SEG.ACK><CTL=RST>.
            (Control::None | Control::Fin, Some(ack))
                if !self.cookie_ack(now, lh, local, remote, seg, ack) =>
            {
                self.reset_for(local, remote, seg);
            }
            (Control::Syn, Some(_)) => self.reset_for(local, remote, seg),
            // No SYN, no ACK, no RST: drop.
            _ => {}
        }
    }

    fn connection_limits_ok(&self, config: &TcpConfig) -> bool {
        self.conns.len() < self.config.max_connections
            && self.buffer_memory + config.send_buffer + config.recv_buffer
                <= self.config.max_buffer_memory
    }

    fn conn_params(
        &mut self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNum,
        config: TcpConfig,
    ) -> Result<ConnParams, Error> {
        let cc = self
            .registry
            .build(&config.congestion_control)
            .map_err(|_| Error::InvalidArgument)?;
        let id = ConnId(self.next_conn_id);
        self.next_conn_id += 1;
        Ok(ConnParams {
            id,
            local,
            remote,
            iss,
            mss_limit: self.mss_limit(),
            ts_offset: self.ts_offset(local, remote),
            config,
            cc,
            // Room for the IP and TCP headers with options.
            tso_max: self
                .config
                .tso_max
                .map_or(0, |m| m.min(65_535).saturating_sub(IPV4_HEADER + 60) as u32),
            tx_csum_offload: self.config.tx_csum_offload,
        })
    }

    /// RFC 7323 §5.4: a per-connection timestamp offset from a keyed hash.
    fn ts_offset(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        self.isn.hash_tuple(local, remote, &[1]) as u32
    }

    fn listen_syn(
        &mut self,
        now: Instant,
        lh: ListenerHandle,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr<'_>,
    ) {
        let Some(listener) = self.listeners.get(lh.index, lh.generation) else {
            return;
        };
        let config = listener.config.clone();
        let accept_full = listener.accept_queue.len() >= listener.backlog;
        let syn_full = listener.syn_queue >= self.config.syn_backlog;
        let listen_addr = listener.local;
        if !self.connection_limits_ok(&config) {
            self.counters.tcp_limit_drops += 1;
            return;
        }
        if accept_full {
            // Linux drops the SYN while the accept queue is full.
            self.counters.tcp_listen_overflows += 1;
            self.stack_event(now, EventKind::ListenOverflow { local: listen_addr });
            return;
        }
        if syn_full {
            self.send_cookie_syn_ack(now, local, remote, seg, &config);
            return;
        }
        let iss = self.isn.isn(local, remote, now);
        let Ok(params) = self.conn_params(local, remote, iss, config) else {
            return;
        };
        let conn = Connection::accept(params, seg, now);
        let h = self.insert_conn(conn, Owner::Listener(lh));
        if let Some(l) = self.listeners.get_mut(lh.index, lh.generation) {
            l.syn_queue += 1;
        }
        self.counters.tcp_passive_opens += 1;
        self.after_conn(now, h);
    }

    /// RFC 4987 §3.6: answer a SYN statelessly with a cookie in our ISS.
    fn send_cookie_syn_ack(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr<'_>,
        config: &TcpConfig,
    ) {
        let peer_mss = seg.options.mss.unwrap_or(536);
        let iss = syncookie::encode(&self.cookie_key, local, remote, seg.seq, peer_mss, now);
        let mut options = TcpOptions {
            mss: Some(self.mss_limit().min(config.mss_clamp.unwrap_or(u16::MAX))),
            ..TcpOptions::default()
        };
        // Without timestamps there is nowhere to keep window scale and
        // SACK-permitted, so (as Linux) they are not offered.
        if let (Some(ts), true) = (seg.options.timestamps, config.timestamps) {
            let ws = (config.window_scaling && seg.options.window_scale.is_some())
                .then(|| window_scale_for(config.recv_buffer_limit()));
            let sack = config.sack && seg.options.sack_permitted;
            let cookie = syncookie::TsCookie {
                window_scale: seg.options.window_scale.filter(|_| ws.is_some()),
                sack_permitted: sack,
            };
            let tsval = (now.total_millis() as u32).wrapping_add(self.ts_offset(local, remote));
            options.timestamps = Some(Timestamps {
                tsval: syncookie::ts_encode(tsval, cookie),
                tsecr: ts.tsval,
            });
            options.window_scale = ws;
            options.sack_permitted = sack;
        }
        let syn_ack = TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: iss,
            ack: Some(seg.seq + 1),
            control: Control::Syn,
            psh: false,
            ece: false,
            cwr: false,
            window: config.recv_buffer.min(65_535) as u16,
            urgent: None,
            options,
            payload: &[],
        };
        self.counters.tcp_syn_cookies_sent += 1;
        self.stack_event(now, EventKind::SynCookieSent);
        self.queue_tcp(local, remote, &syn_ack);
    }

    /// An ACK for a listener: complete the handshake if it carries a valid
    /// SYN cookie. Returns false when it does not.
    fn cookie_ack(
        &mut self,
        now: Instant,
        lh: ListenerHandle,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr<'_>,
        ack: SeqNum,
    ) -> bool {
        let peer_isn = seg.seq - 1;
        let cookie = ack - 1;
        let Some(peer_mss) =
            syncookie::decode(&self.cookie_key, local, remote, peer_isn, cookie, now)
        else {
            self.counters.tcp_syn_cookies_invalid += 1;
            return false;
        };
        let Some(listener) = self.listeners.get(lh.index, lh.generation) else {
            return false;
        };
        let config = listener.config.clone();
        if listener.accept_queue.len() >= listener.backlog || !self.connection_limits_ok(&config) {
            self.counters.tcp_listen_overflows += 1;
            return true; // drop silently; the peer retransmits
        }
        let ts = seg
            .options
            .timestamps
            .and_then(|t| syncookie::ts_decode(t.tsecr));
        let options = CookieOptions {
            irs: peer_isn,
            peer_mss,
            window_scale: ts.and_then(|t| t.window_scale),
            sack_permitted: ts.is_some_and(|t| t.sack_permitted),
        };
        let Ok(params) = self.conn_params(local, remote, cookie, config) else {
            return false;
        };
        self.counters.tcp_syn_cookies_valid += 1;
        self.counters.tcp_passive_opens += 1;
        let conn = Connection::accept_cookie(params, &options, seg, now);
        let h = self.insert_conn(conn, Owner::Listener(lh));
        if let Some(l) = self.listeners.get_mut(lh.index, lh.generation) {
            // Counted in the SYN queue until after_conn promotes it.
            l.syn_queue += 1;
        }
        self.after_conn(now, h);
        true
    }

    fn handle_icmp(&mut self, now: Instant, ip: &Ipv4Repr, payload: &[u8]) {
        let repr = match Icmpv4Packet::new_checked(payload)
            .and_then(|p| Icmpv4Repr::parse(&p, self.verify_checksums()))
        {
            Ok(r) => r,
            Err(_) => {
                self.counters.icmp_malformed += 1;
                return;
            }
        };
        match repr {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                let reply = Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                self.counters.icmp_echo_replied += 1;
                self.queue_icmp(ip.src_addr, &reply);
            }
            Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu,
                header,
                data,
            } => {
                let mtu = (code == DstUnreachable::FragRequired && next_hop_mtu != 0)
                    .then_some(next_hop_mtu);
                self.icmp_error(now, ip.src_addr, 3, u8::from(code), mtu, &header, data);
            }
            Icmpv4Repr::TimeExceeded { code, header, data } => {
                self.icmp_error(now, ip.src_addr, 11, code, None, &header, data);
            }
            Icmpv4Repr::EchoReply { .. } | Icmpv4Repr::Other { .. } => {}
        }
    }

    /// Delivers an ICMP error to the connection whose segment it quotes
    /// (RFC 1122 §4.2.3.9, RFC 5927).
    #[allow(clippy::too_many_arguments)]
    fn icmp_error(
        &mut self,
        now: Instant,
        source: Ipv4Addr,
        icmp_type: u8,
        code: u8,
        next_hop_mtu: Option<u16>,
        header: &Ipv4Repr,
        data: &[u8],
    ) {
        if header.protocol != Protocol::Tcp || header.src_addr != self.config.addr || data.len() < 8
        {
            self.counters.icmp_errors_unmatched += 1;
            return;
        }
        let sport = u16::from_be_bytes([data[0], data[1]]);
        let dport = u16::from_be_bytes([data[2], data[3]]);
        let seq = SeqNum(u32::from_be_bytes([data[4], data[5], data[6], data[7]]));
        let local = SocketAddrV4::new(header.src_addr, sport);
        let remote = SocketAddrV4::new(header.dst_addr, dport);
        let Some(&h) = self.by_tuple.get(&(local, remote)) else {
            self.counters.icmp_errors_unmatched += 1;
            return;
        };
        self.counters.icmp_errors_delivered += 1;
        if let Some(slot) = self.conns.get_mut(h.index, h.generation) {
            slot.conn.handle_icmp_error(
                now,
                &IcmpError {
                    source,
                    icmp_type,
                    code,
                    next_hop_mtu,
                    seq,
                },
            );
        }
        self.after_conn(now, h);
    }

    fn handle_udp(&mut self, now: Instant, ip: &Ipv4Repr, ip_packet: &[u8], payload: &[u8]) {
        let repr = match UdpPacket::new_checked(payload)
            .and_then(|p| UdpRepr::parse(&p, &ip.src_addr, &ip.dst_addr, self.checksum_mode()))
        {
            Ok(r) => r,
            Err(e) => {
                let c = &mut self.counters;
                StackCounters::wire_error(e, &mut c.udp_malformed, &mut c.udp_bad_checksum);
                return;
            }
        };
        let Some(&h) = self.udp_by_port.get(&repr.dst_port) else {
            self.counters.udp_no_port += 1;
            // RFC 1122 §4.1.3.1: port unreachable, quoting the datagram.
            self.send_icmp_error(now, ip, ip_packet, DstUnreachable::PortUnreachable);
            return;
        };
        let limit = self.config.udp_queue;
        let remote = SocketAddrV4::new(ip.src_addr, repr.src_port);
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(repr.payload);
        match self.udp.get_mut(h.index, h.generation) {
            Some(sock) if sock.queue.len() < limit => sock.queue.push_back((remote, buf)),
            _ => {
                self.counters.udp_queue_full += 1;
                self.pool.push(buf);
            }
        }
    }

    /// Sends a destination-unreachable about `ip_packet`, rate-limited
    /// (RFC 1812 §4.3.2.8).
    fn send_icmp_error(
        &mut self,
        now: Instant,
        ip: &Ipv4Repr,
        ip_packet: &[u8],
        code: DstUnreachable,
    ) {
        if now - self.icmp_window >= Duration::from_secs(1) {
            self.icmp_window = now;
            self.icmp_sent = 0;
        }
        if self.icmp_sent >= self.config.icmp_rate_limit {
            self.counters.icmp_rate_limited += 1;
            return;
        }
        self.icmp_sent += 1;
        self.counters.icmp_errors_sent += 1;
        // RFC 1812 §4.3.2.3: quote as much as fits in 576 bytes.
        let hl = Ipv4Packet::new_unchecked(ip_packet).header_len();
        let data = ip_packet.get(hl..).unwrap_or(&[]);
        let data = &data[..data.len().min(576 - 20 - 8 - 20)];
        let msg = Icmpv4Repr::DstUnreachable {
            code,
            next_hop_mtu: 0,
            header: *ip,
            data,
        };
        self.queue_icmp(ip.src_addr, &msg);
    }

    // ================= output =================

    fn take_buf(&mut self, len: usize) -> Vec<u8> {
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        v.resize(len, 0);
        v
    }

    fn next_ident(&mut self) -> u16 {
        self.ip_ident = self.ip_ident.wrapping_add(1);
        self.ip_ident
    }

    fn ip_header(&mut self, dst: Ipv4Addr, protocol: Protocol, payload_len: usize) -> Ipv4Repr {
        Ipv4Repr {
            src_addr: self.config.addr,
            dst_addr: dst,
            protocol,
            payload_len,
            hop_limit: self.config.ttl,
            dscp: 0,
            ecn: Ecn::NotEct,
            ident: self.next_ident(),
            // RFC 1191: DF on everything, for path MTU discovery.
            dont_frag: true,
        }
    }

    fn push_control(&mut self, packet: Vec<u8>) {
        if self.control.len() >= CONTROL_QUEUE_LIMIT {
            self.counters.arp_unresolved_drops += 1;
            self.pool.push(packet);
            return;
        }
        self.control.push_back(packet);
    }

    fn queue_tcp(&mut self, local: SocketAddrV4, remote: SocketAddrV4, repr: &TcpRepr<'_>) {
        let len = repr.buffer_len();
        let mut v = self.take_buf(IPV4_HEADER + len);
        let ip = self.ip_header(*remote.ip(), Protocol::Tcp, len);
        if ip.emit(&mut v).is_err() {
            return;
        }
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut v[IPV4_HEADER..]),
            local.ip(),
            remote.ip(),
            ChecksumMode::Compute,
        );
        self.push_control(v);
    }

    fn queue_icmp(&mut self, dst: Ipv4Addr, repr: &Icmpv4Repr<'_>) {
        let len = repr.buffer_len();
        if IPV4_HEADER + len > self.config.mtu {
            return;
        }
        let mut v = self.take_buf(IPV4_HEADER + len);
        let ip = self.ip_header(dst, Protocol::Icmp, len);
        if ip.emit(&mut v).is_err() || repr.emit(&mut v[IPV4_HEADER..]).is_err() {
            return;
        }
        self.push_control(v);
    }

    /// The MAC address to send to `dst` through, or `None` to wait for ARP
    /// (a request is queued when due). `Ok(None)` on an IP link.
    fn resolve(&mut self, now: Instant, dst: Ipv4Addr) -> Result<Option<EthernetAddress>, Lookup> {
        let Medium::Ethernet { mac } = self.config.medium else {
            return Ok(None);
        };
        let next_hop = if self.config.on_link(dst) {
            dst
        } else {
            self.config.gateway.unwrap_or(dst)
        };
        match self.arp.lookup(
            next_hop,
            now,
            self.config.arp_retry,
            self.config.arp_max_tries,
        ) {
            Lookup::Found(m) => Ok(Some(m)),
            Lookup::Request => {
                self.queue_arp_request(next_hop, mac);
                Err(Lookup::Waiting)
            }
            other => Err(other),
        }
    }

    fn queue_arp_request(&mut self, target: Ipv4Addr, mac: EthernetAddress) {
        self.counters.arp_requests_sent += 1;
        let req = ArpRepr {
            operation: Operation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: self.config.addr,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target,
        };
        self.arp_out.push_back((req, EthernetAddress::BROADCAST));
    }

    fn next_hop_of(&self, dst: Ipv4Addr) -> Ipv4Addr {
        if self.config.on_link(dst) {
            dst
        } else {
            self.config.gateway.unwrap_or(dst)
        }
    }

    /// Writes the link header for an IP packet of `ip_len` bytes already at
    /// `buf[link_header_len()..]`; returns the frame length.
    fn finish_frame(
        &mut self,
        buf: &mut [u8],
        ip_len: usize,
        mac: Option<EthernetAddress>,
    ) -> usize {
        self.counters.frames_out += 1;
        match (self.config.medium, mac) {
            (Medium::Ethernet { mac: ours }, Some(theirs)) => {
                let eth = EthernetRepr {
                    src_addr: ours,
                    dst_addr: theirs,
                    ethertype: EtherType::Ipv4,
                };
                // The caller sized `buf` for the link header.
                let _ = eth.emit(buf);
                ETHERNET_HEADER + ip_len
            }
            _ => ip_len,
        }
    }

    /// Writes the next frame to send into `buf` (at least MTU + 14 bytes)
    /// and returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.last_gso = None;
        self.last_csum_partial = None;
        let lh = self.link_header_len();
        if buf.len() < lh + self.config.mtu {
            return None;
        }
        // ARP first: it unblocks everything else.
        if let (Some((arp, dst)), Medium::Ethernet { mac }) =
            (self.arp_out.pop_front(), self.config.medium)
        {
            let eth = EthernetRepr {
                src_addr: mac,
                dst_addr: dst,
                ethertype: EtherType::Arp,
            };
            if eth.emit(buf).is_ok() && arp.emit(&mut buf[ETHERNET_HEADER..]).is_ok() {
                self.counters.frames_out += 1;
                return Some(ETHERNET_HEADER + daytona_wire::arp::PACKET_LEN);
            }
        }
        // Control packets built by the stack.
        for _ in 0..self.control.len() {
            let Some(packet) = self.control.pop_front() else {
                break;
            };
            let dst = Ipv4Packet::new_unchecked(&packet[..]).dst_addr();
            match self.resolve(now, dst) {
                Ok(mac) => {
                    let n = packet.len();
                    buf[lh..lh + n].copy_from_slice(&packet);
                    self.pool.push(packet);
                    return Some(self.finish_frame(buf, n, mac));
                }
                Err(Lookup::Failed) => {
                    self.counters.arp_unresolved_drops += 1;
                    self.pool.push(packet);
                }
                Err(_) => self.control.push_back(packet),
            }
        }
        // Connections with something to send, round robin.
        while let Some(h) = self.ready.pop_front() {
            let Some(slot) = self.conns.get_mut(h.index, h.generation) else {
                continue;
            };
            slot.in_ready = false;
            let dst = *slot.conn.remote().ip();
            let mac = match self.resolve(now, dst) {
                Ok(mac) => mac,
                Err(_) => {
                    let hop = self.next_hop_of(dst);
                    self.arp_waiting.entry(hop).or_default().push(h);
                    continue;
                }
            };
            let tcp_start = lh + IPV4_HEADER;
            let end = (lh + self.config.max_frame_len() - self.link_header_len()).min(buf.len());
            let Some(slot) = self.conns.get_mut(h.index, h.generation) else {
                continue;
            };
            // A super-segment must fit the caller's buffer.
            slot.conn.limit_tso((end - tcp_start).saturating_sub(60));
            let sent = slot.conn.poll_transmit(now, &mut buf[tcp_start..end]);
            // RFC 3168 §6.1.2: ECT(0) on new data of an ECN connection.
            let ect = slot.conn.tx_ect();
            self.last_gso = slot.conn.tx_gso_size();
            self.last_csum_partial = slot.conn.tx_csum_partial().then_some(PartialChecksum {
                start: tcp_start as u16,
                offset: TCP_CHECKSUM_OFFSET,
            });
            self.after_conn_inner(now, h, false);
            if let Some(n) = sent {
                let mut ip = self.ip_header(dst, Protocol::Tcp, n);
                if ect {
                    ip.ecn = Ecn::Ect0;
                }
                if ip.emit(&mut buf[lh..]).is_err() {
                    continue;
                }
                self.mark_ready(h);
                return Some(self.finish_frame(buf, IPV4_HEADER + n, mac));
            }
        }
        // Connections may have asked for ARP resolution just now.
        if !self.arp_out.is_empty() {
            return self.poll_transmit(now, buf);
        }
        None
    }

    /// When the frame `poll_transmit` returned last is a TCP super-segment
    /// (`StackConfig::tso_max`): the payload size of the segments the link
    /// must cut it into (virtio `gso_size`). Its checksum is complete
    /// unless [`tx_csum_partial`](Self::tx_csum_partial) says otherwise.
    pub fn tx_gso_size(&self) -> Option<u16> {
        self.last_gso
    }

    /// When the frame `poll_transmit` returned last is a super-segment with
    /// checksum offload (`StackConfig::tx_csum_offload`): where its partial
    /// TCP checksum is. The field holds the pseudo-header sum only (folded,
    /// not complemented, with the TCP length of the whole super-segment);
    /// the link must complete it (virtio `VIRTIO_NET_HDR_F_NEEDS_CSUM` with
    /// these as `csum_start`/`csum_offset`).
    pub fn tx_csum_partial(&self) -> Option<PartialChecksum> {
        self.last_csum_partial
    }

    /// The earliest time `handle_timeout` must be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let conn_timer = loop {
            match self.timers.peek() {
                Some(Reverse((t, index, generation))) => {
                    let valid = self
                        .conns
                        .get(*index, *generation)
                        .is_some_and(|s| s.scheduled == Some(*t));
                    if valid {
                        break Some(*t);
                    }
                    self.timers.pop();
                }
                None => break None,
            }
        };
        match (conn_timer, self.arp.next_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((t, index, generation))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let h = ConnHandle { index, generation };
            let Some(slot) = self.conns.get_mut(index, generation) else {
                continue;
            };
            if slot.scheduled != Some(t) {
                continue;
            }
            slot.scheduled = None;
            slot.conn.handle_timeout(now);
            self.after_conn(now, h);
        }
        if let Medium::Ethernet { mac } = self.config.medium {
            for ip in self.arp.due(now) {
                match self
                    .arp
                    .lookup(ip, now, self.config.arp_retry, self.config.arp_max_tries)
                {
                    Lookup::Request => self.queue_arp_request(ip, mac),
                    Lookup::Failed => {
                        // Waiting connections retry when their own timers fire.
                        if let Some(waiting) = self.arp_waiting.remove(&ip) {
                            self.counters.arp_unresolved_drops += waiting.len() as u64;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    // ================= connection bookkeeping =================

    fn insert_conn(&mut self, conn: Connection, owner: Owner) -> ConnHandle {
        let tuple = (conn.local(), conn.remote());
        let charged = conn.buffer_capacity();
        self.buffer_memory += charged;
        let (index, generation) = self.conns.insert(ConnSlot {
            conn,
            owner,
            in_accept_queue: false,
            scheduled: None,
            in_ready: false,
            charged,
        });
        let h = ConnHandle { index, generation };
        self.by_tuple.insert(tuple, h);
        h
    }

    fn mark_ready(&mut self, h: ConnHandle) {
        if let Some(slot) = self.conns.get_mut(h.index, h.generation) {
            if !slot.in_ready {
                slot.in_ready = true;
                self.ready.push_back(h);
            }
        }
    }

    /// After any call into a connection: collect its events, reschedule its
    /// timer, promote it to the accept queue, free it when done.
    fn after_conn(&mut self, now: Instant, h: ConnHandle) {
        self.after_conn_inner(now, h, true);
    }

    fn after_conn_inner(&mut self, now: Instant, h: ConnHandle, wake: bool) {
        let Some(slot) = self.conns.get_mut(h.index, h.generation) else {
            return;
        };
        let mut events = Vec::new();
        while let Some(e) = slot.conn.poll_event() {
            events.push(e);
        }
        // Receive-buffer autotuning may have grown the buffers: charge the
        // difference, and let the connection grow only into what is left.
        // A TIME-WAIT connection only remembers sequence numbers and
        // timestamps (Linux swaps in a small tcp_timewait_sock): it holds
        // no buffers, so a server that closes first keeps accepting.
        let capacity = if slot.conn.state() == State::TimeWait {
            0
        } else {
            slot.conn.buffer_capacity()
        };
        self.buffer_memory = (self.buffer_memory + capacity).saturating_sub(slot.charged);
        slot.charged = capacity;
        slot.conn.buffer_headroom = self
            .config
            .max_buffer_memory
            .saturating_sub(self.buffer_memory);
        let t = slot.conn.poll_timeout();
        if t != slot.scheduled {
            slot.scheduled = t;
            if let Some(t) = t {
                self.timers.push(Reverse((t, h.index, h.generation)));
            }
        }
        let owner = slot.owner;
        let established = slot.conn.is_established();
        let in_accept = slot.in_accept_queue;
        let closed = slot.conn.is_closed();
        if wake && !slot.in_ready {
            slot.in_ready = true;
            self.ready.push_back(h);
        }
        for e in events {
            self.push_event(e);
        }
        if let Owner::Listener(lh) = owner {
            if established && !in_accept && !closed {
                if let Some(l) = self.listeners.get_mut(lh.index, lh.generation) {
                    l.syn_queue = l.syn_queue.saturating_sub(1);
                    l.accept_queue.push_back(h);
                }
                if let Some(slot) = self.conns.get_mut(h.index, h.generation) {
                    slot.in_accept_queue = true;
                }
            }
        }
        if closed {
            if owner == Owner::App {
                // The application still holds the handle, but a CLOSED
                // connection owns no 4-tuple (RFC 9293 §3.10.7.1): later
                // segments get a RST or reach a listener, as in Linux,
                // where a closed socket is unhashed.
                self.unhash(h);
            } else {
                self.free_conn(h);
            }
        }
        let _ = now;
    }

    /// Removes a connection from the demultiplexing table, keeping its slot.
    fn unhash(&mut self, h: ConnHandle) {
        let Some(slot) = self.conns.get(h.index, h.generation) else {
            return;
        };
        let tuple = (slot.conn.local(), slot.conn.remote());
        if self.by_tuple.get(&tuple) == Some(&h) {
            self.by_tuple.remove(&tuple);
        }
    }

    fn free_conn(&mut self, h: ConnHandle) {
        let Some(slot) = self.conns.remove(h.index, h.generation) else {
            return;
        };
        self.buffer_memory = self.buffer_memory.saturating_sub(slot.charged);
        let tuple = (slot.conn.local(), slot.conn.remote());
        if self.by_tuple.get(&tuple) == Some(&h) {
            self.by_tuple.remove(&tuple);
        }
        if let Owner::Listener(lh) = slot.owner {
            if let Some(l) = self.listeners.get_mut(lh.index, lh.generation) {
                if slot.in_accept_queue {
                    l.accept_queue.retain(|x| *x != h);
                } else {
                    l.syn_queue = l.syn_queue.saturating_sub(1);
                }
            }
        }
    }

    /// RFC 6056 §3.3.3 (Algorithm 3): a keyed-hash offset per destination
    /// plus a global counter.
    fn ephemeral_port(&mut self, remote: SocketAddrV4) -> Option<u16> {
        let lo = u32::from(*self.config.ephemeral_ports.start());
        let hi = u32::from(*self.config.ephemeral_ports.end());
        let num = hi - lo + 1;
        let ours = SocketAddrV4::new(self.config.addr, 0);
        let offset = self.isn.hash_tuple(ours, remote, &[2]) as u32;
        for i in 0..num {
            let port = (lo + offset.wrapping_add(self.next_ephemeral).wrapping_add(i) % num) as u16;
            let local = SocketAddrV4::new(self.config.addr, port);
            if !self.by_tuple.contains_key(&(local, remote))
                && !self.listener_by_port.contains_key(&port)
            {
                self.next_ephemeral = self.next_ephemeral.wrapping_add(i + 1);
                return Some(port);
            }
        }
        None
    }

    // ================= TCP socket calls =================

    /// Opens a listener on `local` (address 0.0.0.0 means ours).
    pub fn tcp_listen(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
    ) -> Result<ListenerHandle, Error> {
        self.tcp_listen_with(local, backlog, self.config.tcp.clone())
    }

    /// Like `tcp_listen`, with settings for the accepted connections.
    pub fn tcp_listen_with(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
        config: TcpConfig,
    ) -> Result<ListenerHandle, Error> {
        if !local.ip().is_unspecified() && *local.ip() != self.config.addr {
            return Err(Error::AddrNotAvailable);
        }
        if local.port() == 0 || backlog == 0 || !self.registry.contains(&config.congestion_control)
        {
            return Err(Error::InvalidArgument);
        }
        if self.listener_by_port.contains_key(&local.port()) {
            return Err(Error::AddrInUse);
        }
        let (index, generation) = self.listeners.insert(Listener {
            local: SocketAddrV4::new(self.config.addr, local.port()),
            backlog,
            config,
            syn_queue: 0,
            accept_queue: VecDeque::new(),
        });
        let lh = ListenerHandle { index, generation };
        self.listener_by_port.insert(local.port(), lh);
        Ok(lh)
    }

    /// Takes an established connection from the accept queue.
    pub fn tcp_accept(&mut self, lh: ListenerHandle) -> Result<ConnHandle, Error> {
        let l = self
            .listeners
            .get_mut(lh.index, lh.generation)
            .ok_or(Error::InvalidHandle)?;
        let h = l.accept_queue.pop_front().ok_or(Error::WouldBlock)?;
        if let Some(slot) = self.conns.get_mut(h.index, h.generation) {
            slot.owner = Owner::App;
            slot.in_accept_queue = false;
        }
        Ok(h)
    }

    /// Connections waiting in the accept queue.
    pub fn tcp_pending(&self, lh: ListenerHandle) -> Result<usize, Error> {
        self.listeners
            .get(lh.index, lh.generation)
            .map(|l| l.accept_queue.len())
            .ok_or(Error::InvalidHandle)
    }

    /// Closes a listener; connections it had not handed out are reset.
    pub fn tcp_close_listener(&mut self, now: Instant, lh: ListenerHandle) -> Result<(), Error> {
        let l = self
            .listeners
            .remove(lh.index, lh.generation)
            .ok_or(Error::InvalidHandle)?;
        self.listener_by_port.remove(&l.local.port());
        let orphans: Vec<ConnHandle> = self
            .conns
            .iter()
            .filter(|(_, _, s)| s.owner == Owner::Listener(lh))
            .map(|(index, generation, _)| ConnHandle { index, generation })
            .collect();
        for h in orphans {
            if let Some(slot) = self.conns.get_mut(h.index, h.generation) {
                slot.owner = Owner::Released;
                slot.conn.abort(now);
            }
            self.after_conn(now, h);
        }
        Ok(())
    }

    /// Opens a connection to `remote` from an ephemeral port.
    pub fn tcp_connect(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        config: Option<TcpConfig>,
    ) -> Result<ConnHandle, Error> {
        let ip = *remote.ip();
        if remote.port() == 0 || ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            return Err(Error::InvalidArgument);
        }
        if !self.config.on_link(ip) && self.config.gateway.is_none() {
            return Err(Error::NetworkUnreachable);
        }
        let config = config.unwrap_or_else(|| self.config.tcp.clone());
        if self.conns.len() >= self.config.max_connections {
            return Err(Error::TooManyConnections);
        }
        if self.buffer_memory + config.send_buffer + config.recv_buffer
            > self.config.max_buffer_memory
        {
            return Err(Error::NoBufferSpace);
        }
        let port = self.ephemeral_port(remote).ok_or(Error::NoEphemeralPort)?;
        let local = SocketAddrV4::new(self.config.addr, port);
        let iss = self.isn.isn(local, remote, now);
        let params = self.conn_params(local, remote, iss, config)?;
        let conn = Connection::connect(params, now);
        let h = self.insert_conn(conn, Owner::App);
        self.counters.tcp_active_opens += 1;
        self.after_conn(now, h);
        Ok(h)
    }

    /// Runs `f` on the connection, then does the stack's bookkeeping.
    pub fn with_tcp<R>(
        &mut self,
        now: Instant,
        h: ConnHandle,
        f: impl FnOnce(&mut Connection) -> R,
    ) -> Result<R, Error> {
        let slot = self
            .conns
            .get_mut(h.index, h.generation)
            .filter(|s| s.owner == Owner::App)
            .ok_or(Error::InvalidHandle)?;
        let r = f(&mut slot.conn);
        self.after_conn(now, h);
        Ok(r)
    }

    /// Read-only access to a connection.
    pub fn tcp(&self, h: ConnHandle) -> Result<&Connection, Error> {
        self.conns
            .get(h.index, h.generation)
            .filter(|s| s.owner == Owner::App)
            .map(|s| &s.conn)
            .ok_or(Error::InvalidHandle)
    }

    pub fn tcp_send(&mut self, now: Instant, h: ConnHandle, data: &[u8]) -> Result<usize, Error> {
        self.with_tcp(now, h, |c| c.send(data))?
    }

    pub fn tcp_recv(
        &mut self,
        now: Instant,
        h: ConnHandle,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        self.with_tcp(now, h, |c| c.recv(buf))?
    }

    pub fn tcp_shutdown(
        &mut self,
        now: Instant,
        h: ConnHandle,
        how: Shutdown,
    ) -> Result<(), Error> {
        self.with_tcp(now, h, |c| c.shutdown(now, how))?
    }

    pub fn tcp_set_nodelay(&mut self, now: Instant, h: ConnHandle, on: bool) -> Result<(), Error> {
        self.with_tcp(now, h, |c| c.set_nodelay(on))
    }

    pub fn tcp_set_keepalive(
        &mut self,
        now: Instant,
        h: ConnHandle,
        keepalive: Option<Keepalive>,
    ) -> Result<(), Error> {
        self.with_tcp(now, h, |c| c.set_keepalive(now, keepalive))
    }

    pub fn tcp_set_tag(&mut self, now: Instant, h: ConnHandle, tag: u64) -> Result<(), Error> {
        self.with_tcp(now, h, |c| c.set_tag(tag))
    }

    pub fn tcp_info(&self, now: Instant, h: ConnHandle) -> Result<TcpInfo, Error> {
        self.tcp(h).map(|c| c.info(now))
    }

    pub fn tcp_state(&self, h: ConnHandle) -> Result<State, Error> {
        self.tcp(h).map(|c| c.state())
    }

    /// The application is done with the connection: graceful close (or RST
    /// with unread data). The handle is invalid afterwards.
    pub fn tcp_close(&mut self, now: Instant, h: ConnHandle) -> Result<(), Error> {
        self.release(now, h, false)
    }

    /// Resets the connection. The handle is invalid afterwards.
    pub fn tcp_abort(&mut self, now: Instant, h: ConnHandle) -> Result<(), Error> {
        self.release(now, h, true)
    }

    /// Resets any connection the stack holds, also one the application
    /// has closed already and the stack is still finishing (shutting a
    /// runtime down: RFC 9293 §3.10.5 ABORT of what cannot finish).
    pub fn tcp_abort_any(&mut self, now: Instant, h: ConnHandle) -> Result<(), Error> {
        let slot = self
            .conns
            .get_mut(h.index, h.generation)
            .ok_or(Error::InvalidHandle)?;
        slot.conn.abort(now);
        if slot.owner == Owner::App {
            slot.owner = Owner::Released;
        }
        self.after_conn(now, h);
        Ok(())
    }

    fn release(&mut self, now: Instant, h: ConnHandle, abort: bool) -> Result<(), Error> {
        let slot = self
            .conns
            .get_mut(h.index, h.generation)
            .filter(|s| s.owner == Owner::App)
            .ok_or(Error::InvalidHandle)?;
        if abort {
            slot.conn.abort(now);
        } else {
            slot.conn.close(now);
        }
        slot.owner = Owner::Released;
        self.after_conn(now, h);
        Ok(())
    }

    // ================= UDP socket calls =================

    pub fn udp_bind(&mut self, local: SocketAddrV4) -> Result<UdpHandle, Error> {
        if !local.ip().is_unspecified() && *local.ip() != self.config.addr {
            return Err(Error::AddrNotAvailable);
        }
        if local.port() == 0 {
            return Err(Error::InvalidArgument);
        }
        if self.udp_by_port.contains_key(&local.port()) {
            return Err(Error::AddrInUse);
        }
        let (index, generation) = self.udp.insert(UdpSocket {
            local: SocketAddrV4::new(self.config.addr, local.port()),
            queue: VecDeque::new(),
        });
        let h = UdpHandle { index, generation };
        self.udp_by_port.insert(local.port(), h);
        Ok(h)
    }

    pub fn udp_send_to(
        &mut self,
        h: UdpHandle,
        remote: SocketAddrV4,
        data: &[u8],
    ) -> Result<usize, Error> {
        let local = self
            .udp
            .get(h.index, h.generation)
            .ok_or(Error::InvalidHandle)?
            .local;
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(Error::InvalidArgument);
        }
        let repr = UdpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            payload: data,
        };
        let len = repr.buffer_len();
        if IPV4_HEADER + len > self.config.mtu {
            // EMSGSIZE: we do not fragment.
            return Err(Error::InvalidArgument);
        }
        let mut v = self.take_buf(IPV4_HEADER + len);
        let ip = self.ip_header(*remote.ip(), Protocol::Udp, len);
        ip.emit(&mut v).map_err(|_| Error::InvalidArgument)?;
        repr.emit(
            &mut v[IPV4_HEADER..],
            local.ip(),
            remote.ip(),
            ChecksumMode::Compute,
        )
        .map_err(|_| Error::InvalidArgument)?;
        self.push_control(v);
        Ok(data.len())
    }

    pub fn udp_recv_from(
        &mut self,
        h: UdpHandle,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), Error> {
        let sock = self
            .udp
            .get_mut(h.index, h.generation)
            .ok_or(Error::InvalidHandle)?;
        let (from, data) = sock.queue.pop_front().ok_or(Error::WouldBlock)?;
        // Like recvfrom(2): a datagram longer than `buf` is truncated.
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.pool.push(data);
        Ok((n, from))
    }

    pub fn udp_close(&mut self, h: UdpHandle) -> Result<(), Error> {
        let sock = self
            .udp
            .remove(h.index, h.generation)
            .ok_or(Error::InvalidHandle)?;
        self.udp_by_port.remove(&sock.local.port());
        Ok(())
    }
}
