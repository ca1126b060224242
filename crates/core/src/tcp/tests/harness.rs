//! A scripted-segment harness for one connection: segments in, segments
//! out, explicit time. Tests read like a trace of the wire.

use crate::cc::CcRegistry;
use crate::observe::{ConnId, EventKind};
use crate::tcp::{ConnParams, Connection, TcpConfig};
use crate::time::{Duration, Instant};
use daytona_wire::tcp::{Control, TcpOptions, TcpPacket, TcpRepr, Timestamps};
use daytona_wire::{ChecksumMode, SeqNum};
use std::net::{Ipv4Addr, SocketAddrV4};

pub const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40_000);
pub const REMOTE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80);
/// Our initial sequence number.
pub const ISS: SeqNum = SeqNum(10_000);
/// The peer's initial sequence number.
pub const IRS: SeqNum = SeqNum(50_000);
pub const MSS: u16 = 1460;

/// A segment as it appeared on the wire, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seg {
    pub seq: SeqNum,
    pub ack: Option<SeqNum>,
    pub control: Control,
    pub psh: bool,
    pub ece: bool,
    pub cwr: bool,
    pub window: u16,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
}

impl Seg {
    pub fn len(&self) -> usize {
        self.payload.len()
    }
    pub fn sack(&self) -> Vec<(u32, u32)> {
        self.options
            .sack_blocks
            .iter()
            .map(|b| (b.left.0, b.right.0))
            .collect()
    }
}

/// A segment from the peer, with struct-update friendly defaults.
#[derive(Debug, Clone)]
pub struct PeerSeg {
    pub seq: SeqNum,
    pub ack: Option<SeqNum>,
    pub control: Control,
    pub window: u16,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
    pub ece: bool,
    pub cwr: bool,
}

impl PeerSeg {
    pub fn data(seq: SeqNum, ack: SeqNum, payload: &[u8]) -> PeerSeg {
        PeerSeg {
            seq,
            ack: Some(ack),
            control: Control::None,
            window: 65_535,
            options: TcpOptions::default(),
            payload: payload.to_vec(),
            ece: false,
            cwr: false,
        }
    }

    pub fn ack(seq: SeqNum, ack: SeqNum) -> PeerSeg {
        PeerSeg::data(seq, ack, &[])
    }

    pub fn with_window(mut self, window: u16) -> PeerSeg {
        self.window = window;
        self
    }

    pub fn with_control(mut self, control: Control) -> PeerSeg {
        self.control = control;
        self
    }

    /// SACK blocks, most recent first (RFC 2018 §4).
    pub fn with_sack(mut self, blocks: &[(SeqNum, SeqNum)]) -> PeerSeg {
        for &(left, right) in blocks {
            self.options
                .sack_blocks
                .push(daytona_wire::tcp::SackBlock { left, right });
        }
        self
    }

    pub fn with_ack(mut self, ack: SeqNum) -> PeerSeg {
        self.ack = Some(ack);
        self
    }

    pub fn with_ece(mut self) -> PeerSeg {
        self.ece = true;
        self
    }

    pub fn with_cwr(mut self) -> PeerSeg {
        self.cwr = true;
        self
    }

    pub fn with_ts(mut self, tsval: u32, tsecr: u32) -> PeerSeg {
        self.options.timestamps = Some(Timestamps { tsval, tsecr });
        self
    }

    pub fn repr(&self) -> TcpRepr<'_> {
        TcpRepr {
            src_port: REMOTE.port(),
            dst_port: LOCAL.port(),
            seq: self.seq,
            ack: self.ack,
            control: self.control,
            psh: !self.payload.is_empty(),
            ece: self.ece,
            cwr: self.cwr,
            window: self.window,
            urgent: None,
            options: self.options,
            payload: &self.payload,
        }
    }
}

pub struct Harness {
    pub conn: Connection,
    pub now: Instant,
    buf: Vec<u8>,
    pub events: Vec<EventKind>,
}

pub fn config() -> TcpConfig {
    TcpConfig {
        // Scripts are easier to read without options unless a test asks.
        timestamps: false,
        window_scaling: false,
        sack: false,
        delayed_ack: None,
        quickack_segments: 0,
        recv_buffer: 64 * 1024,
        send_buffer: 256 * 1024,
        // Fixed sizes, so scripts see the windows they set up.
        recv_buffer_max: None,
        send_buffer_max: None,
        // Scripts check RFC 5681 arithmetic; CUBIC has its own tests.
        congestion_control: "newreno".to_string(),
        ..TcpConfig::default()
    }
}

pub fn params(config: TcpConfig) -> ConnParams {
    let cc = CcRegistry::with_builtin()
        .build(&config.congestion_control)
        .expect("registered controller");
    ConnParams {
        id: ConnId(1),
        local: LOCAL,
        remote: REMOTE,
        iss: ISS,
        mss_limit: MSS,
        config,
        cc,
        ts_offset: 0,
        tso_max: 0,
        tx_csum_offload: false,
    }
}

impl Harness {
    pub fn connect(config: TcpConfig) -> Harness {
        let now = Instant::from_secs(1);
        let conn = Connection::connect(params(config), now);
        Harness::wrap(conn, now)
    }

    pub fn wrap(conn: Connection, now: Instant) -> Harness {
        let mut h = Harness {
            conn,
            now,
            buf: vec![0; 70_000],
            events: Vec::new(),
        };
        h.drain_events();
        h
    }

    /// Active open completed with a plain SYN-ACK (MSS 1460, no other options).
    pub fn established(config: TcpConfig) -> Harness {
        Harness::established_with(
            config,
            TcpOptions {
                mss: Some(MSS),
                ..TcpOptions::default()
            },
        )
    }

    pub fn established_with(config: TcpConfig, peer_options: TcpOptions) -> Harness {
        let mut h = Harness::connect(config);
        let syn = h.recv_one();
        assert_eq!(syn.control, Control::Syn);
        h.advance(Duration::from_millis(10));
        h.send(PeerSeg {
            seq: IRS,
            ack: Some(ISS + 1),
            control: Control::Syn,
            window: 65_535,
            options: peer_options,
            payload: vec![],
            ece: false,
            cwr: false,
        });
        let ack = h.recv_one();
        assert_eq!(ack.ack, Some(IRS + 1));
        assert_eq!(h.conn.state(), crate::tcp::State::Established);
        h.events.clear();
        h
    }

    pub fn send(&mut self, seg: PeerSeg) {
        let repr = seg.repr();
        self.conn.handle_segment(self.now, &repr, false);
        self.drain_events();
    }

    /// Everything the connection transmits now, parsed back from the wire.
    pub fn recv(&mut self) -> Vec<Seg> {
        let mut out = Vec::new();
        while let Some(n) = self.conn.poll_transmit(self.now, &mut self.buf) {
            let packet = TcpPacket::new_checked(&self.buf[..n]).expect("valid TCP segment");
            let repr = TcpRepr::parse(&packet, LOCAL.ip(), REMOTE.ip(), ChecksumMode::Verify)
                .expect("segment parses with a valid checksum");
            out.push(Seg {
                seq: repr.seq,
                ack: repr.ack,
                control: repr.control,
                psh: repr.psh,
                ece: repr.ece,
                cwr: repr.cwr,
                window: repr.window,
                options: repr.options,
                payload: repr.payload.to_vec(),
            });
            assert!(out.len() < 10_000, "runaway transmission");
        }
        self.drain_events();
        out
    }

    pub fn recv_one(&mut self) -> Seg {
        let mut segs = self.recv();
        assert_eq!(segs.len(), 1, "expected exactly one segment, got {segs:#?}");
        segs.remove(0)
    }

    pub fn recv_nothing(&mut self) {
        let segs = self.recv();
        assert!(segs.is_empty(), "expected no segment, got {segs:#?}");
    }

    /// Moves time forward, firing every timer that falls due on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.conn.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.conn.handle_timeout(self.now);
            self.drain_events();
            if self.conn.poll_timeout() == Some(t) {
                break;
            }
        }
        self.now = end;
        self.conn.handle_timeout(self.now);
        self.drain_events();
    }

    /// Fires the next timer, returning how long that took.
    pub fn fire_next_timer(&mut self) -> Duration {
        let t = self.conn.poll_timeout().expect("a timer is armed");
        let d = t - self.now;
        self.now = t;
        self.conn.handle_timeout(t);
        self.drain_events();
        d
    }

    pub fn drain_events(&mut self) {
        while let Some(e) = self.conn.poll_event() {
            assert_eq!(e.conn, ConnId(1));
            self.events.push(e.kind);
        }
    }

    pub fn write(&mut self, data: &[u8]) -> usize {
        self.conn.send(data).expect("send accepted")
    }

    pub fn read_all(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = self.conn.recv(&mut chunk) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        out
    }
}

/// `n` bytes of a recognisable pattern.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}
