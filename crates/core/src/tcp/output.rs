//! Segment selection and emission: what to send, when, and with which
//! window and options. Congestion control has already decided how much may
//! be in flight (`Window::cwnd`); loss recovery has marked on the
//! scoreboard what must be retransmitted. Output picks the segment (RFC
//! 6675 §4 NextSeg: lost data first, then new data, then the rescue
//! retransmission), a pending tail loss probe, and honours pacing.

use super::connection::{Connection, TimedSegment};
use super::state::State;
use super::timers::TimerKind;
use crate::cc::{CaState, CwndEvent};
use crate::observe::{CwndCause, EventKind, ProbeKind, RetransmitCause};
use crate::time::{Duration, Instant};
use daytona_wire::tcp::{
    Control, SackBlock, SackBlocks, TcpOptions, TcpPacket, TcpRepr, Timestamps,
};
use daytona_wire::{checksum, ChecksumMode, SeqNum};

/// What one segment carries, before emission.
struct Outgoing {
    seq: SeqNum,
    control: Control,
    ack: bool,
    psh: bool,
    /// Offset into the send buffer and length of the payload.
    data: Option<(usize, usize)>,
    syn_options: bool,
}

impl Connection {
    /// Writes the next segment to send into `buf` (TCP header, options and
    /// payload, checksum filled) and returns its length, or `None` when
    /// nothing is due. `buf` must hold at least `mss_limit + 60` bytes.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        // What `tx_gso_size`/`tx_csum_partial` report is about this call's
        // segment only (a RST after a super-segment is one plain packet).
        self.last_tx_gso = None;
        if let Some((seq, ack)) = self.pending_rst.take() {
            return self.emit_rst(now, buf, seq, ack);
        }
        match self.state {
            State::Closed | State::Listen => None,
            State::SynSent => {
                if self.snd_nxt == self.iss {
                    self.send_syn(now, buf, false)
                } else {
                    None
                }
            }
            State::SynReceived => {
                if self.snd_nxt == self.iss {
                    self.send_syn(now, buf, true)
                } else if self.ack_now {
                    self.send_ack(now, buf)
                } else {
                    None
                }
            }
            _ => self.poll_synchronized(now, buf),
        }
    }

    /// SYN or SYN-ACK with our options (RFC 9293 §3.10.7.2/3; RFC 7323 §2.2,
    /// §3.2; RFC 2018 §2).
    fn send_syn(&mut self, now: Instant, buf: &mut [u8], with_ack: bool) -> Option<usize> {
        let first = self.snd_max == self.iss;
        let mut out = Outgoing {
            seq: self.iss,
            control: Control::Syn,
            ack: with_ack,
            psh: false,
            data: None,
            syn_options: true,
        };
        let len = self.emit_segment(now, buf, &mut out)?;
        self.snd_nxt = self.iss + 1;
        if self.snd_max == self.iss {
            self.snd_max = self.snd_nxt;
        }
        if first {
            // Karn: only a SYN sent once gives an RTT sample.
            self.rtt_timed = Some(TimedSegment {
                seq: self.iss,
                sent: now,
                delivered: self.stats.delivered,
            });
        } else {
            self.stats.total_retrans += 1;
        }
        if !self.timers.is_set(TimerKind::Retransmit) {
            self.arm_rto(now);
        }
        Some(len)
    }

    fn send_ack(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let mut out = Outgoing {
            seq: self.snd_nxt,
            control: Control::None,
            ack: true,
            psh: false,
            data: None,
            syn_options: false,
        };
        self.emit_segment(now, buf, &mut out)
    }

    /// True while our FIN is queued and not yet sent.
    pub(crate) fn fin_unsent(&self) -> bool {
        matches!(self.fin_seq, Some(f) if self.snd_nxt.before_eq(f))
    }

    fn poll_synchronized(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.last_tx_ect = false;
        self.last_tx_gso = None;
        let sending = matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        );
        if sending && !self.pacing_delays(now) {
            if self.tlp_pending {
                self.tlp_pending = false;
                if let Some(len) = self.send_loss_probe(now, buf) {
                    return Some(len);
                }
            }
            if let Some(len) = self.retransmit_lost(now, buf) {
                return Some(len);
            }
            if let Some(len) = self.send_data(now, buf) {
                return Some(len);
            }
            if let Some(len) = self.rescue_retransmit(now, buf) {
                return Some(len);
            }
        }
        if let Some(kind) = self.probe_pending.take() {
            return self.send_probe(now, buf, kind);
        }
        if self.ack_now {
            return self.send_ack(now, buf);
        }
        None
    }

    /// Pacing (as Linux's internal pacing, `tcp_pacing_check`): while the
    /// controller's rate says the next segment is not due, hold data and
    /// arm the pacing timer.
    fn pacing_delays(&mut self, now: Instant) -> bool {
        match self.next_send_at {
            Some(t) if t > now && self.config.pacing && self.win.pacing_rate.is_some() => {
                self.arm(TimerKind::Pacing, t);
                true
            }
            _ => false,
        }
    }

    /// After a data segment of `wire_bytes` left: when may the next one.
    fn pace(&mut self, now: Instant, wire_bytes: usize) {
        let rate = match self.win.pacing_rate {
            Some(r) if r > 0 && self.config.pacing => r,
            _ => {
                self.next_send_at = None;
                return;
            }
        };
        let us = (wire_bytes as u64 + 20).saturating_mul(1_000_000) / rate;
        let from = self.next_send_at.map_or(now, |t| t.max(now));
        self.next_send_at = Some(from + Duration::from_micros(us));
    }

    /// Offset into the send buffer of sequence number `seq` (data only).
    fn buffer_offset(&self, seq: SeqNum) -> usize {
        seq.since(self.data_start_seq()) as usize
    }

    /// Room the congestion window leaves, in bytes.
    fn cwnd_room(&self) -> u32 {
        self.win.cwnd.saturating_sub(self.pipe())
    }

    /// RFC 6675 §4 NextSeg rule 1: the first segment marked lost, when the
    /// window (PRR in recovery) has room for it.
    fn retransmit_lost(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let i = self.board.next_lost()?;
        let seg = self.board.fit(i, self.snd_mss)?;
        // RFC 6582 §3.2 step 5: the partial ACK's retransmission of the
        // first unacknowledged segment goes out regardless of cwnd.
        let forced = i == 0 && seg.cause == RetransmitCause::PartialAck;
        if !forced && self.cwnd_room() < seg.len().min(self.snd_mss) {
            return None;
        }
        let cause = seg.cause;
        self.retransmit_entry(now, buf, i, cause)
    }

    /// Sends scoreboard entry `i` again.
    fn retransmit_entry(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        i: usize,
        cause: RetransmitCause,
    ) -> Option<usize> {
        let seg = self.board.fit(i, self.snd_mss)?;
        let data_len = (seg.len() - u32::from(seg.fin)) as usize;
        let mut out = Outgoing {
            seq: seg.start,
            control: if seg.fin { Control::Fin } else { Control::None },
            ack: true,
            psh: false,
            data: (data_len > 0).then_some((self.buffer_offset(seg.start), data_len)),
            syn_options: false,
        };
        let n = self.emit_segment(now, buf, &mut out)?;
        let sent = out.data.map_or(0, |(_, len)| len) as u32;
        if sent < data_len as u32 || (seg.fin && out.control != Control::Fin) {
            // Options took room from the payload: only part went out.
            self.board.fit(i, sent.max(1));
        }
        let len = self.board.get(i).map_or(0, |s| s.len());
        self.board.on_retransmit(i, now);
        self.note_retransmission(now, seg.start, sent, cause);
        self.prr.on_send(len);
        self.pace(now, n);
        if !self.timers.is_set(TimerKind::Retransmit) {
            self.arm_rto(now);
        }
        Some(n)
    }

    fn note_retransmission(&mut self, now: Instant, seq: SeqNum, len: u32, cause: RetransmitCause) {
        self.stats.total_retrans += 1;
        self.stats.bytes_retrans += u64::from(len);
        self.undo_retrans += 1;
        if self.retrans_stamp.is_none() {
            self.retrans_stamp = Some(self.ts_now(now));
        }
        self.emit(now, EventKind::Retransmit { seq, len, cause });
    }

    /// RFC 6675 §4 NextSeg rule 4: once per recovery episode, when nothing
    /// else may be sent, resend the highest unSACKed segment so a lost tail
    /// does not wait for the RTO.
    fn rescue_retransmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.win.ca_state != CaState::Recovery
            || !self.sack_ok
            || self.rescue_rxt.is_some_and(|r| !self.snd_una.after(r))
            || self.board.next_lost().is_some()
        {
            return None;
        }
        let i = self.board.highest_unsacked()?;
        let seg = *self.board.get(i)?;
        if seg.retrans_in_flight || self.cwnd_room() < seg.len().min(self.snd_mss) {
            return None;
        }
        // The piece that holds the highest unSACKed byte.
        let data = seg.len() - u32::from(seg.fin);
        if data > self.snd_mss {
            self.board.fit(i, data - self.snd_mss);
        }
        let i = self.board.highest_unsacked()?;
        self.rescue_rxt = Some(self.high_seq);
        self.retransmit_entry(now, buf, i, RetransmitCause::Rescue)
    }

    /// RFC 8985 §7.3: the loss probe — one new segment if the window and
    /// data allow, else the last segment sent, ignoring cwnd.
    fn send_loss_probe(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let offset = self.buffer_offset(self.snd_nxt);
        let available = self.snd_buf.len().saturating_sub(offset);
        let rwnd_room = self.snd_wnd.saturating_sub(self.flight_size()) as usize;
        let before = self.snd_max;
        if available > 0 && rwnd_room > 0 {
            self.sws_override = true;
            let saved = self.win.cwnd;
            self.win.cwnd = self.pipe() + self.snd_mss;
            let n = self.send_data(now, buf);
            self.win.cwnd = saved;
            if let Some(n) = n {
                self.tlp = super::rack::Tlp {
                    end_seq: Some(self.snd_max),
                    is_retrans: false,
                    dsacked: false,
                };
                self.emit(
                    now,
                    EventKind::LossProbe {
                        seq: before,
                        retransmission: false,
                    },
                );
                self.arm_rto(now);
                return Some(n);
            }
        }
        let i = self.board.last_index()?;
        let seg = *self.board.get(i)?;
        if seg.sacked {
            return None;
        }
        let data = seg.len() - u32::from(seg.fin);
        if data > self.snd_mss {
            self.board.fit(i, data - self.snd_mss);
        }
        let i = self.board.last_index()?;
        let seq = self.board.get(i)?.start;
        let n = self.retransmit_entry(now, buf, i, RetransmitCause::Tlp)?;
        self.tlp = super::rack::Tlp {
            end_seq: Some(self.snd_max),
            is_retrans: true,
            dsacked: false,
        };
        self.emit(
            now,
            EventKind::LossProbe {
                seq,
                retransmission: true,
            },
        );
        self.arm_rto(now);
        Some(n)
    }

    /// New data within the send window, the congestion window, Nagle
    /// (RFC 896) and sender SWS avoidance (RFC 9293 §3.8.6.2.1).
    fn send_data(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let offset = self.buffer_offset(self.snd_nxt);
        let available = self.snd_buf.len().saturating_sub(offset);
        let fin_pending = self.fin_unsent();
        let flight = self.flight_size();
        if available == 0 && !fin_pending {
            self.timers.clear(TimerKind::Persist);
            self.update_limited_clocks(now, false, false);
            // Draft-cheng §3.4: out of data with room in the window.
            if self.pipe() < self.win.cwnd && self.board.next_lost().is_none() {
                self.rate.on_app_limited(self.pipe());
                self.cwnd_limited = false;
            }
            return None;
        }
        // RFC 3042: duplicate ACKs take segments out of the pipe, which lets
        // new data go out — limited transmit — at most two segments' worth
        // before recovery, none when it is turned off.
        let mut used = self.pipe();
        if self.win.ca_state == CaState::Disorder {
            let allowance = if self.config.limited_transmit {
                self.dupacks.count().min(2) * self.snd_mss
            } else {
                0
            };
            used = used.max(flight.saturating_sub(allowance));
        }
        let cwnd_room = self.win.cwnd.saturating_sub(used) as usize;
        let rwnd_room = self.snd_wnd.saturating_sub(flight) as usize;
        let mss = self.snd_mss as usize;
        // With segmentation offload a super-segment of whole MSS-sized
        // pieces (the tail may be short when it ends the queued data).
        let unit = if self.tso_max as usize > mss {
            self.tso_max as usize / mss * mss
        } else {
            mss
        };
        let mut len = available.min(unit).min(cwnd_room).min(rwnd_room);
        if len > mss && len < available {
            len = len / mss * mss;
        }
        let all_queued = len == available;
        let fin = fin_pending && all_queued && self.fin_seq == Some(self.snd_nxt + len as u32);

        let rwnd_limited = rwnd_room < available.min(mss) && rwnd_room <= cwnd_room;
        // Linux `tcp_is_cwnd_limited`: the window, not the application or
        // the peer, held data back.
        self.cwnd_limited = cwnd_room < available.min(mss) && cwnd_room <= rwnd_room;
        self.update_limited_clocks(now, rwnd_limited, self.snd_buf.free() == 0);

        if len == 0 && !fin {
            if flight == 0 && available > 0 {
                // RFC 9293 §3.8.6.1: the window is closed with nothing in
                // flight: the persist timer probes it.
                self.arm_persist(now);
            }
            return None;
        }
        if len > 0 && len < mss && !self.sws_override {
            // Sender SWS avoidance and Nagle (RFC 9293 §3.8.6.2.1, §3.7.4).
            let nagle_ok = self.config.nodelay || flight == 0 || fin;
            let push_all = all_queued && nagle_ok;
            let big_enough = self.max_snd_wnd > 0 && len >= (self.max_snd_wnd / 2) as usize;
            if !(push_all || (big_enough && nagle_ok)) {
                if flight == 0 {
                    // The override timer (RFC 9293 §3.8.6.2.1).
                    self.arm_persist(now);
                }
                return None;
            }
        }
        self.sws_override = false;

        if flight == 0 {
            self.restart_after_idle(now);
        }
        let seq = self.snd_nxt;
        let mut out = Outgoing {
            seq,
            control: if fin { Control::Fin } else { Control::None },
            ack: true,
            psh: all_queued && len > 0,
            data: (len > 0).then_some((offset, len)),
            syn_options: false,
        };
        // RFC 3168 §6.1.2: CWR on the first new data after a reduction;
        // §6.1.5: ECT only on new data, never on retransmissions.
        let cwr = self.ecn_ok && self.cwr_pending && len > 0;
        self.tx_cwr = cwr;
        let n = self.emit_segment(now, buf, &mut out);
        self.tx_cwr = false;
        let n = n?;
        if cwr {
            self.cwr_pending = false;
        }
        self.last_tx_ect = self.ecn_ok && len > 0;
        let len = out.data.map_or(0, |(_, len)| len);
        let fin = out.control == Control::Fin;
        let snapshot = self.rate.on_send(now, self.board.is_empty());
        self.board.push(seq, len as u32, fin, now, snapshot);
        self.snd_nxt = seq + len as u32 + u32::from(fin);
        if self.snd_nxt.after(self.snd_max) {
            self.snd_max = self.snd_nxt;
        }
        if matches!(self.win.ca_state, CaState::Recovery | CaState::Cwr) {
            self.prr.on_send(len as u32 + u32::from(fin));
        }
        self.stats.bytes_sent += len as u64;
        if len > 0 {
            self.last_send = now;
            self.stats.last_data_sent = Some(now);
        }
        if self.stats.busy_since.is_none() {
            self.stats.busy_since = Some(now);
        }
        self.pace(now, n);
        self.timers.clear(TimerKind::Persist);
        // RFC 6298 §5.1: start the timer if it is not running.
        if !self.timers.is_set(TimerKind::Retransmit) {
            self.arm_rto(now);
        }
        self.schedule_loss_probe(now);
        Some(n)
    }

    /// RFC 5681 §4.1: after an idle period longer than the RTO, restart
    /// from min(IW, cwnd).
    fn restart_after_idle(&mut self, now: Instant) {
        let before = (self.win.cwnd, self.win.ssthresh);
        if self.stats.bytes_sent > 0 && now - self.last_send > self.rtt.rto() {
            let iw = self.config.initial_cwnd_segments.max(1) * self.snd_mss;
            self.win.cwnd = self.win.cwnd.min(iw);
            self.cc
                .cwnd_event(&mut self.win, CwndEvent::CwndRestart, now);
            self.note_cwnd(now, before, CwndCause::IdleRestart);
        } else {
            self.cc.cwnd_event(&mut self.win, CwndEvent::TxStart, now);
            self.note_cwnd(now, before, CwndCause::Controller);
        }
    }

    /// Keeps the rwnd-limited and sndbuf-limited clocks of `TcpInfo`.
    fn update_limited_clocks(&mut self, now: Instant, rwnd_limited: bool, sndbuf_limited: bool) {
        let clocks = [
            (
                rwnd_limited,
                &mut self.stats.rwnd_limited_since,
                &mut self.stats.rwnd_limited,
            ),
            (
                sndbuf_limited,
                &mut self.stats.sndbuf_limited_since,
                &mut self.stats.sndbuf_limited,
            ),
        ];
        for (on, since, total) in clocks {
            match (on, *since) {
                (true, None) => *since = Some(now),
                (false, Some(t)) => {
                    *total += now - t;
                    *since = None;
                }
                _ => {}
            }
        }
    }

    /// A zero-window or keepalive probe: an ACK with SEG.SEQ = SND.UNA − 1,
    /// which the peer must answer with an ACK carrying its window (Linux
    /// `tcp_xmit_probe_skb`; RFC 9293 §3.8.6.1, RFC 1122 §4.2.3.6).
    fn send_probe(&mut self, now: Instant, buf: &mut [u8], kind: ProbeKind) -> Option<usize> {
        let mut out = Outgoing {
            seq: self.snd_una - 1,
            control: Control::None,
            ack: true,
            psh: false,
            data: None,
            syn_options: false,
        };
        let n = self.emit_segment(now, buf, &mut out)?;
        self.emit(now, EventKind::Probe { kind });
        Some(n)
    }

    /// A RST: <SEQ=seq><CTL=RST>, or <SEQ=seq><ACK=ack><CTL=RST,ACK>.
    fn emit_rst(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        seq: SeqNum,
        ack: Option<SeqNum>,
    ) -> Option<usize> {
        let repr = TcpRepr::rst(self.local.port(), self.remote.port(), seq, ack);
        let n = self.write_repr(buf, &repr, None)?;
        self.stats.segs_out += 1;
        let _ = now;
        Some(n)
    }

    /// RFC 9293 §3.8.6.2.2 receiver SWS avoidance: move the right edge only
    /// when the window grows by min(buffer/2, MSS); never shrink it
    /// (RFC 7323 §2.4). Returns the window field.
    fn select_window(&mut self, now: Instant, syn: bool) -> u16 {
        let free = self.rcv_buf.window() as u32;
        if syn {
            // RFC 7323 §2.2: the window of a SYN is not scaled.
            let wnd = free.min(65_535);
            self.rcv_adv = self.rcv_nxt + wnd;
            return wnd as u16;
        }
        let current = self.rcv_adv.since(self.rcv_nxt);
        let threshold = (self.rcv_buf.capacity() as u32 / 2)
            .min(self.rcv_mss.max(1))
            .max(1);
        let mut wnd = if free >= current.saturating_add(threshold) {
            free
        } else {
            current
        };
        let max = 65_535u32 << self.rcv_wscale;
        wnd = wnd.min(max);
        let mut field = wnd >> self.rcv_wscale;
        // Rounding down must not pull the right edge left.
        if (field << self.rcv_wscale) < current && field < 65_535 {
            field += 1;
        }
        let field = field.min(65_535);
        let edge = self.rcv_nxt + (field << self.rcv_wscale);
        if edge.after(self.rcv_adv) || field == 0 {
            self.rcv_adv = edge.latest(self.rcv_adv);
        }
        if field == 0 && !self.zero_window_sent {
            self.emit(now, EventKind::ZeroWindowSent);
        }
        self.zero_window_sent = field == 0;
        field as u16
    }

    /// Builds and writes one segment, and does the bookkeeping every
    /// segment shares (ACK sent, window advertised, counters).
    fn emit_segment(&mut self, now: Instant, buf: &mut [u8], out: &mut Outgoing) -> Option<usize> {
        let window = self.select_window(now, out.control == Control::Syn);
        let mut options = TcpOptions::default();
        let tsval = self.ts_now(now);
        if out.syn_options {
            let passive = out.ack;
            options.mss = Some(self.adv_mss);
            // RFC 7323 §2.2 / §3.2, RFC 2018 §2: offer on an active SYN; on a
            // SYN-ACK answer only what the peer offered.
            if self.config.window_scaling && (!passive || self.wscale_ok) {
                options.window_scale = Some(self.rcv_wscale);
            }
            if self.config.sack && (!passive || self.sack_ok) {
                options.sack_permitted = true;
            }
            if self.config.timestamps && (!passive || self.ts_ok) {
                options.timestamps = Some(Timestamps {
                    tsval,
                    tsecr: if passive { self.ts_recent } else { 0 },
                });
            }
        } else {
            if self.ts_ok {
                options.timestamps = Some(Timestamps {
                    tsval,
                    tsecr: self.ts_recent,
                });
            }
            if self.sack_ok && out.ack {
                options.sack_blocks = self.sack_blocks();
            }
        }
        // RFC 3168 §6.1.1: an ECN-setup SYN carries ECE and CWR, the
        // SYN-ACK ECE; afterwards ECE echoes CE (§6.1.3), CWR answers ECE.
        let (ece, cwr) = if out.control == Control::Syn {
            if out.ack {
                (self.ecn_ok, false)
            } else {
                let ask = self.config.ecn == super::config::EcnMode::On;
                (ask, ask)
            }
        } else {
            (self.ecn_ok && self.ece_pending && out.ack, self.tx_cwr)
        };
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: out.seq,
            ack: out.ack.then_some(self.rcv_nxt),
            control: out.control,
            psh: out.psh,
            ece,
            cwr,
            window,
            urgent: None,
            options,
            payload: &[],
        };
        // SACK blocks take room from the payload so the segment still fits
        // the path MTU (as Linux's tcp_current_mss accounts for them).
        let budget = usize::from(self.mss_limit) + 20;
        if let Some((offset, len)) = out.data {
            let room = budget.saturating_sub(repr.header_len()).max(1);
            if len > room && self.tso_max as usize >= len {
                // A TSO super-segment: the link cuts it into `room`-byte
                // segments, each with this header (Linux `gso_size`).
                self.last_tx_gso = u16::try_from(room).ok();
            } else if len > room {
                out.data = Some((offset, room));
                out.control = Control::None;
            }
        }
        let repr = TcpRepr {
            control: out.control,
            ..repr
        };
        let n = self.write_repr(buf, &repr, out.data)?;
        self.stats.segs_out += 1;
        if out.data.is_some() {
            self.stats.data_segs_out += 1;
        }
        if out.ack {
            if self.sack_ok {
                self.dsack_pending = None;
            }
            self.last_ack_sent = self.rcv_nxt;
            self.ack_now = false;
            self.segs_since_ack = 0;
            self.timers.clear(TimerKind::DelayedAck);
        }
        Some(n)
    }

    /// RFC 2018 §4: the block with the most recent segment first, then the
    /// most recently reported ones; three fit beside timestamps.
    fn sack_blocks(&self) -> SackBlocks {
        let mut blocks = SackBlocks::default();
        let max = if self.ts_ok { 3 } else { SackBlocks::MAX };
        // RFC 2883 §4: a D-SACK block goes first.
        let mut room = max;
        if let Some((left, right)) = self.dsack_pending {
            blocks.push(SackBlock { left, right });
            room -= 1;
        }
        for (start, end) in self.rcv_buf.sack_ranges().take(room) {
            blocks.push(SackBlock {
                left: self.rcv_nxt + start as u32,
                right: self.rcv_nxt + end as u32,
            });
        }
        blocks
    }

    /// Writes header and payload (straight from the send buffer) into `buf`
    /// and fills the checksum — for a super-segment with checksum offload
    /// only its pseudo-header part ([`Connection::tx_csum_partial`]).
    fn write_repr(
        &self,
        buf: &mut [u8],
        repr: &TcpRepr<'_>,
        data: Option<(usize, usize)>,
    ) -> Option<usize> {
        let header_len = repr.header_len();
        let data_len = data.map_or(0, |(_, len)| len);
        let total = header_len + data_len;
        let frame = buf.get_mut(..total)?;
        let (_, payload) = frame.split_at_mut(header_len);
        if let Some((offset, len)) = data {
            if self.snd_buf.copy_out(offset, payload) != len {
                return None;
            }
        }
        let mut packet = TcpPacket::new_unchecked(frame);
        repr.emit_header(&mut packet);
        if self.tx_csum_partial() {
            // The link completes it per segment (virtio NEEDS_CSUM): summing
            // 64 KiB here would be work thrown away.
            let pseudo =
                checksum::pseudo_header_v4(self.local.ip(), self.remote.ip(), 6, total as u32);
            packet.set_checksum(pseudo);
        } else {
            packet.fill_checksum(self.local.ip(), self.remote.ip(), ChecksumMode::Compute);
        }
        Some(total)
    }
}
