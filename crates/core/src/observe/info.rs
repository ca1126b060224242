//! `TcpInfo`: a typed snapshot of one connection, after Linux's
//! `struct tcp_info` (include/uapi/linux/tcp.h).

use crate::cc::{CaState, CcInfo};
use crate::tcp::State;
#[cfg(feature = "serde")]
use crate::time::serde_micros::{duration as us, option as opt_us};
use crate::time::Duration;

/// Options negotiated on the connection (Linux `tcpi_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct NegotiatedOptions {
    pub timestamps: bool,
    pub sack: bool,
    pub window_scale: bool,
    pub ecn: bool,
}

/// A snapshot of one connection's state.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TcpInfo {
    pub state: State,
    pub ca_state: CaState,
    /// Consecutive retransmissions of the current head segment (Linux `tcpi_retransmits`).
    pub retransmits: u32,
    /// Zero-window probes sent without answer (Linux `tcpi_probes`).
    pub probes: u32,
    /// RTO backoff exponent (Linux `tcpi_backoff`).
    pub backoff: u32,
    pub options: NegotiatedOptions,
    /// Window scale we apply to the peer's window.
    pub snd_wscale: u8,
    /// Window scale the peer applies to ours.
    pub rcv_wscale: u8,
    #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
    pub rto: Duration,
    /// Delayed-ACK timeout currently in use.
    #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
    pub ato: Duration,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    /// Segments sent and not yet acknowledged.
    pub unacked: u32,
    /// Segments SACKed (0 until SACK lands).
    pub sacked: u32,
    /// Segments considered lost.
    pub lost: u32,
    /// Segments retransmitted and still in flight.
    pub retrans: u32,
    /// Time since the last data sent / received / last ACK received.
    #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
    pub last_data_sent: Duration,
    #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
    pub last_data_recv: Duration,
    #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
    pub last_ack_recv: Duration,
    pub pmtu: u32,
    pub rcv_ssthresh: u32,
    /// Smoothed RTT and its variance (RFC 6298).
    #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
    pub rtt: Duration,
    #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
    pub rttvar: Duration,
    #[cfg_attr(feature = "serde", serde(serialize_with = "opt_us"))]
    pub min_rtt: Option<Duration>,
    pub snd_ssthresh: u32,
    /// Congestion window, bytes.
    pub snd_cwnd: u32,
    pub advmss: u32,
    /// Reordering degree in segments (Linux `tcpi_reordering`, default 3).
    pub reordering: u32,
    #[cfg_attr(feature = "serde", serde(serialize_with = "opt_us"))]
    pub rcv_rtt: Option<Duration>,
    /// Receive space (the window we can advertise), bytes.
    pub rcv_space: u32,
    pub total_retrans: u32,
    pub pacing_rate: Option<u64>,
    pub max_pacing_rate: Option<u64>,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    pub data_segs_out: u64,
    pub data_segs_in: u64,
    pub notsent_bytes: u32,
    pub delivered: u64,
    pub delivery_rate: Option<u64>,
    pub delivery_rate_app_limited: bool,
    /// Time with data outstanding (Linux `tcpi_busy_time`).
    #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
    pub busy_time: Duration,
    /// Time limited by the peer's receive window.
    #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
    pub rwnd_limited: Duration,
    /// Time limited by our send buffer.
    #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
    pub sndbuf_limited: Duration,
    pub dsack_dups: u32,
    pub reord_seen: u32,
    /// Peer's advertised window, bytes (scaled).
    pub snd_wnd: u32,
    /// Our advertised window, bytes (scaled).
    pub rcv_wnd: u32,
    pub rto_count: u32,
    pub fast_retransmits: u32,
    pub congestion_control: &'static str,
    pub cc_info: CcInfo,
}
