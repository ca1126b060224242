//! Typed events. Every protocol decision the engine takes is published as an
//! [`Event`] carrying the connection id, the time and the application's tag,
//! so it can be correlated with what the application was doing.

use crate::cc::CaState;
use crate::tcp::State;
#[cfg(feature = "serde")]
use crate::time::serde_micros::duration as us;
use crate::time::{Duration, Instant};
use daytona_wire::SeqNum;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Identifies one connection within a stack for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(transparent))]
pub struct ConnId(pub u64);

/// One event.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Event {
    #[cfg_attr(feature = "serde", serde(rename = "time_us"))]
    pub time: Instant,
    /// The connection, or `ConnId(0)` for stack-wide events.
    pub conn: ConnId,
    /// The application's tag on the connection at the time (0 if none).
    pub tag: u64,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub kind: EventKind,
}

/// Why the congestion window or ssthresh changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum CwndCause {
    /// Initial window (RFC 6928 / configuration).
    Init,
    /// Growth on an ACK (slow start or congestion avoidance).
    Ack,
    /// Reduction on entering fast recovery.
    FastRecovery,
    /// Inflation/deflation during fast recovery (RFC 6582).
    RecoveryAck,
    /// Exit from fast recovery (RFC 6582 §3.2 step 3).
    RecoveryExit,
    /// Reduction after a retransmission timeout (RFC 5681 §3.1).
    Rto,
    /// Restart after idle (RFC 5681 §4.1).
    IdleRestart,
    /// Restored because a loss response was spurious.
    Undo,
    /// Set by the controller through `cong_control` or an event hook.
    Controller,
    /// Path MTU changed.
    MssChange,
    /// ECN congestion echo (RFC 3168 §6.1.2).
    Ecn,
}

/// Why a segment was retransmitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum RetransmitCause {
    /// Retransmission timeout (RFC 6298 §5.4).
    Rto,
    /// Duplicate-ACK threshold or RFC 6675 IsLost (fast retransmit).
    FastRetransmit,
    /// NewReno partial acknowledgment (RFC 6582 §3.2 step 5).
    PartialAck,
    /// A retransmitted SYN or SYN-ACK.
    Syn,
    /// Path MTU decrease (RFC 1191): resent in smaller segments.
    PmtuDecrease,
    /// RACK time-based loss detection (RFC 8985 §6).
    Rack,
    /// Tail loss probe (RFC 8985 §7).
    Tlp,
    /// RFC 6675 §4 NextSeg rule 4: the rescue retransmission.
    Rescue,
}

/// Why a probe segment was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum ProbeKind {
    /// Zero-window probe from the persist timer (RFC 9293 §3.8.6.1).
    ZeroWindow,
    /// Keepalive probe (RFC 1122 §4.2.3.6).
    Keepalive,
}

/// Why a RST was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum RstReason {
    /// Segment for no connection or listener (RFC 9293 §3.10.7.1).
    NoConnection,
    /// Unacceptable ACK in SYN-SENT / SYN-RECEIVED / LISTEN (RFC 9293 §3.10.7).
    BadAck,
    /// The application aborted the connection.
    Abort,
    /// Closed with unread received data (RFC 2525 §2.17).
    DataLost,
    /// Data arrived after the application shut reading and closed (RFC 9293 §3.10.7.4).
    DataAfterClose,
    /// Retries exhausted / user timeout.
    Timeout,
    /// Accept backlog or memory limit.
    ResourceLimit,
}

/// Why an incoming segment was dropped without changing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum DropReason {
    /// Failed the acceptability test (RFC 9293 §3.10.7.4).
    Unacceptable,
    /// PAWS rejected an old timestamp (RFC 7323 §5).
    Paws,
    /// ACK for data never sent (RFC 9293 §3.10.7.4, RFC 5961 §5).
    AckOfUnsent,
    /// ACK too old (RFC 5961 §5.2).
    AckTooOld,
    /// No ACK bit on a non-SYN segment.
    NoAck,
    /// Receive buffer full.
    NoBufferSpace,
    /// Malformed or not addressed to us.
    Malformed,
}

/// Why a challenge ACK was sent (RFC 5961).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum ChallengeReason {
    /// RST in window but not exactly at rcv_nxt (RFC 5961 §3.2).
    Rst,
    /// SYN in a synchronized state (RFC 5961 §4.2).
    Syn,
    /// ACK outside the acceptable range (RFC 5961 §5.2).
    Ack,
}

/// What happened.
/// How a retransmission was found to be unnecessary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum SpuriousDetection {
    /// The ACK echoed a timestamp older than the first retransmission
    /// (RFC 3522 Eifel detection, Linux `tcp_packet_delayed`).
    Timestamps,
    /// Every retransmission of the episode came back as a D-SACK
    /// (RFC 2883 §4, RFC 3708).
    Dsack,
    /// The tail loss probe was D-SACKed: nothing was lost (RFC 8985 §7.4).
    TlpDsack,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "event", rename_all = "snake_case")
)]
pub enum EventKind {
    /// A connection was created.
    ConnectionCreated {
        local: SocketAddrV4,
        remote: SocketAddrV4,
        active: bool,
    },
    /// RFC 9293 state transition.
    StateChange { from: State, to: State },
    /// An RTT measurement and the estimator's new values (RFC 6298 §2).
    RttSample {
        #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
        rtt: Duration,
        #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
        srtt: Duration,
        #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
        rttvar: Duration,
        #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
        rto: Duration,
    },
    /// Congestion window or ssthresh changed.
    CwndChange {
        cwnd: u32,
        ssthresh: u32,
        cause: CwndCause,
    },
    /// The controller's state changed.
    CaStateChange { from: CaState, to: CaState },
    /// A segment was retransmitted.
    Retransmit {
        seq: SeqNum,
        len: u32,
        cause: RetransmitCause,
    },
    /// A retransmission timer fired (RFC 6298 §5.4-5.7).
    RtoFired {
        backoff: u32,
        #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
        rto: Duration,
    },
    /// A probe was sent.
    Probe { kind: ProbeKind },
    /// Loss recovery began (RFC 5681 §3.2 / RFC 6582).
    RecoveryStart {
        recover: SeqNum,
        cause: RetransmitCause,
    },
    /// Loss recovery ended (full ACK of `recover`).
    RecoveryEnd { recover: SeqNum },
    /// The peer's advertised window changed (scaled, bytes).
    SendWindowUpdate { wnd: u32 },
    /// The peer advertised a zero window.
    ZeroWindowReceived,
    /// We advertised a zero window.
    ZeroWindowSent,
    /// Receive-buffer autotuning grew the buffer (bytes).
    ReceiveBufferGrown { from: u32, to: u32 },
    /// Send-buffer autotuning grew the buffer (bytes).
    SendBufferGrown { from: u32, to: u32 },
    /// Effective send MSS changed (PMTU, option).
    MssChange { mss: u32 },
    /// An ICMP error for this connection arrived.
    IcmpError {
        source: Ipv4Addr,
        icmp_type: u8,
        code: u8,
        /// Next-hop MTU for fragmentation-needed (RFC 1191).
        mtu: Option<u16>,
    },
    /// We sent a RST.
    RstSent { reason: RstReason },
    /// We received an acceptable RST.
    RstReceived,
    /// An incoming segment was dropped.
    SegmentDropped { reason: DropReason },
    /// A challenge ACK was sent (or suppressed by the rate limit).
    ChallengeAck {
        reason: ChallengeReason,
        suppressed: bool,
    },
    /// Loss detection marked `bytes` starting at `seq` lost.
    LossDetected {
        seq: SeqNum,
        bytes: u32,
        by: RetransmitCause,
    },
    /// A tail loss probe was sent (RFC 8985 §7.3): new data or, when
    /// there is none, the last segment again.
    LossProbe { seq: SeqNum, retransmission: bool },
    /// Retransmissions proved unnecessary (RFC 3522 timestamps, RFC 2883
    /// D-SACK); `undone` when the congestion response was reverted.
    SpuriousRetransmission { by: SpuriousDetection, undone: bool },
    /// A D-SACK arrived: the peer received `[left, right)` twice.
    DsackReceived { left: SeqNum, right: SeqNum },
    /// Reordering was detected; RACK's window is now `reo_wnd`.
    ReorderingDetected {
        #[cfg_attr(feature = "serde", serde(serialize_with = "us"))]
        reo_wnd: Duration,
    },
    /// A data segment arrived with ECN Congestion Experienced (RFC 3168).
    EcnCeReceived,
    /// The peer echoed congestion (ECE); the window is reduced once per
    /// round trip (RFC 3168 §6.1.2).
    EcnEchoReceived,
    /// The controller changed the pacing rate (bytes per second).
    PacingRateChange { rate: Option<u64> },
    /// The controller moved to another internal state (e.g. BBR's mode).
    CcStateChange { from: String, to: String },
    /// The connection failed with an error the application will see.
    Error { error: crate::Error },
    /// A SYN cookie was sent because the SYN queue was full.
    SynCookieSent,
    /// A listener's accept backlog or SYN queue overflowed.
    ListenOverflow { local: SocketAddrV4 },
}
