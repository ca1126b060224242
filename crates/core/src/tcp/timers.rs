//! The connection's timers: a small table indexed by [`TimerKind`]
//! (quinn-style). `poll_timeout` is its minimum; a spurious
//! `handle_timeout` is a harmless no-op.

use super::connection::Connection;
use super::state::State;
use crate::cc::{CaState, CwndEvent};
use crate::observe::{CwndCause, EventKind, ProbeKind, RetransmitCause, RstReason};
use crate::time::{Duration, Instant};
use crate::Error;

/// The timers one connection may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// RFC 6298 retransmission timer (also SYN / SYN-ACK retransmission).
    Retransmit,
    /// RFC 9293 §3.8.6.1 persist timer (zero-window probes, SWS override).
    Persist,
    /// RFC 9293 §3.8.6.3 delayed ACK.
    DelayedAck,
    /// RFC 1122 §4.2.3.6 keepalive.
    Keepalive,
    /// RFC 9293 §3.4.2 TIME-WAIT, 2·MSL.
    TimeWait,
    /// Orphaned FIN-WAIT-2 (Linux `tcp_fin_timeout`).
    FinWait2,
    /// RFC 1191 §6.3: forget a lowered path MTU after a while.
    PmtuExpire,
    /// RFC 8985 §6.3 RACK reordering timer.
    Reorder,
    /// RFC 8985 §7.2 tail loss probe timeout (PTO).
    LossProbe,
    /// Pacing: the next data segment may leave.
    Pacing,
}

impl TimerKind {
    /// Firing order when several are due at once: a loss probe due with
    /// the RTO goes first and pushes it back (RFC 8985 §7.2 PTO ≤ RTO).
    const ALL: [TimerKind; 10] = [
        TimerKind::LossProbe,
        TimerKind::Retransmit,
        TimerKind::Persist,
        TimerKind::DelayedAck,
        TimerKind::Keepalive,
        TimerKind::TimeWait,
        TimerKind::FinWait2,
        TimerKind::PmtuExpire,
        TimerKind::Reorder,
        TimerKind::Pacing,
    ];

    fn index(self) -> usize {
        match self {
            TimerKind::Retransmit => 0,
            TimerKind::Persist => 1,
            TimerKind::DelayedAck => 2,
            TimerKind::Keepalive => 3,
            TimerKind::TimeWait => 4,
            TimerKind::FinWait2 => 5,
            TimerKind::PmtuExpire => 6,
            TimerKind::Reorder => 7,
            TimerKind::LossProbe => 8,
            TimerKind::Pacing => 9,
        }
    }
}

/// Deadlines, one slot per [`TimerKind`].
#[derive(Debug, Clone, Default)]
pub struct Timers {
    deadlines: [Option<Instant>; 10],
}

impl Timers {
    pub fn set(&mut self, kind: TimerKind, at: Instant) {
        self.deadlines[kind.index()] = Some(at);
    }

    pub fn clear(&mut self, kind: TimerKind) {
        self.deadlines[kind.index()] = None;
    }

    pub fn get(&self, kind: TimerKind) -> Option<Instant> {
        self.deadlines[kind.index()]
    }

    pub fn is_set(&self, kind: TimerKind) -> bool {
        self.get(kind).is_some()
    }

    pub fn clear_all(&mut self) {
        self.deadlines = [None; 10];
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Timers due at `now`, in table order.
    fn expired(&self, now: Instant) -> impl Iterator<Item = TimerKind> + '_ {
        TimerKind::ALL
            .into_iter()
            .filter(move |k| matches!(self.get(*k), Some(t) if t <= now))
    }
}

impl Connection {
    /// The earliest time `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Fires every timer due at `now`. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<TimerKind> = self.timers.expired(now).collect();
        for kind in due {
            // A previous handler may have cleared or moved this timer.
            if !matches!(self.timers.get(kind), Some(t) if t <= now) {
                continue;
            }
            self.timers.clear(kind);
            match kind {
                TimerKind::Retransmit => self.on_rto(now),
                TimerKind::Persist => self.on_persist(now),
                TimerKind::DelayedAck => self.ack_now = true,
                TimerKind::Keepalive => self.on_keepalive(now),
                TimerKind::TimeWait => self.enter_closed(now),
                TimerKind::PmtuExpire => self.pmtu_expired(now),
                TimerKind::Reorder => self.on_reorder_timeout(now),
                TimerKind::LossProbe => self.on_loss_probe(now),
                TimerKind::Pacing => {}
                TimerKind::FinWait2 => {
                    if self.state == State::FinWait2 {
                        self.enter_closed(now)
                    }
                }
            }
        }
    }

    // ----- arming -----

    /// (Re)starts the retransmission timer at the current RTO (RFC 6298 §5.1, §5.3).
    pub(crate) fn arm_rto(&mut self, now: Instant) {
        let rto = self.rtt.rto();
        self.arm(TimerKind::Retransmit, now + rto);
    }

    pub(crate) fn arm_fin_wait2(&mut self, now: Instant) {
        if let Some(t) = self.config.fin_wait2_timeout {
            self.arm(TimerKind::FinWait2, now + t);
        }
    }

    /// RFC 1122 §4.2.3.6: probe after `idle` without any segment received.
    pub(crate) fn arm_keepalive(&mut self, now: Instant) {
        match self.config.keepalive {
            Some(ka) if self.state.is_synchronized() && self.state != State::TimeWait => {
                let at = if self.keepalive_probes == 0 {
                    self.last_recv + ka.idle
                } else {
                    now + ka.interval
                };
                self.arm(TimerKind::Keepalive, at.max(now));
            }
            _ => self.timers.clear(TimerKind::Keepalive),
        }
    }

    /// The persist interval: the RTO with exponential backoff per
    /// unanswered probe (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17), bounded
    /// below by 200 ms and above by the maximum RTO as Linux does.
    fn persist_interval(&self) -> Duration {
        let base = self.rtt.base_rto().max(Duration::from_millis(200));
        let shift = self.persist_backoff.min(16);
        let scaled = base.saturating_mul(1u32 << shift);
        scaled.min(self.config.max_rto)
    }

    pub(crate) fn arm_persist(&mut self, now: Instant) {
        if !self.timers.is_set(TimerKind::Persist) {
            let at = now + self.persist_interval();
            self.arm(TimerKind::Persist, at);
        }
    }

    /// RFC 9293 §3.4.2: TIME-WAIT lasts 2·MSL.
    pub(crate) fn enter_time_wait(&mut self, now: Instant) {
        self.set_state(now, State::TimeWait);
        self.timers.clear_all();
        self.stop_busy_clocks(now);
        let two_msl = self.config.msl.saturating_mul(2);
        self.arm(TimerKind::TimeWait, now + two_msl);
    }

    // ----- handlers -----

    /// RFC 6298 §5.4–5.7 and RFC 5681 §3.1: the retransmission timer fired.
    fn on_rto(&mut self, now: Instant) {
        let limit = match self.state {
            State::SynSent => self.config.syn_retries,
            State::SynReceived => self.config.synack_retries,
            State::Closed | State::Listen | State::TimeWait => return,
            _ => self.config.max_retries,
        };
        if self.snd_una == self.snd_max && self.state.is_synchronized() {
            // Nothing outstanding: a stale timer.
            return;
        }
        if self.retransmits >= limit {
            // Linux: report the soft ICMP error instead of ETIMEDOUT if one came.
            let err = self.soft_error.unwrap_or(Error::TimedOut);
            if self.state == State::SynReceived && !self.active_open {
                self.enter_closed(now);
            } else if self.state.is_synchronized() {
                self.reset_with_error(now, RstReason::Timeout, err);
            } else {
                self.fail(now, err);
            }
            return;
        }
        self.retransmits += 1;
        self.stats.rto_count += 1;
        // RFC 6298 §5.5: back off the timer.
        self.rtt.backoff();
        let rto = self.rtt.rto();
        self.emit(
            now,
            EventKind::RtoFired {
                backoff: self.rtt.backoff_count(),
                rto,
            },
        );
        // Karn's algorithm: no RTT sample from retransmitted segments.
        self.rtt_timed = None;

        if matches!(self.state, State::SynSent | State::SynReceived) {
            // RFC 6298 §5.7: after a lost SYN, use 3 s once data flows.
            self.syn_retransmitted = true;
            self.snd_nxt = self.snd_una;
            self.emit(
                now,
                EventKind::Retransmit {
                    seq: self.iss,
                    len: 0,
                    cause: RetransmitCause::Syn,
                },
            );
            self.arm_rto(now);
            return;
        }

        // RFC 5681 §3.1 eq. 4: ssthresh only on the first timeout of a
        // segment (Linux `tcp_enter_loss`: not again while in Loss).
        let before = (self.win.cwnd, self.win.ssthresh);
        if self.win.ca_state != CaState::Loss || self.retransmits == 1 {
            if self.win.ca_state != CaState::Loss {
                // A new undo episode, unless fast recovery already began one.
                if self.win.ca_state != CaState::Recovery || self.undo_marker.is_none() {
                    self.undo_marker = Some(self.snd_una);
                    self.undo_retrans = 0;
                    self.retrans_stamp = None;
                }
                self.win.prior_cwnd = self.win.cwnd;
                self.win.prior_ssthresh = self.win.ssthresh;
            }
            self.fill_window();
            // RFC 5681 eq. (4): ssthresh from FlightSize, not pipe.
            self.win.bytes_in_flight = self.flight_size();
            self.win.ssthresh = self.cc.ssthresh(&self.win, now).max(2 * self.snd_mss);
        }
        // RFC 5681 §3.1: the loss window is one segment.
        self.win.cwnd = self.snd_mss;
        self.cc.cwnd_event(&mut self.win, CwndEvent::Loss, now);
        self.win.cwnd = self.win.cwnd.max(self.snd_mss);
        self.note_cwnd(now, before, CwndCause::Rto);
        // RFC 6582 §3.2 step 1 (`recover` = highest sent), and every
        // unSACKed segment is lost (RFC 6675 §5.1, Linux `tcp_enter_loss`).
        self.dupacks.on_rto(self.snd_max);
        self.reno_sacked = 0;
        let first = self.board.first().map_or(self.snd_una, |s| s.start);
        let bytes = self.board.mark_all_lost(RetransmitCause::Rto);
        self.stats.bytes_lost += u64::from(bytes);
        if bytes > 0 {
            self.emit(
                now,
                EventKind::LossDetected {
                    seq: first,
                    bytes,
                    by: RetransmitCause::Rto,
                },
            );
        }
        self.high_seq = self.snd_max;
        self.tlp = Default::default();
        self.tlp_pending = false;
        self.timers.clear(TimerKind::LossProbe);
        self.timers.clear(TimerKind::Reorder);
        self.set_ca_state(now, CaState::Loss);
        self.note_cc_mode(now);
        self.arm_rto(now);
    }

    /// RFC 9293 §3.8.6.1: the persist timer fired — probe the zero window,
    /// or (SWS override) send what a small window allows.
    fn on_persist(&mut self, now: Instant) {
        if !self.state.is_synchronized() || (self.unsent_bytes() == 0 && !self.fin_unsent()) {
            return;
        }
        if self.persist_probes >= self.config.max_persist_probes {
            self.reset_with_error(now, RstReason::Timeout, Error::TimedOut);
            return;
        }
        if self.snd_wnd == 0 {
            self.persist_probes += 1;
            self.persist_backoff += 1;
            self.probe_pending = Some(ProbeKind::ZeroWindow);
        } else {
            // SWS override (RFC 9293 §3.8.6.2.1): send what fits now.
            self.probe_pending = None;
            self.sws_override = true;
        }
        // Keep probing until the window opens (output re-arms as needed).
        let at = now + self.persist_interval();
        self.arm(TimerKind::Persist, at);
    }

    /// RFC 1122 §4.2.3.6: keepalive timer fired.
    fn on_keepalive(&mut self, now: Instant) {
        let Some(ka) = self.config.keepalive else {
            return;
        };
        if !self.state.is_synchronized() || self.state == State::TimeWait {
            return;
        }
        let idle = now - self.last_recv;
        // Linux probes only when nothing is in flight: otherwise the
        // retransmission timer already watches the peer.
        if self.snd_max != self.snd_una {
            self.keepalive_probes = 0;
            self.arm(TimerKind::Keepalive, now + ka.idle);
            return;
        }
        if self.keepalive_probes == 0 && idle < ka.idle {
            self.arm_keepalive(now);
            return;
        }
        if self.keepalive_probes >= ka.count {
            self.fail(now, self.soft_error.unwrap_or(Error::TimedOut));
            return;
        }
        self.keepalive_probes += 1;
        self.probe_pending = Some(ProbeKind::Keepalive);
        self.arm(TimerKind::Keepalive, now + ka.interval);
    }
}
