//! Stack tests: frames in, frames out, explicit time; and two stacks wired
//! back to back.

use super::*;
use crate::observe::EventKind;
use crate::time::{Duration, Instant};
use daytona_wire::checksum;
use daytona_wire::icmpv4::msg_type;

const A_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const A_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const B_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

fn ip_stack(addr: Ipv4Addr) -> Stack {
    let mut cfg = StackConfig::ip(addr, 24);
    cfg.tcp.delayed_ack = None;
    Stack::new(cfg, CcRegistry::with_builtin()).unwrap()
}

/// Two stacks and a perfect wire between them.
struct Pair {
    a: Stack,
    b: Stack,
    now: Instant,
    /// Every frame, with `true` when A sent it.
    log: Vec<(bool, Vec<u8>)>,
    drop_next_from_a: usize,
}

impl Pair {
    fn new(a: Stack, b: Stack) -> Pair {
        Pair {
            a,
            b,
            now: Instant::from_secs(1),
            log: Vec::new(),
            drop_next_from_a: 0,
        }
    }

    fn ip() -> Pair {
        Pair::new(ip_stack(A_IP), ip_stack(B_IP))
    }

    /// Moves frames until both stacks are quiet.
    fn pump(&mut self) {
        let mut buf = vec![0u8; 2000];
        for _ in 0..100_000 {
            let mut moved = false;
            while let Some(n) = self.a.poll_transmit(self.now, &mut buf) {
                let frame = buf[..n].to_vec();
                self.log.push((true, frame.clone()));
                moved = true;
                if self.drop_next_from_a > 0 {
                    self.drop_next_from_a -= 1;
                    continue;
                }
                self.b.handle_frame(self.now, &frame);
            }
            while let Some(n) = self.b.poll_transmit(self.now, &mut buf) {
                let frame = buf[..n].to_vec();
                self.log.push((false, frame.clone()));
                moved = true;
                self.a.handle_frame(self.now, &frame);
            }
            if !moved {
                return;
            }
        }
        panic!("the stacks never went quiet");
    }

    /// Runs for `d` of virtual time, firing timers.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.pump();
            let next = match (self.a.poll_timeout(), self.b.poll_timeout()) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn tcp_from_a(&self) -> Vec<TcpRepr<'_>> {
        self.log
            .iter()
            .filter(|(from_a, _)| *from_a)
            .filter_map(|(_, f)| parse_tcp(f))
            .collect()
    }
}

fn parse_tcp(frame: &[u8]) -> Option<TcpRepr<'_>> {
    let ip = Ipv4Packet::new_checked(frame).ok()?;
    let repr = Ipv4Repr::parse(&ip, true).ok()?;
    if repr.protocol != Protocol::Tcp {
        return None;
    }
    let total = usize::from(ip.total_len());
    let tcp = TcpPacket::new_checked(&frame[20..total]).ok()?;
    TcpRepr::parse(&tcp, &repr.src_addr, &repr.dst_addr, ChecksumMode::Verify).ok()
}

fn ip_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: Protocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: payload.len(),
        hop_limit: 64,
        dscp: 0,
        ecn: Ecn::NotEct,
        ident: 1,
        dont_frag: true,
    };
    let mut v = vec![0u8; 20 + payload.len()];
    repr.emit(&mut v).unwrap();
    v[20..].copy_from_slice(payload);
    v
}

fn tcp_segment(src: SocketAddrV4, dst: SocketAddrV4, repr: TcpRepr<'_>) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        ..repr
    };
    let mut tcp = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut tcp[..]),
        src.ip(),
        dst.ip(),
        ChecksumMode::Compute,
    );
    ip_packet(*src.ip(), *dst.ip(), Protocol::Tcp, &tcp)
}

fn bare(seq: u32, ack: Option<u32>, control: Control) -> TcpRepr<'static> {
    TcpRepr {
        src_port: 0,
        dst_port: 0,
        seq: SeqNum(seq),
        ack: ack.map(SeqNum),
        control,
        psh: false,
        ece: false,
        cwr: false,
        window: 1000,
        urgent: None,
        options: TcpOptions::default(),
        payload: &[],
    }
}

fn drain(stack: &mut Stack, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 2000];
    let mut out = Vec::new();
    while let Some(n) = stack.poll_transmit(now, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

const PEER: SocketAddrV4 = SocketAddrV4::new(B_IP, 5555);

#[test]
fn syn_to_a_closed_port_gets_rst_ack() {
    let mut s = ip_stack(A_IP);
    let now = Instant::from_secs(1);
    let syn = tcp_segment(
        PEER,
        SocketAddrV4::new(A_IP, 81),
        bare(1000, None, Control::Syn),
    );
    s.handle_frame(now, &syn);
    let out = drain(&mut s, now);
    assert_eq!(out.len(), 1);
    let rst = parse_tcp(&out[0]).unwrap();
    // RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    assert_eq!(rst.control, Control::Rst);
    assert_eq!((rst.seq, rst.ack), (SeqNum(0), Some(SeqNum(1001))));
    assert_eq!((rst.src_port, rst.dst_port), (81, 5555));
    assert_eq!(s.counters().tcp_rst_sent, 1);
}

#[test]
fn ack_to_a_closed_port_gets_rst_and_rst_gets_nothing() {
    let mut s = ip_stack(A_IP);
    let now = Instant::from_secs(1);
    let ack = tcp_segment(
        PEER,
        SocketAddrV4::new(A_IP, 81),
        bare(1000, Some(777), Control::None),
    );
    s.handle_frame(now, &ack);
    let out = drain(&mut s, now);
    let rst = parse_tcp(&out[0]).unwrap();
    assert_eq!((rst.seq, rst.ack), (SeqNum(777), None));
    let r = tcp_segment(
        PEER,
        SocketAddrV4::new(A_IP, 81),
        bare(1000, None, Control::Rst),
    );
    s.handle_frame(now, &r);
    assert!(drain(&mut s, now).is_empty());
}

#[test]
fn echo_request_gets_a_reply() {
    let mut s = ip_stack(A_IP);
    let now = Instant::from_secs(1);
    let req = Icmpv4Repr::EchoRequest {
        ident: 9,
        seq_no: 3,
        data: b"ping!",
    };
    let mut icmp = vec![0u8; req.buffer_len()];
    req.emit(&mut icmp).unwrap();
    s.handle_frame(now, &ip_packet(B_IP, A_IP, Protocol::Icmp, &icmp));
    let out = drain(&mut s, now);
    assert_eq!(out.len(), 1);
    let ip = Ipv4Packet::new_checked(&out[0][..]).unwrap();
    assert_eq!(ip.dst_addr(), B_IP);
    let reply = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(ip.payload()).unwrap(), true).unwrap();
    assert_eq!(
        reply,
        Icmpv4Repr::EchoReply {
            ident: 9,
            seq_no: 3,
            data: b"ping!"
        }
    );
}

#[test]
fn arp_request_for_us_is_answered_and_learned() {
    let cfg = StackConfig::ethernet(A_MAC, A_IP, 24);
    let mut s = Stack::new(cfg, CcRegistry::with_builtin()).unwrap();
    let now = Instant::from_secs(1);
    let req = ArpRepr {
        operation: Operation::Request,
        source_hardware_addr: B_MAC,
        source_protocol_addr: B_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: A_IP,
    };
    let mut frame = vec![0u8; 14 + 28];
    EthernetRepr {
        src_addr: B_MAC,
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EtherType::Arp,
    }
    .emit(&mut frame)
    .unwrap();
    req.emit(&mut frame[14..]).unwrap();
    s.handle_frame(now, &frame);
    let out = drain(&mut s, now);
    assert_eq!(out.len(), 1);
    let eth = EthernetFrame::new_checked(&out[0][..]).unwrap();
    assert_eq!(eth.dst_addr(), B_MAC);
    let reply = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
    assert_eq!(reply.operation, Operation::Reply);
    assert_eq!(
        (reply.source_hardware_addr, reply.source_protocol_addr),
        (A_MAC, A_IP)
    );
    // A request for another address is not answered.
    let mut other = frame.clone();
    other[14 + 24..14 + 28].copy_from_slice(&[198, 18, 0, 77]);
    s.handle_frame(now, &other);
    assert!(drain(&mut s, now).is_empty());
}

#[test]
fn malformed_frames_are_counted_and_never_panic() {
    let mut s = ip_stack(A_IP);
    let now = Instant::from_secs(1);
    let good = tcp_segment(
        PEER,
        SocketAddrV4::new(A_IP, 81),
        bare(1, None, Control::Syn),
    );
    // Truncated, wrong version, bad IP checksum, bad TCP checksum, fragment,
    // not for us, unknown protocol.
    s.handle_frame(now, &good[..10]);
    let mut v6 = good.clone();
    v6[0] = 0x65;
    s.handle_frame(now, &v6);
    let mut bad_ip = good.clone();
    bad_ip[8] ^= 1;
    s.handle_frame(now, &bad_ip);
    let mut bad_tcp = good.clone();
    bad_tcp[30] ^= 1;
    s.handle_frame(now, &bad_tcp);
    let mut frag = good.clone();
    frag[6] = 0x20;
    Ipv4Packet::new_unchecked(&mut frag[..]).fill_checksum();
    s.handle_frame(now, &frag);
    let other = ip_packet(
        B_IP,
        Ipv4Addr::new(198, 18, 0, 99),
        Protocol::Tcp,
        &good[20..],
    );
    s.handle_frame(now, &other);
    let unknown = ip_packet(B_IP, A_IP, Protocol::Unknown(200), b"x");
    s.handle_frame(now, &unknown);
    let c = s.counters().clone();
    assert_eq!(c.ip_malformed, 2);
    assert_eq!(c.ip_bad_checksum, 1);
    assert_eq!(c.tcp_bad_checksum, 1);
    assert_eq!(c.ip_fragments_dropped, 1);
    assert_eq!(c.ip_not_for_us, 1);
    assert_eq!(c.ip_unknown_protocol, 1);
    assert!(drain(&mut s, now).is_empty());
}

fn listen_and_connect(p: &mut Pair, backlog: usize) -> (ListenerHandle, ConnHandle, ConnHandle) {
    let l =
        p.b.tcp_listen(SocketAddrV4::new(B_IP, 80), backlog)
            .unwrap();
    let c =
        p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 80), None)
            .unwrap();
    p.pump();
    let s = p.b.tcp_accept(l).unwrap();
    (l, c, s)
}

#[test]
fn two_stacks_transfer_and_close_cleanly() {
    let mut p = Pair::ip();
    let (_l, c, s) = listen_and_connect(&mut p, 8);
    assert_eq!(p.a.tcp_state(c), Ok(State::Established));
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while got.len() < data.len() {
        if sent < data.len() {
            sent += p.a.tcp_send(p.now, c, &data[sent..]).unwrap_or(0);
        }
        p.run(Duration::from_millis(1));
        while let Ok(n) = p.b.tcp_recv(p.now, s, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got, data);
    p.a.tcp_close(p.now, c).unwrap();
    p.run(Duration::from_millis(10));
    assert_eq!(p.b.tcp_recv(p.now, s, &mut buf), Ok(0));
    p.b.tcp_close(p.now, s).unwrap();
    p.run(Duration::from_secs(61));
    // A went through TIME-WAIT; both stacks have freed everything.
    assert_eq!(p.a.connection_count(), 0);
    assert_eq!(p.b.connection_count(), 0);
    assert_eq!(p.a.tcp_state(c), Err(Error::InvalidHandle));
}

#[test]
fn syn_cookies_complete_the_handshake_when_the_syn_queue_is_full() {
    let mut b_cfg = StackConfig::ip(B_IP, 24);
    b_cfg.syn_backlog = 0;
    let b = Stack::new(b_cfg, CcRegistry::with_builtin()).unwrap();
    let mut p = Pair::new(ip_stack(A_IP), b);
    let (_l, c, s) = listen_and_connect(&mut p, 8);
    assert_eq!(p.b.counters().tcp_syn_cookies_sent, 1);
    assert_eq!(p.b.counters().tcp_syn_cookies_valid, 1);
    // Timestamps carried window scaling and SACK through the cookie.
    let info = p.b.tcp_info(p.now, s).unwrap();
    assert!(info.options.window_scale && info.options.sack && info.options.timestamps);
    p.a.tcp_send(p.now, c, b"through the cookie").unwrap();
    p.run(Duration::from_millis(10));
    let mut buf = [0u8; 64];
    let n = p.b.tcp_recv(p.now, s, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"through the cookie");
}

#[test]
fn forged_cookie_ack_gets_rst() {
    let mut s = ip_stack(A_IP);
    s.tcp_listen(SocketAddrV4::new(A_IP, 80), 4).unwrap();
    let now = Instant::from_secs(1);
    let ack = tcp_segment(
        PEER,
        SocketAddrV4::new(A_IP, 80),
        bare(5000, Some(123_456), Control::None),
    );
    s.handle_frame(now, &ack);
    let out = drain(&mut s, now);
    assert_eq!(parse_tcp(&out[0]).unwrap().control, Control::Rst);
    assert_eq!(s.counters().tcp_syn_cookies_invalid, 1);
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn full_accept_queue_drops_syns_and_reports_overflow() {
    let mut p = Pair::ip();
    let l = p.b.tcp_listen(SocketAddrV4::new(B_IP, 80), 1).unwrap();
    p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 80), None)
        .unwrap();
    p.pump();
    assert_eq!(p.b.tcp_pending(l), Ok(1));
    p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 80), None)
        .unwrap();
    p.pump();
    assert_eq!(p.b.tcp_pending(l), Ok(1));
    assert_eq!(p.b.counters().tcp_listen_overflows, 1);
    let mut overflow = false;
    while let Some(e) = p.b.poll_event() {
        overflow |= matches!(e.kind, EventKind::ListenOverflow { .. });
    }
    assert!(overflow);
    // Once accepted, the retransmitted SYN gets through.
    p.b.tcp_accept(l).unwrap();
    p.run(Duration::from_secs(2));
    assert_eq!(p.b.tcp_pending(l), Ok(1));
}

#[test]
fn ack_completing_a_handshake_into_a_full_accept_queue_is_dropped() {
    // Two SYNs arrive while the queue is empty; both get SYN-ACKs, but only
    // one completed connection fits: the other's ACK is dropped (Linux,
    // tcp_abort_on_overflow=0) and it stays in SYN-RECEIVED until the
    // application accepts and a retransmitted SYN-ACK is ACKed again.
    let mut p = Pair::ip();
    let l = p.b.tcp_listen(SocketAddrV4::new(B_IP, 80), 1).unwrap();
    let c1 =
        p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 80), None)
            .unwrap();
    let c2 =
        p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 80), None)
            .unwrap();
    p.pump();
    assert_eq!(p.b.tcp_pending(l), Ok(1), "the backlog is never exceeded");
    assert_eq!(p.b.counters().tcp_listen_overflows, 1);
    assert_eq!(
        p.b.connection_count(),
        2,
        "the second waits in SYN-RECEIVED"
    );
    // Both clients believe they are connected (as with Linux).
    assert_eq!(p.a.tcp_state(c1), Ok(State::Established));
    assert_eq!(p.a.tcp_state(c2), Ok(State::Established));
    p.b.tcp_accept(l).unwrap();
    p.run(Duration::from_secs(3));
    assert_eq!(p.b.tcp_pending(l), Ok(1), "admitted after the accept");
    let s2 = p.b.tcp_accept(l).unwrap();
    assert_eq!(p.b.tcp_state(s2), Ok(State::Established));
}

#[test]
fn connect_refused_by_rst() {
    let mut p = Pair::ip();
    let c =
        p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 9), None)
            .unwrap();
    p.pump();
    assert_eq!(p.a.tcp(c).unwrap().error(), Some(Error::ConnectionRefused));
    assert_eq!(
        p.a.tcp_recv(p.now, c, &mut [0; 4]),
        Err(Error::ConnectionRefused)
    );
}

#[test]
fn socket_calls_report_precise_errors() {
    let mut s = ip_stack(A_IP);
    let now = Instant::from_secs(1);
    let l = s.tcp_listen(SocketAddrV4::new(A_IP, 80), 4).unwrap();
    assert_eq!(
        s.tcp_listen(SocketAddrV4::new(A_IP, 80), 4),
        Err(Error::AddrInUse)
    );
    assert_eq!(
        s.tcp_listen(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 9), 81), 4),
        Err(Error::AddrNotAvailable)
    );
    assert_eq!(s.tcp_accept(l), Err(Error::WouldBlock));
    assert_eq!(
        s.tcp_connect(
            now,
            SocketAddrV4::new(Ipv4Addr::new(198, 19, 5, 5), 80),
            None
        ),
        Err(Error::NetworkUnreachable)
    );
    assert_eq!(
        s.tcp_connect(now, SocketAddrV4::new(B_IP, 0), None),
        Err(Error::InvalidArgument)
    );
    let c = s.tcp_connect(now, PEER, None).unwrap();
    s.tcp_abort(now, c).unwrap();
    assert_eq!(s.tcp_send(now, c, b"x"), Err(Error::InvalidHandle));
    assert_eq!(s.tcp_close(now, c), Err(Error::InvalidHandle));
    s.tcp_close_listener(now, l).unwrap();
    assert_eq!(s.tcp_accept(l), Err(Error::InvalidHandle));
    let mut bad = StackConfig::ip(A_IP, 24);
    bad.tcp.congestion_control = "nonesuch".into();
    assert_eq!(
        Stack::new(bad, CcRegistry::with_builtin()).err(),
        Some(Error::InvalidArgument)
    );
}

#[test]
fn connection_and_memory_limits_are_enforced() {
    let mut cfg = StackConfig::ip(A_IP, 24);
    cfg.max_connections = 2;
    let mut s = Stack::new(cfg, CcRegistry::with_builtin()).unwrap();
    let now = Instant::from_secs(1);
    s.tcp_connect(now, PEER, None).unwrap();
    s.tcp_connect(now, PEER, None).unwrap();
    assert_eq!(
        s.tcp_connect(now, PEER, None),
        Err(Error::TooManyConnections)
    );
    let mut cfg = StackConfig::ip(A_IP, 24);
    // Room for one connection's initial buffers, not two.
    cfg.max_buffer_memory = 2 * (cfg.tcp.send_buffer + cfg.tcp.recv_buffer) - 1;
    let mut s = Stack::new(cfg, CcRegistry::with_builtin()).unwrap();
    s.tcp_connect(now, PEER, None).unwrap();
    assert_eq!(s.tcp_connect(now, PEER, None), Err(Error::NoBufferSpace));
}

#[test]
fn ephemeral_ports_are_distinct_and_in_range() {
    let mut s = ip_stack(A_IP);
    let now = Instant::from_secs(1);
    let mut ports = std::collections::HashSet::new();
    for _ in 0..500 {
        let c = s.tcp_connect(now, PEER, None).unwrap();
        let port = s.tcp(c).unwrap().local().port();
        assert!((32_768..=60_999).contains(&port));
        assert!(ports.insert(port), "port {port} reused");
    }
}

#[test]
fn icmp_frag_needed_reaches_the_connection() {
    let mut p = Pair::ip();
    let (_l, c, _s) = listen_and_connect(&mut p, 8);
    let data = vec![7u8; 20_000];
    p.a.tcp_send(p.now, c, &data).unwrap();
    // Take A's first data segment off the wire: it stays unacknowledged.
    let mut buf = vec![0u8; 2000];
    let n = p.a.poll_transmit(p.now, &mut buf).unwrap();
    let frame = buf[..n].to_vec();
    assert!(parse_tcp(&frame).is_some_and(|t| !t.payload.is_empty()));
    let ip = Ipv4Repr::parse(&Ipv4Packet::new_checked(&frame[..]).unwrap(), true).unwrap();
    let msg = Icmpv4Repr::DstUnreachable {
        code: DstUnreachable::FragRequired,
        next_hop_mtu: 1280,
        header: ip,
        data: &frame[20..48],
    };
    let mut icmp = vec![0u8; msg.buffer_len()];
    msg.emit(&mut icmp).unwrap();
    let router = Ipv4Addr::new(198, 18, 0, 254);
    while p.a.poll_event().is_some() {}
    p.a.handle_frame(p.now, &ip_packet(router, A_IP, Protocol::Icmp, &icmp));
    assert_eq!(p.a.counters().icmp_errors_delivered, 1);
    let mut seen = false;
    while let Some(e) = p.a.poll_event() {
        if let EventKind::IcmpError { source, mtu, .. } = e.kind {
            seen = source == router && mtu == Some(1280);
        }
    }
    assert!(seen);
    assert_eq!(p.a.tcp(c).unwrap().snd_mss(), 1280 - 40 - 12);
}

#[test]
fn udp_datagrams_and_port_unreachable() {
    let mut p = Pair::ip();
    let ua = p.a.udp_bind(SocketAddrV4::new(A_IP, 53)).unwrap();
    let ub = p.b.udp_bind(SocketAddrV4::new(B_IP, 53)).unwrap();
    p.a.udp_send_to(ua, SocketAddrV4::new(B_IP, 53), b"query")
        .unwrap();
    p.pump();
    let mut buf = [0u8; 64];
    let (n, from) = p.b.udp_recv_from(ub, &mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"query"[..], SocketAddrV4::new(A_IP, 53))
    );
    assert_eq!(p.b.udp_recv_from(ub, &mut buf), Err(Error::WouldBlock));
    // Nobody on port 54: ICMP port unreachable comes back.
    p.a.udp_send_to(ua, SocketAddrV4::new(B_IP, 54), b"hello?")
        .unwrap();
    p.pump();
    assert_eq!(p.b.counters().udp_no_port, 1);
    let icmp_back = p.log.iter().any(|(from_a, f)| {
        !from_a
            && Ipv4Packet::new_checked(&f[..]).is_ok_and(|ip| {
                ip.protocol() == Protocol::Icmp && ip.payload()[0] == msg_type::DST_UNREACHABLE
            })
    });
    assert!(icmp_back);
    assert_eq!(p.a.counters().icmp_errors_unmatched, 1);
}

#[test]
fn ethernet_stacks_resolve_each_other_before_talking() {
    let a = Stack::new(
        StackConfig::ethernet(A_MAC, A_IP, 24),
        CcRegistry::with_builtin(),
    )
    .unwrap();
    let b = Stack::new(
        StackConfig::ethernet(B_MAC, B_IP, 24),
        CcRegistry::with_builtin(),
    )
    .unwrap();
    let mut p = Pair::new(a, b);
    let (_l, c, s) = listen_and_connect(&mut p, 4);
    assert_eq!(p.a.counters().arp_requests_sent, 1);
    assert_eq!(p.b.counters().arp_requests_answered, 1);
    p.a.tcp_send(p.now, c, b"over ethernet").unwrap();
    p.run(Duration::from_millis(100));
    let mut buf = [0u8; 64];
    let n = p.b.tcp_recv(p.now, s, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"over ethernet");
    // The first frame was the broadcast ARP request.
    let eth = EthernetFrame::new_checked(&p.log[0].1[..]).unwrap();
    assert!(eth.dst_addr().is_broadcast());
}

#[test]
fn tcp_from_a_is_all_well_formed() {
    let mut p = Pair::ip();
    let (_l, c, _s) = listen_and_connect(&mut p, 4);
    p.a.tcp_send(p.now, c, &[1; 5000]).unwrap();
    p.run(Duration::from_millis(50));
    let segs = p.tcp_from_a();
    assert!(segs.len() >= 4);
    assert!(segs.iter().all(|s| s.src_port >= 32_768));
}

mod fuzz {
    //! The `stack_input` fuzz target's property, under `cargo test`.
    use super::*;
    use proptest::prelude::*;

    fn valid_frames() -> Vec<Vec<u8>> {
        let l = SocketAddrV4::new(A_IP, 80);
        let mut syn = bare(1000, None, Control::Syn);
        syn.options.mss = Some(1460);
        syn.options.timestamps = Some(Timestamps { tsval: 5, tsecr: 0 });
        vec![
            tcp_segment(PEER, l, syn),
            tcp_segment(PEER, l, bare(1001, Some(77), Control::None)),
            tcp_segment(PEER, l, bare(1001, Some(77), Control::Fin)),
            tcp_segment(PEER, l, bare(1001, None, Control::Rst)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn arbitrary_frames_never_panic(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..8),
            flips in proptest::collection::vec((0usize..4, 0usize..80, any::<u8>()), 0..12),
        ) {
            let mut s = ip_stack(A_IP);
            s.tcp_listen(SocketAddrV4::new(A_IP, 80), 4).unwrap();
            let mut now = Instant::from_secs(1);
            s.tcp_connect(now, PEER, None).unwrap();
            let mut inputs = frames;
            // Valid frames with bytes overwritten: deeper than random bytes.
            let mut valid = valid_frames();
            for (which, at, byte) in flips {
                let f = &mut valid[which];
                let i = at % f.len();
                f[i] = byte;
            }
            inputs.extend(valid);
            for f in inputs {
                s.handle_frame(now, &f);
                for out in drain(&mut s, now) {
                    // Whatever we send is well-formed IPv4.
                    let ip = Ipv4Packet::new_checked(&out[..]).unwrap();
                    prop_assert!(Ipv4Repr::parse(&ip, true).is_ok());
                }
                now += Duration::from_millis(300);
                s.handle_timeout(now);
            }
        }
    }
}

#[test]
fn data_right_after_a_cookie_handshake_is_accepted() {
    let mut b_cfg = StackConfig::ip(B_IP, 24);
    b_cfg.syn_backlog = 0;
    b_cfg.tcp.delayed_ack = None;
    let b = Stack::new(b_cfg, CcRegistry::with_builtin()).unwrap();
    let mut p = Pair::new(ip_stack(A_IP), b);
    let l = p.b.tcp_listen(SocketAddrV4::new(B_IP, 80), 8).unwrap();
    let c =
        p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 80), None)
            .unwrap();
    // Queue several segments' worth before the handshake completes.
    let data: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    p.a.tcp_send(p.now, c, &data).unwrap();
    p.run(Duration::from_millis(50));
    let s = p.b.tcp_accept(l).unwrap();
    let mut got = vec![0u8; 30_000];
    let n = p.b.tcp_recv(p.now, s, &mut got).unwrap();
    assert_eq!(&got[..n], &data[..]);
    assert_eq!(p.a.tcp_info(p.now, c).unwrap().total_retrans, 0);
}

#[test]
fn a_new_syn_reopens_a_time_wait_connection() {
    let mut p = Pair::ip();
    let (_l, c, s) = listen_and_connect(&mut p, 4);
    let client = p.a.tcp(c).unwrap().local();
    // The server closes first and ends in TIME-WAIT.
    p.b.tcp_close(p.now, s).unwrap();
    p.run(Duration::from_millis(10));
    p.a.tcp_close(p.now, c).unwrap();
    p.run(Duration::from_millis(10));
    assert_eq!(p.b.connection_count(), 1);
    // The same client port comes back with a SYN far beyond the old stream
    // and no timestamps.
    let syn = tcp_segment(
        client,
        SocketAddrV4::new(B_IP, 80),
        bare(3_000_000_000, None, Control::Syn),
    );
    p.b.handle_frame(p.now, &syn);
    let out = drain(&mut p.b, p.now);
    let syn_ack = out
        .iter()
        .filter_map(|f| parse_tcp(f))
        .find(|t| t.control == Control::Syn);
    assert_eq!(syn_ack.and_then(|t| t.ack), Some(SeqNum(3_000_000_001)));
    // An old duplicate SYN (below the old stream) only gets a challenge ACK.
    let mut p2 = Pair::ip();
    let (_l2, c2, s2) = listen_and_connect(&mut p2, 4);
    let client2 = p2.a.tcp(c2).unwrap().local();
    let rcv_nxt_peer = p2.tcp_from_a().last().unwrap().seq;
    p2.b.tcp_close(p2.now, s2).unwrap();
    p2.run(Duration::from_millis(10));
    p2.a.tcp_close(p2.now, c2).unwrap();
    p2.run(Duration::from_millis(10));
    let old = tcp_segment(
        client2,
        SocketAddrV4::new(B_IP, 80),
        bare((rcv_nxt_peer - 1000).0, None, Control::Syn),
    );
    p2.b.handle_frame(p2.now, &old);
    let out = drain(&mut p2.b, p2.now);
    assert!(out
        .iter()
        .filter_map(|f| parse_tcp(f))
        .all(|t| t.control != Control::Syn));
}

#[test]
fn buffer_autotuning_stops_at_the_memory_budget() {
    // B may hold its connection's initial buffers plus 100 KiB of growth.
    let defaults = TcpConfig::default();
    let initial = defaults.send_buffer + defaults.recv_buffer;
    let mut b_cfg = StackConfig::ip(B_IP, 24);
    b_cfg.max_buffer_memory = initial + (100 << 10);
    let b = Stack::new(b_cfg, CcRegistry::with_builtin()).unwrap();
    let mut p = Pair::new(ip_stack(A_IP), b);
    let (_l, c, s) = listen_and_connect(&mut p, 8);
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let (mut sent, mut got) = (0, Vec::with_capacity(data.len()));
    let mut buf = vec![0u8; 1 << 20];
    while got.len() < data.len() {
        if sent < data.len() {
            sent += p.a.tcp_send(p.now, c, &data[sent..]).unwrap_or(0);
        }
        p.run(Duration::from_millis(1));
        while let Ok(n @ 1..) = p.b.tcp_recv(p.now, s, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got, data);
    let mut grown = Vec::new();
    while let Some(e) = p.b.poll_event() {
        if let EventKind::ReceiveBufferGrown { to, .. } = e.kind {
            grown.push(to as usize);
        }
    }
    // The receive buffer grew, but only into the budget.
    assert!(!grown.is_empty(), "the receive buffer never grew");
    let limit = defaults.recv_buffer + (100 << 10);
    assert!(grown.iter().all(|&to| to <= limit), "{grown:?} > {limit}");
    let info = p.b.tcp_info(p.now, s).unwrap();
    assert!(info.rcv_ssthresh as usize <= limit);
}

#[test]
fn time_wait_connections_hold_no_buffer_memory() {
    // B has room for one connection's buffers. After it closes first, its
    // TIME-WAIT connection must not keep the next one out.
    let defaults = TcpConfig::default();
    let mut b_cfg = StackConfig::ip(B_IP, 24);
    b_cfg.max_buffer_memory = 2 * (defaults.send_buffer + defaults.recv_buffer) - 1;
    let b = Stack::new(b_cfg, CcRegistry::with_builtin()).unwrap();
    let mut p = Pair::new(ip_stack(A_IP), b);
    let (l, c, s) = listen_and_connect(&mut p, 8);
    p.b.tcp_close(p.now, s).unwrap();
    p.run(Duration::from_millis(10));
    p.a.tcp_close(p.now, c).unwrap();
    p.run(Duration::from_millis(10));
    assert_eq!(
        p.b.connection_count(),
        1,
        "B keeps its TIME-WAIT connection"
    );
    let c2 =
        p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 80), None)
            .unwrap();
    p.run(Duration::from_millis(10));
    assert_eq!(p.a.tcp_state(c2), Ok(State::Established));
    assert!(p.b.tcp_accept(l).is_ok());
}

#[test]
fn a_reset_connection_the_app_still_holds_frees_its_four_tuple() {
    // A handle the application has not closed yet keeps a CLOSED
    // connection's slot, but not its 4-tuple: a new SYN from the same peer
    // port must reach the listener instead of vanishing.
    let mut p = Pair::ip();
    let (l, c, s) = listen_and_connect(&mut p, 8);
    let client = p.a.tcp(c).unwrap().local();
    p.a.tcp_abort(p.now, c).unwrap();
    p.pump();
    assert_eq!(p.b.tcp_state(s), Ok(State::Closed));
    let listener = SocketAddrV4::new(B_IP, 80);
    let syn = tcp_segment(client, listener, bare(777, None, Control::Syn));
    p.b.handle_frame(p.now, &syn);
    let out = drain(&mut p.b, p.now);
    let answer = out.iter().find_map(|f| parse_tcp(f)).expect("an answer");
    assert_eq!(answer.control, Control::Syn, "SYN-ACK from the listener");
    assert_eq!(answer.ack, Some(SeqNum(778)));
    // The old handle still reports its own fate.
    assert_eq!(p.b.tcp_state(s), Ok(State::Closed));
    assert_eq!(p.b.tcp_pending(l), Ok(0));
}

/// Cuts a TCP/IPv4 super-segment into `gso`-byte segments as a NIC or the
/// kernel's GSO would (same header, sequence numbers advanced, FIN and PSH
/// on the last one only, checksums recomputed).
fn segment_offload(frame: &[u8], gso: usize) -> Vec<Vec<u8>> {
    let ip = Ipv4Repr::parse(&Ipv4Packet::new_checked(frame).unwrap(), true).unwrap();
    let tcp = TcpPacket::new_checked(&frame[20..]).unwrap();
    let seg = TcpRepr::parse(&tcp, &ip.src_addr, &ip.dst_addr, ChecksumMode::Verify).unwrap();
    let chunks: Vec<&[u8]> = seg.payload.chunks(gso).collect();
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, data)| {
            let last = i + 1 == n;
            let piece = TcpRepr {
                seq: seg.seq + (i * gso) as u32,
                control: if last { seg.control } else { Control::None },
                psh: seg.psh && last,
                payload: data,
                ..seg
            };
            let mut out = vec![0u8; piece.buffer_len()];
            piece.emit(
                &mut TcpPacket::new_unchecked(&mut out[..]),
                &ip.src_addr,
                &ip.dst_addr,
                ChecksumMode::Compute,
            );
            ip_packet(ip.src_addr, ip.dst_addr, Protocol::Tcp, &out)
        })
        .collect()
}

/// A connected pair where A may send TSO super-segments up to 64 KiB.
fn tso_pair() -> (Pair, ConnHandle, ConnHandle) {
    tso_pair_with(false)
}

/// Like [`tso_pair`], A's super-segments with a partial checksum when
/// `csum_offload`.
fn tso_pair_with(csum_offload: bool) -> (Pair, ConnHandle, ConnHandle) {
    let mut a_cfg = StackConfig::ip(A_IP, 24);
    a_cfg.tcp.delayed_ack = None;
    a_cfg.tso_max = Some(65_535);
    a_cfg.tx_csum_offload = csum_offload;
    let mut p = Pair::new(
        Stack::new(a_cfg, CcRegistry::with_builtin()).unwrap(),
        ip_stack(B_IP),
    );
    let (_l, c, s) = listen_and_connect(&mut p, 8);
    (p, c, s)
}

#[test]
fn tso_sends_super_segments_that_segment_into_a_byte_exact_stream() {
    let (mut p, c, s) = tso_pair();
    let data: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut big = 0;
    let mut buf = vec![0u8; p.a.config().max_frame_len()];
    let mut small = vec![0u8; 2000];
    for _ in 0..10_000 {
        if sent < data.len() {
            sent += p.a.tcp_send(p.now, c, &data[sent..]).unwrap_or(0);
        }
        while let Some(n) = p.a.poll_transmit(p.now, &mut buf) {
            match p.a.tx_gso_size() {
                Some(gso) => {
                    big += 1;
                    assert!(n > 1500 && n <= 65_535);
                    // Each piece fits the MTU, headers and options included.
                    for piece in segment_offload(&buf[..n], usize::from(gso)) {
                        assert!(piece.len() <= 1500);
                        p.b.handle_frame(p.now, &piece);
                    }
                }
                None => {
                    assert!(n <= 1500);
                    p.b.handle_frame(p.now, &buf[..n]);
                }
            }
        }
        while let Some(n) = p.b.poll_transmit(p.now, &mut small) {
            p.a.handle_frame(p.now, &small[..n]);
        }
        let mut chunk = [0u8; 65_536];
        while let Ok(n) = p.b.tcp_recv(p.now, s, &mut chunk) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        if got.len() == data.len() {
            break;
        }
        p.now += Duration::from_millis(1);
        p.a.handle_timeout(p.now);
        p.b.handle_timeout(p.now);
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "stream corrupted");
    assert!(big > 0, "no super-segment was sent");
}

/// The frames A sends for `data` in `p` after the handshake, each with
/// what `tx_gso_size` and `tx_csum_partial` said about it.
fn a_frames(
    p: &mut Pair,
    c: ConnHandle,
    data: &[u8],
) -> Vec<(Vec<u8>, Option<u16>, Option<PartialChecksum>)> {
    p.a.tcp_send(p.now, c, data).unwrap();
    let mut buf = vec![0u8; p.a.config().max_frame_len()];
    let mut out = Vec::new();
    while let Some(n) = p.a.poll_transmit(p.now, &mut buf) {
        out.push((buf[..n].to_vec(), p.a.tx_gso_size(), p.a.tx_csum_partial()));
    }
    out
}

#[test]
fn super_segments_carry_the_pseudo_header_sum_with_checksum_offload() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let (mut pf, c, _) = tso_pair_with(false);
    let (mut pp, c2, s2) = tso_pair_with(true);
    let full = a_frames(&mut pf, c, &data);
    let partial = a_frames(&mut pp, c2, &data);
    assert_eq!(full.len(), partial.len());
    let mut supers = 0;
    for ((f, gso, none), (g, gso2, at)) in full.iter().zip(&partial) {
        assert_eq!(gso, gso2);
        assert_eq!(*none, None, "no offload, no partial checksum");
        assert_eq!(f.len(), g.len());
        if gso.is_none() {
            // Frames that fit the MTU keep full checksums.
            assert!(g.len() <= 1500);
            assert_eq!(*at, None);
            assert_eq!(f, g);
            continue;
        }
        supers += 1;
        assert!(g.len() > 1500);
        let at = at.expect("a super-segment's checksum is partial");
        assert_eq!((at.start, at.offset), (20, 16));
        let field = usize::from(at.start + at.offset);
        // The field holds the pseudo-header sum (RFC 9293 §3.1) with the
        // TCP length of the whole super-segment, not complemented: what
        // the kernel expects behind VIRTIO_NET_HDR_F_NEEDS_CSUM.
        let src = Ipv4Addr::new(g[12], g[13], g[14], g[15]);
        let dst = Ipv4Addr::new(g[16], g[17], g[18], g[19]);
        let pseudo = checksum::pseudo_header_v4(&src, &dst, 6, (g.len() - 20) as u32);
        assert_eq!(u16::from_be_bytes([g[field], g[field + 1]]), pseudo);
        // Everything else is the same bytes as with the full checksum.
        assert_eq!(f[..field], g[..field]);
        assert_eq!(f[field + 2..], g[field + 2..]);
        // Completing it (Linux skb_checksum_help) gives the full checksum.
        let done = match !checksum::sum(&g[usize::from(at.start)..]) {
            0 => 0xffff,
            c => c,
        };
        assert_eq!(done.to_be_bytes(), [f[field], f[field + 1]]);
    }
    assert!(supers > 0, "no super-segment was sent");
    // Unverified, a partial checksum is a bad one; a receiver the link
    // vouches for (a loopback, the kernel's CHECKSUM_PARTIAL) takes it.
    let (g, gso, _) = &partial[0];
    assert!(gso.is_some());
    pp.b.handle_frame(pp.now, g);
    assert_eq!(pp.b.counters().tcp_bad_checksum, 1);
    let trusted = RxMeta {
        csum_verified: true,
        gso_size: *gso,
    };
    pp.b.handle_frame_with(pp.now, g, trusted);
    let mut chunk = vec![0u8; 70_000];
    let n = pp.b.tcp_recv(pp.now, s2, &mut chunk).unwrap();
    assert!(n > 1500);
    assert_eq!(chunk[..n], data[..n]);
}

#[test]
fn a_coalesced_receive_larger_than_the_mtu_is_accepted() {
    // GRO on the receive side: the link hands up one packet holding several
    // segments' worth of payload.
    let (mut p, c, s) = tso_pair();
    p.a.tcp_send(p.now, c, &[9u8; 30_000]).unwrap();
    let mut buf = vec![0u8; 70_000];
    let n = p.a.poll_transmit(p.now, &mut buf).unwrap();
    assert!(n > 10_000, "one super-segment");
    p.b.handle_frame(p.now, &buf[..n]);
    let mut chunk = vec![0u8; 70_000];
    let got = p.b.tcp_recv(p.now, s, &mut chunk).unwrap();
    assert_eq!(
        got,
        n - 40 - 12 * usize::from(p.a.tcp(c).unwrap().info(p.now).options.timestamps)
    );
}

#[test]
fn checksums_the_link_validated_are_not_verified_again() {
    // A SYN whose TCP checksum is wrong (as a partial checksum from a TAP
    // with offloads looks): dropped when the stack must verify, accepted
    // when the link says the kernel validated it.
    let mut s = ip_stack(A_IP);
    s.tcp_listen(SocketAddrV4::new(A_IP, 80), 4).unwrap();
    let now = Instant::from_secs(1);
    let mut syn = tcp_segment(
        PEER,
        SocketAddrV4::new(A_IP, 80),
        bare(1, None, Control::Syn),
    );
    syn[36] ^= 0xff;
    s.handle_frame(now, &syn);
    assert_eq!(s.counters().tcp_bad_checksum, 1);
    assert!(drain(&mut s, now).is_empty());
    let verified = RxMeta {
        csum_verified: true,
        gso_size: None,
    };
    s.handle_frame_with(now, &syn, verified);
    assert_eq!(s.counters().tcp_bad_checksum, 1);
    let out = drain(&mut s, now);
    let synack = out.iter().find_map(|f| parse_tcp(f)).expect("a SYN-ACK");
    assert_eq!(synack.control, Control::Syn);
    // The next frame is verified again.
    s.handle_frame(now, &syn);
    assert_eq!(s.counters().tcp_bad_checksum, 2);
}

#[test]
fn a_gro_super_segment_counts_as_its_segments_for_rcv_mss() {
    // Linux tcp_measure_rcv_mss: rcv_mss follows gso_size, not the
    // super-segment's length, so ACK pacing stays per two segments.
    let (mut p, c, s) = tso_pair();
    p.a.tcp_send(p.now, c, &[9u8; 30_000]).unwrap();
    let mut buf = vec![0u8; 70_000];
    let n = p.a.poll_transmit(p.now, &mut buf).unwrap();
    assert!(n > 10_000, "one super-segment");
    let gso = p.a.tx_gso_size().expect("a super-segment has a gso_size");
    let meta = RxMeta {
        csum_verified: false,
        gso_size: Some(gso),
    };
    p.b.handle_frame_with(p.now, &buf[..n], meta);
    let info = p.b.tcp_info(p.now, s).unwrap();
    assert_eq!(info.rcv_mss, u32::from(gso));
    assert!(info.bytes_received > 10_000);
}
