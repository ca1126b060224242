//! One TCP connection: the RFC 9293 state machine with its buffers, timers,
//! RTT estimation and loss recovery.
//!
//! The connection is sans-IO (quinn-style). Its methods come in four kinds:
//! getters; inputs (`handle_segment`, `handle_icmp_error`, `handle_timeout`);
//! application calls (`send`, `recv`, `shutdown`, `close`, `abort`); and
//! outputs (`poll_transmit`, `poll_timeout`, `poll_event`), which the driver
//! calls after every input until they return `None`.
//!
//! The input path lives in `input.rs`, the sender's ACK processing and
//! loss recovery in `loss.rs` (on the `scoreboard.rs` with `rack.rs`,
//! `prr.rs`, `rate.rs` and `recovery.rs`), segment selection and emission
//! in `output.rs`, timers in `timers.rs`; this file holds the state and the
//! application calls.

use super::autotune::RecvAutotune;
use super::config::{EcnMode, Keepalive, TcpConfig};
use super::prr::Prr;
use super::rack::{Rack, Tlp};
use super::rate::RateEstimator;
use super::recovery::DupAcks;
use super::recv_buffer::ReceiveBuffer;
use super::rtt::RttEstimator;
use super::scoreboard::Scoreboard;
use super::send_buffer::SendBuffer;
use super::state::State;
use super::timers::{TimerKind, Timers};
use crate::cc::{CaState, CongestionControl, Window};
use crate::observe::{ConnId, CwndCause, Event, EventKind, NegotiatedOptions, RstReason, TcpInfo};
use crate::time::{Duration, Instant};
use crate::Error;
use daytona_wire::tcp::{TcpOptions, TcpRepr};
use daytona_wire::SeqNum;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

/// IPv4 (20) + TCP (20) header bytes without options.
pub(crate) const IPV4_TCP_HEADERS: u16 = 40;
/// RFC 9293 §3.7.1: the default send MSS when the peer sends no MSS option.
pub(crate) const DEFAULT_MSS: u16 = 536;
/// RFC 7323 §2.3: the largest window scale shift.
pub(crate) const MAX_WINDOW_SCALE: u8 = 14;
/// Bytes the timestamps option takes in every segment (with two NOPs).
pub(crate) const TIMESTAMPS_OPTION_LEN: u32 = 12;
/// RFC 1191 §3: an MTU below 68 is never valid for IPv4.
pub(crate) const MIN_PMTU: u16 = 68;
/// Linux's floor for the MSS after PMTU reduction (`tcp_min_snd_mss`).
const MIN_SND_MSS: u16 = 48;

/// Parameters the stack decides for a new connection.
pub struct ConnParams {
    pub id: ConnId,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// Initial send sequence number (RFC 6528, from `IsnGenerator`).
    pub iss: SeqNum,
    /// Largest MSS the interface allows (MTU − 40).
    pub mss_limit: u16,
    pub config: TcpConfig,
    /// Built by the stack's registry from `config.congestion_control`.
    pub cc: Box<dyn CongestionControl>,
    /// RFC 7323 §5.4: per-connection random offset of the timestamp clock.
    pub ts_offset: u32,
    /// Segmentation offload: most payload bytes in one super-segment
    /// (0: none; every segment fits the MTU).
    pub tso_max: u32,
    /// Super-segments carry only the pseudo-header sum in their checksum
    /// field; the link completes it (`StackConfig::tx_csum_offload`).
    pub tx_csum_offload: bool,
}

/// What a SYN cookie remembered about the peer's SYN (RFC 4987 §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieOptions {
    /// The peer's initial sequence number.
    pub irs: SeqNum,
    pub peer_mss: u16,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
}

/// An ICMP error already matched to this connection by the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    pub source: Ipv4Addr,
    pub icmp_type: u8,
    pub code: u8,
    /// Next-hop MTU of a fragmentation-needed message (RFC 1191 §4).
    pub next_hop_mtu: Option<u16>,
    /// The sequence number quoted from our segment.
    pub seq: SeqNum,
}

/// The one segment being timed per flight: for the RTT (RFC 6298 §3,
/// Karn's algorithm) and, with the bytes delivered when it was sent, for a
/// delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimedSegment {
    pub seq: SeqNum,
    pub sent: Instant,
    pub delivered: u64,
}

/// Which direction(s) `shutdown` closes, as in `std::net::Shutdown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Read,
    Write,
    Both,
}

/// Counters behind `TcpInfo`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    pub data_segs_out: u64,
    pub data_segs_in: u64,
    pub total_retrans: u32,
    pub rto_count: u32,
    pub fast_retransmits: u32,
    pub last_data_sent: Option<Instant>,
    pub last_data_recv: Option<Instant>,
    pub last_ack_recv: Option<Instant>,
    pub busy_time: Duration,
    pub rwnd_limited: Duration,
    pub sndbuf_limited: Duration,
    /// When the current busy / rwnd-limited / sndbuf-limited period began.
    pub busy_since: Option<Instant>,
    pub rwnd_limited_since: Option<Instant>,
    pub sndbuf_limited_since: Option<Instant>,
    pub delivered: u64,
    /// D-SACKs received (Linux `tcpi_dsack_dups`).
    pub dsack_dups: u32,
    /// Reordering events seen (Linux `tcpi_reord_seen`).
    pub reord_seen: u32,
    /// Congestion responses undone as spurious.
    pub undo_count: u32,
    /// Bytes marked lost over the connection's life (Linux `tp->lost`).
    pub bytes_lost: u64,
}

/// One TCP connection.
pub struct Connection {
    pub(crate) id: ConnId,
    pub(crate) local: SocketAddrV4,
    pub(crate) remote: SocketAddrV4,
    pub(crate) tag: u64,
    pub(crate) config: TcpConfig,
    pub(crate) state: State,
    /// The connection was opened actively (we sent the first SYN).
    pub(crate) active_open: bool,

    // Send sequence space (RFC 9293 §3.3.1).
    pub(crate) iss: SeqNum,
    pub(crate) snd_una: SeqNum,
    pub(crate) snd_nxt: SeqNum,
    /// Highest sequence number sent plus one; `snd_nxt` goes back to
    /// `snd_una` on a timeout (go-back-N) while this stays.
    pub(crate) snd_max: SeqNum,
    /// Our SYN has been acknowledged. An explicit flag: `snd_una == iss`
    /// is also true again after 2^32 bytes.
    pub(crate) syn_acked: bool,
    /// Peer's window, scaled, bytes.
    pub(crate) snd_wnd: u32,
    pub(crate) snd_wl1: SeqNum,
    pub(crate) snd_wl2: SeqNum,
    /// Largest window the peer ever offered (RFC 9293 §3.8.6.2.1, RFC 5961 §5.2).
    pub(crate) max_snd_wnd: u32,

    // Receive sequence space.
    pub(crate) irs: SeqNum,
    pub(crate) rcv_nxt: SeqNum,
    /// Right edge of the window we last advertised; never moves left
    /// (RFC 9293 §3.8.6.2.2, RFC 7323 §2.4).
    pub(crate) rcv_adv: SeqNum,

    // Negotiated options.
    /// Shift we apply to the peer's window field (RFC 7323 §2.3).
    pub(crate) snd_wscale: u8,
    /// Shift the peer applies to our window field.
    pub(crate) rcv_wscale: u8,
    pub(crate) wscale_ok: bool,
    pub(crate) ts_ok: bool,
    pub(crate) sack_ok: bool,
    /// RFC 7323 §4.3 TS.Recent and when it was set (for the 24-day PAWS rule).
    pub(crate) ts_recent: u32,
    pub(crate) ts_recent_stamp: Instant,
    pub(crate) ts_offset: u32,
    /// Last acknowledgment number we sent (RFC 7323 §4.3 Last.ACK.sent).
    pub(crate) last_ack_sent: SeqNum,

    // Segment sizes.
    /// MSS the peer announced (RFC 9293 §3.7.1; 536 when absent).
    pub(crate) peer_mss: u16,
    /// Largest MSS the interface allows, or the PMTU-derived one.
    pub(crate) mss_limit: u16,
    /// MSS we announced.
    pub(crate) adv_mss: u16,
    /// Payload bytes in one full-sized segment we send, options accounted.
    pub(crate) snd_mss: u32,
    /// Largest segment payload received (Linux `rcv_mss`).
    pub(crate) rcv_mss: u32,
    /// Set by the stack while it hands in a coalesced super-segment (GRO):
    /// the size of the segments it was made of.
    pub(crate) rx_gso_size: Option<u16>,

    // Buffers. `snd_buf` holds the bytes from snd_una (after the SYN) onward.
    pub(crate) snd_buf: SendBuffer,
    pub(crate) rcv_buf: ReceiveBuffer,
    /// Receive-buffer autotuning and the receiver-side RTT it needs.
    pub(crate) autotune: RecvAutotune,
    /// How much the buffers may still grow within the stack's memory
    /// budget (the stack refreshes it after every call).
    pub(crate) buffer_headroom: usize,
    /// Sequence number of our FIN once the application shut the write side.
    pub(crate) fin_seq: Option<SeqNum>,
    /// Sequence number of the peer's FIN once seen (possibly out of order).
    pub(crate) peer_fin: Option<SeqNum>,
    pub(crate) fin_received: bool,
    pub(crate) read_shut: bool,
    pub(crate) write_shut: bool,
    /// The application closed the socket: nobody will read again.
    pub(crate) app_closed: bool,

    // RTT estimation (RFC 6298) with one timed segment (Karn's algorithm).
    pub(crate) rtt: RttEstimator,
    pub(crate) rtt_timed: Option<TimedSegment>,
    /// The latest delivery-rate sample, bytes per second.
    pub(crate) delivery_rate: Option<u64>,

    // Timers and retry counters.
    pub(crate) timers: Timers,
    /// Consecutive retransmission timeouts of the current head (Linux `retransmits`).
    pub(crate) retransmits: u32,
    /// Zero-window probes sent since the peer last answered (Linux
    /// `icsk_probes_out`): any ACK resets it.
    pub(crate) persist_probes: u32,
    /// Exponential backoff of the persist timer (Linux `icsk_backoff`):
    /// kept while the window stays closed, reset when it opens.
    pub(crate) persist_backoff: u32,
    pub(crate) keepalive_probes: u32,
    /// The SYN (or SYN-ACK) was retransmitted: its ACK gives no RTT sample.
    pub(crate) syn_retransmitted: bool,

    // Congestion control and loss recovery.
    pub(crate) cc: Box<dyn CongestionControl>,
    pub(crate) win: Window,
    /// Every segment in flight and what is known of it.
    pub(crate) board: Scoreboard,
    pub(crate) dupacks: DupAcks,
    /// NewReno without SACK: duplicate ACKs counted as delivered bytes.
    pub(crate) reno_sacked: u32,
    /// Recovery point: the episode (Recovery, Loss, CWR) ends when SND.UNA
    /// reaches it (RFC 6675 `RecoveryPoint`, Linux `high_seq`).
    pub(crate) high_seq: SeqNum,
    pub(crate) prr: Prr,
    pub(crate) rack: Rack,
    pub(crate) tlp: Tlp,
    /// The probe timer fired: send a loss probe at the next poll.
    pub(crate) tlp_pending: bool,
    /// RFC 6675 §4 rule 4: the rescue retransmission of this episode.
    pub(crate) rescue_rxt: Option<SeqNum>,
    pub(crate) rate: RateEstimator,
    /// Whether the latest delivery-rate sample was application-limited.
    pub(crate) delivery_rate_app_limited: bool,
    /// RTT of the newest delivered segment on the latest ACK (for the
    /// controller's samples).
    pub(crate) last_rtt: Option<Duration>,
    /// Undo (Linux `undo_marker`, `undo_retrans`, `retrans_stamp`): the
    /// episode's start, its retransmissions not yet D-SACKed, and our
    /// timestamp when it first retransmitted.
    pub(crate) undo_marker: Option<SeqNum>,
    pub(crate) undo_retrans: u32,
    pub(crate) retrans_stamp: Option<u32>,
    /// Pacing: no data segment before this time.
    pub(crate) next_send_at: Option<Instant>,
    pub(crate) last_pacing_rate: Option<u64>,
    pub(crate) last_cc_mode: Option<&'static str>,
    /// The congestion window limited the last transmission decision.
    pub(crate) cwnd_limited: bool,
    // ECN (RFC 3168).
    pub(crate) ecn_ok: bool,
    /// Set ECE on our ACKs until the peer's CWR (§6.1.3).
    pub(crate) ece_pending: bool,
    /// Set CWR on our next new data segment (§6.1.2).
    pub(crate) cwr_pending: bool,
    /// No second ECN reduction before SND.UNA passes this.
    pub(crate) cwr_high: SeqNum,
    /// The segment last returned by `poll_transmit` may carry ECT(0).
    pub(crate) last_tx_ect: bool,
    /// Segmentation offload: super-segment payload limit (0: off), and the
    /// segment size of the super-segment `poll_transmit` returned last.
    pub(crate) tso_max: u32,
    pub(crate) tso_configured: u32,
    pub(crate) last_tx_gso: Option<u16>,
    /// Super-segments get a partial checksum (see `ConnParams`).
    pub(crate) tx_csum_offload: bool,
    /// The segment being processed arrived with CE (RFC 3168 §5).
    pub(crate) rx_ce: bool,
    /// Set CWR on the segment being emitted.
    pub(crate) tx_cwr: bool,
    /// RFC 2883: a duplicate to report first in the next SACK option.
    pub(crate) dsack_pending: Option<(SeqNum, SeqNum)>,

    // ACK policy (RFC 9293 §3.8.6.3, RFC 5681 §4.2).
    pub(crate) ack_now: bool,
    /// Full-sized segments received since we last sent an ACK.
    pub(crate) segs_since_ack: u32,
    pub(crate) quickack_left: u32,
    /// Our last advertised window was zero.
    pub(crate) zero_window_sent: bool,
    /// The peer's last window was zero.
    pub(crate) zero_window_seen: bool,

    // Pending control output.
    pub(crate) pending_rst: Option<(SeqNum, Option<SeqNum>)>,
    /// Force one probe segment at the next poll (persist or keepalive).
    pub(crate) probe_pending: Option<crate::observe::ProbeKind>,
    /// The persist timer fired with a small non-zero window: send what fits
    /// (RFC 9293 §3.8.6.2.1 override of sender SWS avoidance).
    pub(crate) sws_override: bool,
    /// RFC 5961 §7 challenge-ACK rate limit: window start and count.
    pub(crate) challenge_window: Instant,
    pub(crate) challenge_count: u32,

    pub(crate) error: Option<Error>,
    /// Soft error from ICMP, reported instead of ETIMEDOUT (Linux `sk_err_soft`).
    pub(crate) soft_error: Option<Error>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: Stats,
    /// Last time anything was received (keepalive idle clock).
    pub(crate) last_recv: Instant,
    /// Last time new data was sent (idle restart, RFC 5681 §4.1).
    pub(crate) last_send: Instant,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("state", &self.state)
            .field("snd_una", &self.snd_una)
            .field("snd_nxt", &self.snd_nxt)
            .field("rcv_nxt", &self.rcv_nxt)
            .finish_non_exhaustive()
    }
}

/// RFC 7323 §2.3: the smallest shift that lets `buffer` be advertised.
pub(crate) fn window_scale_for(buffer: usize) -> u8 {
    let mut shift = 0u8;
    while shift < MAX_WINDOW_SCALE && (buffer >> shift) > 65_535 {
        shift += 1;
    }
    shift
}

impl Connection {
    fn new(params: ConnParams, state: State, active_open: bool, now: Instant) -> Connection {
        let ConnParams {
            id,
            local,
            remote,
            iss,
            mss_limit,
            config,
            cc,
            ts_offset,
            tso_max,
            tx_csum_offload,
        } = params;
        let mss_limit = match config.mss_clamp {
            Some(clamp) => mss_limit.min(clamp),
            None => mss_limit,
        }
        .max(MIN_SND_MSS);
        let snd_mss = u32::from(DEFAULT_MSS.min(mss_limit));
        let rtt = RttEstimator::new(config.initial_rto, config.min_rto, config.max_rto);
        let win = Window::new(config.initial_cwnd_segments.max(1) * snd_mss, snd_mss);
        let rcv_wscale = if config.window_scaling {
            window_scale_for(config.recv_buffer_limit())
        } else {
            0
        };
        let mut conn = Connection {
            id,
            local,
            remote,
            tag: 0,
            state,
            active_open,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            syn_acked: false,
            snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: iss,
            max_snd_wnd: 0,
            irs: SeqNum(0),
            rcv_nxt: SeqNum(0),
            rcv_adv: SeqNum(0),
            snd_wscale: 0,
            rcv_wscale,
            wscale_ok: false,
            ts_ok: false,
            sack_ok: false,
            ts_recent: 0,
            ts_recent_stamp: now,
            ts_offset,
            last_ack_sent: SeqNum(0),
            peer_mss: DEFAULT_MSS,
            mss_limit,
            adv_mss: mss_limit,
            snd_mss,
            rcv_mss: u32::from(DEFAULT_MSS.min(mss_limit)),
            rx_gso_size: None,
            snd_buf: SendBuffer::new(config.send_buffer),
            rcv_buf: ReceiveBuffer::new(config.recv_buffer),
            autotune: RecvAutotune::new(
                config
                    .recv_buffer_max
                    .filter(|max| *max > config.recv_buffer),
                10 * u64::from(mss_limit),
            ),
            buffer_headroom: usize::MAX,
            fin_seq: None,
            peer_fin: None,
            fin_received: false,
            read_shut: false,
            write_shut: false,
            app_closed: false,
            rtt,
            rtt_timed: None,
            delivery_rate: None,
            timers: Timers::default(),
            retransmits: 0,
            persist_probes: 0,
            persist_backoff: 0,
            keepalive_probes: 0,
            syn_retransmitted: false,
            cc,
            win,
            board: Scoreboard::new(),
            dupacks: DupAcks::new(iss),
            reno_sacked: 0,
            high_seq: iss,
            prr: Prr::default(),
            rack: Rack::new(),
            tlp: Tlp::default(),
            tlp_pending: false,
            rescue_rxt: None,
            rate: RateEstimator::new(now),
            delivery_rate_app_limited: false,
            last_rtt: None,
            undo_marker: None,
            undo_retrans: 0,
            retrans_stamp: None,
            next_send_at: None,
            last_pacing_rate: None,
            last_cc_mode: None,
            cwnd_limited: true,
            ecn_ok: false,
            ece_pending: false,
            cwr_pending: false,
            cwr_high: iss,
            last_tx_ect: false,
            tso_max,
            tso_configured: tso_max,
            last_tx_gso: None,
            tx_csum_offload,
            rx_ce: false,
            tx_cwr: false,
            dsack_pending: None,
            ack_now: false,
            segs_since_ack: 0,
            quickack_left: config.quickack_segments,
            zero_window_sent: false,
            zero_window_seen: false,
            pending_rst: None,
            probe_pending: None,
            sws_override: false,
            challenge_window: now,
            challenge_count: 0,
            error: None,
            soft_error: None,
            events: VecDeque::new(),
            stats: Stats::default(),
            last_recv: now,
            last_send: now,
            config,
        };
        conn.emit(
            now,
            EventKind::ConnectionCreated {
                local,
                remote,
                active: active_open,
            },
        );
        conn
    }

    /// Active open (RFC 9293 §3.10.1): the connection starts in SYN-SENT and
    /// its SYN comes out of `poll_transmit`.
    pub fn connect(params: ConnParams, now: Instant) -> Connection {
        let mut conn = Connection::new(params, State::Closed, true, now);
        conn.set_state(now, State::SynSent);
        conn.arm_rto(now);
        conn
    }

    /// Passive open from a SYN that a listener accepted (RFC 9293 §3.10.7.2):
    /// the connection starts in SYN-RECEIVED and its SYN-ACK comes out of
    /// `poll_transmit`.
    pub fn accept(params: ConnParams, syn: &TcpRepr<'_>, now: Instant) -> Connection {
        let mut conn = Connection::new(params, State::Listen, false, now);
        conn.irs = syn.seq;
        conn.rcv_nxt = syn.seq + 1;
        conn.rcv_adv = conn.rcv_nxt;
        conn.negotiate_options(&syn.options, true);
        // RFC 3168 §6.1.1: an ECN-setup SYN has ECE and CWR.
        conn.ecn_ok = conn.config.ecn != EcnMode::Off && syn.ece && syn.cwr;
        // RFC 9293 §3.10.7.2: the SYN's window is never scaled.
        conn.set_send_window(now, u32::from(syn.window), syn.seq, conn.iss);
        if let Some(ts) = syn.options.timestamps {
            conn.ts_recent = ts.tsval;
            conn.ts_recent_stamp = now;
        }
        conn.last_recv = now;
        conn.stats.segs_in += 1;
        conn.set_state(now, State::SynReceived);
        conn.arm_rto(now);
        conn
    }

    /// Completes a passive open from a valid SYN-cookie ACK (RFC 4987 §3.6):
    /// the connection goes straight to ESTABLISHED and then processes the
    /// ACK itself, which may carry data or a FIN.
    pub fn accept_cookie(
        params: ConnParams,
        cookie: &CookieOptions,
        ack: &TcpRepr<'_>,
        now: Instant,
    ) -> Connection {
        let mut conn = Connection::new(params, State::Listen, false, now);
        conn.irs = cookie.irs;
        conn.rcv_nxt = cookie.irs + 1;
        // The cookie's SYN-ACK advertised an unscaled window of up to 64 KiB.
        let offered = conn.rcv_buf.window().min(65_535) as u32;
        conn.rcv_adv = conn.rcv_nxt + offered;
        let options = TcpOptions {
            mss: Some(cookie.peer_mss),
            window_scale: cookie.window_scale,
            sack_permitted: cookie.sack_permitted,
            sack_blocks: Default::default(),
            timestamps: ack.options.timestamps,
        };
        conn.negotiate_options(&options, true);
        if let Some(ts) = ack.options.timestamps {
            conn.ts_recent = ts.tsval;
            conn.ts_recent_stamp = now;
        }
        // The SYN-ACK was sent by the cookie logic: ISS + 1 is next.
        conn.snd_nxt = conn.iss + 1;
        conn.snd_max = conn.snd_nxt;
        conn.set_state(now, State::SynReceived);
        conn.handle_segment(now, ack, false);
        conn
    }

    /// Applies the options of the peer's SYN (RFC 9293 §3.7.1, RFC 7323 §2.2
    /// and §3.2, RFC 2018 §2). `we_offered` is false in SYN-SENT when we did
    /// not offer an option ourselves.
    pub(crate) fn negotiate_options(&mut self, options: &TcpOptions, passive: bool) {
        // RFC 9293 §3.7.1: without the option, assume 536.
        self.peer_mss = options.mss.unwrap_or(DEFAULT_MSS).max(MIN_SND_MSS);
        // RFC 7323 §2.2: scaling only when both sides send the option.
        match options.window_scale {
            Some(shift) if self.config.window_scaling => {
                self.wscale_ok = true;
                // RFC 7323 §2.3: a shift above 14 is used as 14.
                self.snd_wscale = shift.min(MAX_WINDOW_SCALE);
            }
            _ => {
                self.wscale_ok = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        // RFC 7323 §3.2: timestamps only when both sides send them.
        self.ts_ok = self.config.timestamps && options.timestamps.is_some();
        // RFC 2018 §2: SACK only when both sides permitted it.
        self.sack_ok = self.config.sack && options.sack_permitted;
        let _ = passive;
        self.update_snd_mss(None);
    }

    /// Recomputes the send MSS from the peer's MSS, the interface limit and
    /// the options carried in every segment.
    pub(crate) fn update_snd_mss(&mut self, now: Option<Instant>) {
        let base = self.peer_mss.min(self.mss_limit);
        let options = if self.ts_ok { TIMESTAMPS_OPTION_LEN } else { 0 };
        let mss = u32::from(base).saturating_sub(options).max(1);
        if mss != self.snd_mss {
            self.snd_mss = mss;
            self.win.mss = mss;
            if let Some(now) = now {
                self.emit(now, EventKind::MssChange { mss });
            }
        }
    }

    // ----- events and state -----

    pub(crate) fn emit(&mut self, now: Instant, kind: EventKind) {
        self.events.push_back(Event {
            time: now,
            conn: self.id,
            tag: self.tag,
            kind,
        });
    }

    pub(crate) fn set_state(&mut self, now: Instant, to: State) {
        if self.state != to {
            let from = self.state;
            self.state = to;
            self.emit(now, EventKind::StateChange { from, to });
        }
    }

    /// Ends the connection with `error` visible to the application.
    pub(crate) fn fail(&mut self, now: Instant, error: Error) {
        if self.error.is_none() {
            self.error = Some(error);
            self.emit(now, EventKind::Error { error });
        }
        self.enter_closed(now);
    }

    /// Goes to CLOSED, dropping timers and unsent data.
    pub(crate) fn enter_closed(&mut self, now: Instant) {
        self.set_state(now, State::Closed);
        self.timers.clear_all();
        self.ack_now = false;
        self.probe_pending = None;
        self.tlp_pending = false;
        self.board.clear();
        self.stop_busy_clocks(now);
    }

    /// Queues a RST (sent at the next `poll_transmit`) and goes to CLOSED.
    pub(crate) fn reset(&mut self, now: Instant, reason: RstReason) {
        // RFC 9293 §3.10.4 (ABORT) / §3.10.7.4: <SEQ=SND.NXT><CTL=RST>.
        let seq = self.snd_nxt.latest(self.snd_max);
        let ack = if self.state == State::SynSent {
            None
        } else {
            Some(self.rcv_nxt)
        };
        self.pending_rst = Some((seq, ack));
        self.emit(now, EventKind::RstSent { reason });
        self.enter_closed(now);
    }

    /// Sends a RST and fails the connection with `error` (timeouts).
    pub(crate) fn reset_with_error(&mut self, now: Instant, reason: RstReason, error: Error) {
        self.reset(now, reason);
        self.fail(now, error);
    }

    /// Records a congestion-window change as an event.
    pub(crate) fn note_cwnd(&mut self, now: Instant, before: (u32, u32), cause: CwndCause) {
        let after = (self.win.cwnd, self.win.ssthresh);
        if after != before {
            self.emit(
                now,
                EventKind::CwndChange {
                    cwnd: after.0,
                    ssthresh: after.1,
                    cause,
                },
            );
        }
    }

    pub(crate) fn set_ca_state(&mut self, now: Instant, to: CaState) {
        let from = self.win.ca_state;
        if from != to {
            self.win.ca_state = to;
            let before = (self.win.cwnd, self.win.ssthresh);
            self.cc.set_state(&mut self.win, to, now);
            self.note_cwnd(now, before, CwndCause::Controller);
            self.emit(now, EventKind::CaStateChange { from, to });
        }
    }

    // ----- application calls -----

    /// Queues data for sending; returns how much was accepted.
    ///
    /// Errors: `WouldBlock` when the send buffer is full, `BrokenPipe` after
    /// the write side was shut down, the connection's error once it failed,
    /// `NotConnected` when it is closed.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        if let Some(err) = self.error {
            return Err(err);
        }
        match self.state {
            State::Closed | State::Listen => return Err(Error::NotConnected),
            _ if self.write_shut || self.app_closed => return Err(Error::BrokenPipe),
            // RFC 9293 §3.10.2: data may be queued before the handshake ends.
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {}
            _ => return Err(Error::BrokenPipe),
        }
        if data.is_empty() {
            return Ok(0);
        }
        let n = self.snd_buf.write(data);
        if n == 0 {
            return Err(Error::WouldBlock);
        }
        Ok(n)
    }

    /// Reads received data. `Ok(0)` means the peer closed its side (EOF).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if !self.read_shut && !buf.is_empty() {
            let n = self.rcv_buf.read(buf);
            if n > 0 {
                self.after_read();
                return Ok(n);
            }
        }
        if let Some(err) = self.error {
            return Err(err);
        }
        if self.read_shut || self.fin_received || buf.is_empty() {
            return Ok(0);
        }
        match self.state {
            State::Closed | State::Listen => Err(Error::NotConnected),
            _ => Err(Error::WouldBlock),
        }
    }

    /// After the application read, decide whether the window grew enough to
    /// be worth a window update: RFC 9293 §3.8.6.2.2 (by at least
    /// min(buffer/2, MSS)), and, as Linux's `tcp_cleanup_rbuf`, only when
    /// the advertised window has fallen to half the buffer and would at
    /// least double — otherwise the next data ACK carries the news.
    fn after_read(&mut self) {
        if !self.state.is_synchronized() || self.fin_received {
            return;
        }
        let advertised = self.rcv_adv.since(self.rcv_nxt);
        let free = self.rcv_buf.window() as u32;
        let capacity = self.rcv_buf.capacity() as u32;
        let threshold = (capacity / 2).min(self.rcv_mss.max(1));
        if 2 * advertised <= capacity
            && free >= advertised.saturating_mul(2)
            && free >= advertised.saturating_add(threshold)
        {
            self.ack_now = true;
        }
    }

    /// Shuts one or both directions (like `shutdown(2)`).
    pub fn shutdown(&mut self, now: Instant, how: Shutdown) -> Result<(), Error> {
        if matches!(self.state, State::Closed | State::Listen) {
            return Err(Error::NotConnected);
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.read_shut = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.shutdown_write(now);
        }
        Ok(())
    }

    /// Queues our FIN after the data already written (RFC 9293 §3.10.4).
    ///
    /// During the handshake the FIN waits for ESTABLISHED, so data queued
    /// before the handshake completes is still delivered (RFC 9293 §3.10.4
    /// for SYN-RECEIVED; in SYN-SENT the RFC deletes the TCB, which would
    /// silently discard queued data, so we defer instead).
    fn shutdown_write(&mut self, now: Instant) {
        if self.write_shut {
            return;
        }
        self.write_shut = true;
        if !self.state.is_synchronized() {
            return;
        }
        let data_start = self.data_start_seq();
        self.fin_seq = Some(data_start + self.snd_buf.len() as u32);
        match self.state {
            State::Established => self.set_state(now, State::FinWait1),
            State::CloseWait => self.set_state(now, State::LastAck),
            _ => {}
        }
    }

    /// On entering ESTABLISHED: apply a shutdown requested during the
    /// handshake.
    pub(crate) fn apply_deferred_fin(&mut self, now: Instant) {
        if self.write_shut && self.fin_seq.is_none() {
            self.write_shut = false;
            self.shutdown_write(now);
        }
    }

    /// The application is done with the socket (`close(2)`).
    ///
    /// RFC 2525 §2.17 and Linux: closing with unread data resets the
    /// connection, so the peer learns that data was lost.
    pub fn close(&mut self, now: Instant) {
        self.app_closed = true;
        self.read_shut = true;
        match self.state {
            State::Closed | State::Listen => {}
            // RFC 9293 §3.10.4: nothing sent yet, nothing queued: delete.
            State::SynSent if self.snd_buf.is_empty() => self.enter_closed(now),
            _ if self.rcv_buf.readable() > 0 || self.rcv_buf.has_out_of_order() => {
                self.reset(now, RstReason::DataLost)
            }
            _ => {
                self.shutdown_write(now);
                // Linux: an orphaned FIN-WAIT-2 lasts `tcp_fin_timeout`.
                if self.state == State::FinWait2 {
                    self.arm_fin_wait2(now);
                }
            }
        }
    }

    /// Aborts the connection with a RST (RFC 9293 §3.10.5).
    pub fn abort(&mut self, now: Instant) {
        self.app_closed = true;
        match self.state {
            State::Closed | State::Listen | State::SynSent | State::TimeWait => {
                self.enter_closed(now)
            }
            _ => self.reset(now, RstReason::Abort),
        }
    }

    // ----- settings -----

    /// Sets the application's tag carried by subsequent events.
    pub fn set_tag(&mut self, tag: u64) {
        self.tag = tag;
    }

    /// Turns Nagle's algorithm off (`TCP_NODELAY`).
    pub fn set_nodelay(&mut self, on: bool) {
        self.config.nodelay = on;
    }

    /// Turns keepalive on or off (`SO_KEEPALIVE`).
    pub fn set_keepalive(&mut self, now: Instant, keepalive: Option<Keepalive>) {
        self.config.keepalive = keepalive;
        self.keepalive_probes = 0;
        self.arm_keepalive(now);
    }

    /// RFC 6191 §2 (RFC 1122 §4.2.2.13): may this SYN end our TIME-WAIT and
    /// open a new incarnation? Yes if its timestamp is newer than the last
    /// one seen, or, without timestamps, if its sequence number is beyond
    /// everything received.
    pub fn time_wait_accepts(&self, seg: &TcpRepr<'_>) -> bool {
        if self.state != State::TimeWait
            || seg.control != daytona_wire::Control::Syn
            || seg.ack.is_some()
        {
            return false;
        }
        match (self.ts_ok, seg.options.timestamps) {
            (true, Some(ts)) => (ts.tsval.wrapping_sub(self.ts_recent) as i32) > 0,
            _ => seg.seq.after(self.rcv_nxt),
        }
    }

    /// Ends TIME-WAIT early, for a reopening SYN.
    pub fn finish_time_wait(&mut self, now: Instant) {
        if self.state == State::TimeWait {
            self.enter_closed(now);
        }
    }

    /// The next event, oldest first. Drain after every call.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- getters -----

    pub fn id(&self) -> ConnId {
        self.id
    }

    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    pub fn remote(&self) -> SocketAddrV4 {
        self.remote
    }

    pub fn tag(&self) -> u64 {
        self.tag
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &TcpConfig {
        &self.config
    }

    /// CLOSED with nothing left to transmit: the stack may free it.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.pending_rst.is_none()
    }

    /// The error that ended the connection, if any.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// Bytes the application can read now.
    pub fn recv_available(&self) -> usize {
        self.rcv_buf.readable()
    }

    /// Bytes the application can write now.
    pub fn send_free(&self) -> usize {
        if self.write_shut || self.error.is_some() {
            0
        } else {
            self.snd_buf.free()
        }
    }

    /// Bytes written by the application and not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.snd_buf.len()
    }

    /// Data, EOF or an error is pending for a reader.
    pub fn is_readable(&self) -> bool {
        self.rcv_buf.readable() > 0
            || self.fin_received
            || self.error.is_some()
            || self.read_shut
            || self.state == State::Closed
    }

    /// A writer would make progress (or get an error) now.
    pub fn is_writable(&self) -> bool {
        self.error.is_some()
            || self.write_shut
            || (self.state.can_send() && self.snd_buf.free() > 0)
            || self.state == State::Closed
    }

    /// The connection completed its handshake (for the accept queue).
    pub fn is_established(&self) -> bool {
        self.state.is_synchronized()
    }

    /// Send plus receive buffer capacity (for the stack's memory limit).
    pub fn buffer_capacity(&self) -> usize {
        self.snd_buf.capacity() + self.rcv_buf.capacity()
    }

    /// Effective send MSS (payload bytes per full segment).
    pub fn snd_mss(&self) -> u32 {
        self.snd_mss
    }

    /// The segment `poll_transmit` returned last may carry ECT(0) in its
    /// IP header (RFC 3168 §6.1.2: new data of an ECN connection only).
    pub fn tx_ect(&self) -> bool {
        self.last_tx_ect
    }

    /// Caps super-segments at `room` payload bytes for the next
    /// `poll_transmit` (the caller's buffer); never above the configured
    /// limit.
    pub fn limit_tso(&mut self, room: usize) {
        self.tso_max = self.tso_configured.min(room as u32);
    }

    /// When the segment `poll_transmit` returned last is a TSO
    /// super-segment: the payload size of each segment the link must cut
    /// it into (the same header, options included, on every one).
    pub fn tx_gso_size(&self) -> Option<u16> {
        self.last_tx_gso
    }

    /// Whether the segment `poll_transmit` returned last carries a partial
    /// checksum: a super-segment of a connection with `tx_csum_offload`,
    /// its checksum field holding the pseudo-header sum only (RFC 9293
    /// §3.1 pseudo-header with the TCP length, folded, not complemented)
    /// for the link to complete over each segment it cuts.
    pub fn tx_csum_partial(&self) -> bool {
        self.tx_csum_offload && self.last_tx_gso.is_some()
    }

    /// The current congestion window view.
    pub fn window(&self) -> &Window {
        &self.win
    }

    /// Sequence number of the first data byte (after the SYN).
    pub(crate) fn data_start_seq(&self) -> SeqNum {
        if self.syn_acked {
            self.snd_una
        } else {
            self.iss + 1
        }
    }

    /// Bytes sent and not yet acknowledged (RFC 5681 FlightSize).
    pub(crate) fn flight_size(&self) -> u32 {
        self.snd_max.since(self.snd_una)
    }

    /// Our timestamp clock: milliseconds plus the connection's offset
    /// (RFC 7323 §5.4, 1 ms ticks as Linux).
    pub(crate) fn ts_now(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// A snapshot of the connection, after Linux's `tcp_info`.
    pub fn info(&self, now: Instant) -> TcpInfo {
        let since = |t: Option<Instant>| t.map(|t| now - t).unwrap_or_default();
        let mut busy_time = self.stats.busy_time;
        if let Some(t) = self.stats.busy_since {
            busy_time += now - t;
        }
        let mut rwnd_limited = self.stats.rwnd_limited;
        if let Some(t) = self.stats.rwnd_limited_since {
            rwnd_limited += now - t;
        }
        let mut sndbuf_limited = self.stats.sndbuf_limited;
        if let Some(t) = self.stats.sndbuf_limited_since {
            sndbuf_limited += now - t;
        }
        let mss = self.snd_mss.max(1);
        let unacked = self.snd_max.since(self.snd_una).div_ceil(mss);
        let lost = self.board.lost_bytes().div_ceil(mss);
        let retrans = self.board.retrans_bytes().div_ceil(mss);
        let sacked = self.board.sacked_bytes().div_ceil(mss);
        let srtt = self.rtt.srtt();
        let delivery_rate = self.delivery_rate;
        TcpInfo {
            state: self.state,
            ca_state: self.win.ca_state,
            retransmits: self.retransmits,
            probes: self.persist_probes.max(self.keepalive_probes),
            backoff: self.rtt.backoff_count(),
            options: NegotiatedOptions {
                timestamps: self.ts_ok,
                sack: self.sack_ok,
                window_scale: self.wscale_ok,
                ecn: self.ecn_ok,
            },
            snd_wscale: self.snd_wscale,
            rcv_wscale: self.rcv_wscale,
            rto: self.rtt.rto(),
            ato: self.config.delayed_ack.unwrap_or_default(),
            snd_mss: self.snd_mss,
            rcv_mss: self.rcv_mss,
            unacked,
            sacked,
            lost,
            retrans,
            last_data_sent: since(self.stats.last_data_sent),
            last_data_recv: since(self.stats.last_data_recv),
            last_ack_recv: since(self.stats.last_ack_recv),
            pmtu: u32::from(self.mss_limit) + u32::from(IPV4_TCP_HEADERS),
            rcv_ssthresh: self.rcv_buf.capacity() as u32,
            rtt: srtt.unwrap_or_default(),
            rttvar: self.rtt.rttvar(),
            min_rtt: self.rtt.min_rtt(),
            snd_ssthresh: self.win.ssthresh,
            snd_cwnd: self.win.cwnd,
            advmss: u32::from(self.adv_mss),
            reordering: self.config.dupack_threshold,
            rcv_rtt: self.autotune.rtt(),
            rcv_space: self.rcv_buf.window() as u32,
            total_retrans: self.stats.total_retrans,
            pacing_rate: self.win.pacing_rate,
            max_pacing_rate: None,
            bytes_acked: self.stats.bytes_acked,
            bytes_received: self.stats.bytes_received,
            bytes_sent: self.stats.bytes_sent,
            bytes_retrans: self.stats.bytes_retrans,
            segs_out: self.stats.segs_out,
            segs_in: self.stats.segs_in,
            data_segs_out: self.stats.data_segs_out,
            data_segs_in: self.stats.data_segs_in,
            notsent_bytes: self.unsent_bytes(),
            delivered: self.stats.delivered,
            delivery_rate,
            delivery_rate_app_limited: self.delivery_rate_app_limited,
            busy_time,
            rwnd_limited,
            sndbuf_limited,
            dsack_dups: self.stats.dsack_dups,
            reord_seen: self.stats.reord_seen,
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.rcv_adv.since(self.rcv_nxt),
            rto_count: self.stats.rto_count,
            fast_retransmits: self.stats.fast_retransmits,
            congestion_control: self.cc.name(),
            cc_info: self.cc.info(),
        }
    }

    /// Bytes written by the application and never sent.
    pub(crate) fn unsent_bytes(&self) -> u32 {
        let sent_data = if !self.syn_acked {
            0
        } else {
            self.snd_nxt.since(self.data_start_seq())
        };
        (self.snd_buf.len() as u32).saturating_sub(sent_data)
    }

    /// Stops the busy / limited clocks (when the connection goes idle or closes).
    pub(crate) fn stop_busy_clocks(&mut self, now: Instant) {
        if let Some(t) = self.stats.busy_since.take() {
            self.stats.busy_time += now - t;
        }
        if let Some(t) = self.stats.rwnd_limited_since.take() {
            self.stats.rwnd_limited += now - t;
        }
        if let Some(t) = self.stats.sndbuf_limited_since.take() {
            self.stats.sndbuf_limited += now - t;
        }
    }

    /// Arms a timer at `now + after`.
    pub(crate) fn arm(&mut self, kind: TimerKind, at: Instant) {
        self.timers.set(kind, at);
    }
}
