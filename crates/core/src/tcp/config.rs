//! Per-connection TCP settings. Defaults follow Linux where an RFC leaves a
//! choice; each field says which.

use crate::time::Duration;

/// Keepalive parameters (RFC 1122 §4.2.3.6; Linux `tcp_keepalive_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe (Linux default 7200 s).
    pub idle: Duration,
    /// Time between unanswered probes (Linux default 75 s).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (Linux default 9).
    pub count: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            count: 9,
        }
    }
}

/// TCP settings for one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpConfig {
    /// Initial send buffer capacity, bytes. Storage is allocated as data
    /// is written, so a large capacity costs nothing while unused.
    pub send_buffer: usize,
    /// Send-buffer autotuning: as the congestion window grows, the buffer
    /// grows to twice the window, up to this size (Linux
    /// `tcp_sndbuf_expand` and `tcp_wmem[2]`, 4 MiB). `None` keeps
    /// `send_buffer`, like setting `SO_SNDBUF` on Linux.
    pub send_buffer_max: Option<usize>,
    /// Initial receive buffer capacity, bytes; bounds the advertised window
    /// (Linux `tcp_rmem[1]`, 128 KiB).
    pub recv_buffer: usize,
    /// Receive-buffer autotuning: the buffer grows with the rate the
    /// application consumes data, up to this size (Linux `tcp_rmem[2]`,
    /// 6 MiB). `None` (or a value not above `recv_buffer`) keeps the buffer
    /// at `recv_buffer`, like setting `SO_RCVBUF` on Linux.
    pub recv_buffer_max: Option<usize>,
    /// Clamp for the MSS we advertise and use, on top of the MTU-derived one.
    pub mss_clamp: Option<u16>,
    /// RFC 6928 initial window, in segments (default 10).
    pub initial_cwnd_segments: u32,
    /// RFC 6298 §2.1 initial RTO (default 1 s).
    pub initial_rto: Duration,
    /// Lower bound on the RTO (RFC 6298 §2.4 says 1 s; Linux uses 200 ms, our default).
    pub min_rto: Duration,
    /// Upper bound on the RTO (RFC 6298 §2.5; Linux 120 s).
    pub max_rto: Duration,
    /// SYN retransmissions before connect fails (Linux `tcp_syn_retries`, 6).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions (Linux `tcp_synack_retries`, 5).
    pub synack_retries: u32,
    /// Data retransmissions before the connection times out (Linux `tcp_retries2`, 15).
    pub max_retries: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts 2·MSL (RFC 9293 §3.4.2).
    /// Default 30 s, so TIME-WAIT is 60 s as in Linux.
    pub msl: Duration,
    /// FIN-WAIT-2 timeout for orphaned connections (Linux `tcp_fin_timeout`, 60 s).
    pub fin_wait2_timeout: Option<Duration>,
    /// Delayed-ACK timeout (RFC 9293 §3.8.6.3 requires < 0.5 s; Linux 40 ms minimum ato).
    /// `None` acknowledges every segment at once.
    pub delayed_ack: Option<Duration>,
    /// Acknowledge at least every this many full-sized segments (RFC 9293 §3.8.6.3: 2).
    pub ack_every: u32,
    /// Segments acknowledged at once at connection start (Linux quick-ack mode).
    pub quickack_segments: u32,
    /// Disable Nagle's algorithm (RFC 896; `TCP_NODELAY`).
    pub nodelay: bool,
    /// Keepalive probes, off by default as in Linux (`SO_KEEPALIVE`).
    pub keepalive: Option<Keepalive>,
    /// RFC 7323 window scaling.
    pub window_scaling: bool,
    /// RFC 7323 timestamps (RTTM and PAWS).
    pub timestamps: bool,
    /// RFC 2018 SACK-permitted on our SYNs and SACK blocks in our ACKs.
    pub sack: bool,
    /// RFC 3042 limited transmit.
    pub limited_transmit: bool,
    /// Duplicate ACKs that trigger fast retransmit (RFC 5681 §3.2: 3).
    pub dupack_threshold: u32,
    /// RFC 2883 D-SACK: report duplicate segments in our SACK blocks.
    pub dsack: bool,
    /// RFC 8985 RACK time-based loss detection (Linux default). Off: RFC
    /// 6675 IsLost (DupThresh SACKed segments). Needs SACK; without it
    /// NewReno (RFC 6582) recovers, as in Linux.
    pub rack: bool,
    /// RFC 8985 §7 tail loss probes (needs SACK, as in Linux).
    pub tlp: bool,
    /// Undo the congestion response to retransmissions found spurious by
    /// timestamps (RFC 3522) or D-SACK (RFC 3708), as Linux does.
    pub undo: bool,
    /// Pace transmissions when the controller sets a pacing rate.
    pub pacing: bool,
    /// RFC 3168 ECN: `Off`, `Passive` (accept when the peer asks; Linux
    /// `tcp_ecn=2`, the default) or `On` (also ask on our SYNs).
    pub ecn: EcnMode,
    /// Congestion controller name, resolved through the stack's registry
    /// (default "cubic", as Linux).
    pub congestion_control: String,
    /// RFC 5961 §7: challenge ACKs per second, per connection (Linux 1000 per host).
    pub challenge_ack_limit: u32,
    /// RFC 1191 §6.3: how long a path MTU lowered by ICMP holds before the
    /// larger one is tried again (Linux `ip_rt_mtu_expires`, 10 minutes);
    /// `None` keeps it for the connection's life.
    pub pmtu_expires: Option<Duration>,
    /// Zero-window probes without answer before the connection is dropped
    /// (Linux uses `tcp_retries2` for this too).
    pub max_persist_probes: u32,
}

/// ECN negotiation policy (RFC 3168 §6.1.1; Linux `net.ipv4.tcp_ecn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EcnMode {
    /// Never negotiate ECN.
    Off,
    /// Accept ECN when the peer's SYN asks for it; do not ask (Linux 2).
    #[default]
    Passive,
    /// Ask for ECN on outgoing connections and accept it (Linux 1).
    On,
}

impl TcpConfig {
    /// The largest receive buffer the connection may have: what the window
    /// scale is chosen for (RFC 7323 §2.3).
    pub fn recv_buffer_limit(&self) -> usize {
        self.recv_buffer.max(self.recv_buffer_max.unwrap_or(0))
    }
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            send_buffer: 1 << 20,
            send_buffer_max: Some(4 << 20),
            recv_buffer: 128 << 10,
            recv_buffer_max: Some(6 << 20),
            mss_clamp: None,
            initial_cwnd_segments: 10,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            syn_retries: 6,
            synack_retries: 5,
            max_retries: 15,
            msl: Duration::from_secs(30),
            fin_wait2_timeout: Some(Duration::from_secs(60)),
            delayed_ack: Some(Duration::from_millis(40)),
            ack_every: 2,
            quickack_segments: 16,
            nodelay: false,
            keepalive: None,
            window_scaling: true,
            timestamps: true,
            sack: true,
            limited_transmit: true,
            dupack_threshold: 3,
            dsack: true,
            rack: true,
            tlp: true,
            undo: true,
            pacing: true,
            ecn: EcnMode::Passive,
            congestion_control: "cubic".to_string(),
            challenge_ack_limit: 1000,
            max_persist_probes: 15,
            pmtu_expires: Some(Duration::from_secs(600)),
        }
    }
}
