//! BBR v1, following Linux `net/ipv4/tcp_bbr.c` (the version in Linux
//! 5.x/6.x: with the ack-aggregation estimate `extra_acked` and the EDT
//! pacing model), function by function; each function names its Linux
//! counterpart.
//!
//! BBR models the path by two numbers — the bottleneck bandwidth (a windowed
//! max of delivery-rate samples over 10 round trips) and the round-trip
//! propagation time (min RTT over 10 s) — and sets the pacing rate to
//! `pacing_gain · bw` and cwnd to `cwnd_gain · bw · min_rtt`. A state
//! machine chooses the gains:
//!
//! - STARTUP: gains 2/ln 2 until the bandwidth stops growing (3 rounds with
//!   less than 25% growth);
//! - DRAIN: pacing gain ln 2/2 until in-flight is down to one BDP;
//! - PROBE_BW: pacing gains cycle [5/4, 3/4, 1, 1, 1, 1, 1, 1], one phase per
//!   min_rtt, starting at a pseudo-random phase (not 3/4); cwnd gain 2;
//! - PROBE_RTT: when min_rtt was not refreshed for 10 s, cwnd 4 segments
//!   for at least 200 ms and one round trip.
//!
//! Plus: long-term ("policer") bandwidth detection, packet conservation in
//! the first round of recovery, restore of cwnd on leaving recovery.
//!
//! Differences from Linux, all from the interface:
//! - Units are bytes and bytes per second where Linux counts packets and
//!   packets per µs << 24; packet counts (cwnd, BDP, quantisation budget,
//!   the 4-segment minimum) are computed in segments of `Window::mss` and
//!   written back as bytes.
//! - Time is the `now` argument (Linux's `tcp_mstamp`/`delivered_mstamp`
//!   and jiffies).
//! - The randomised PROBE_BW phase comes from a seeded generator
//!   (`Bbr::with_seed`, mixed with `Window::seed` and the time of `init`),
//!   never from an unseeded source.
//! - `bbr_packets_in_net_at_edt` has no earliest-departure time of the next
//!   packet (the engine does not expose one), so the part of in-flight that
//!   the pacer will have delivered by then is taken as zero.
//! - The TSO budget uses a 64 KiB super-segment, Linux's GSO limit.

use super::minmax::MinMax;
use super::{AckSample, CaState, CcInfo, CongestionControl, CwndEvent, RateSample, Window};
use crate::time::{Duration, Instant};

/// Gains are fixed point with 8 fractional bits (Linux `BBR_SCALE`).
pub const BBR_SCALE: u32 = 8;
pub const BBR_UNIT: u32 = 1 << BBR_SCALE;

/// The PROBE_BW gain cycle has this many phases.
pub const CYCLE_LEN: usize = 8;
/// Window of the max-bandwidth filter, in round trips.
pub const BW_RTTS: u32 = CYCLE_LEN as u32 + 2;
/// Window of the min-RTT filter.
pub const MIN_RTT_WIN: Duration = Duration::from_secs(10);
/// Minimum time spent in PROBE_RTT.
pub const PROBE_RTT_MODE: Duration = Duration::from_millis(200);
/// Below this pacing rate (1.2 Mbit/s), one segment per TSO burst.
pub const MIN_TSO_RATE: u64 = 1_200_000 / 8;
/// Pace at 1% below the estimated bandwidth to drain queues.
pub const PACING_MARGIN_PERCENT: u64 = 1;
/// 2/ln(2): the smallest gain that doubles the delivery rate every round.
pub const HIGH_GAIN: u32 = BBR_UNIT * 2885 / 1000 + 1;
/// 1/high_gain: drains the queue STARTUP made in one round.
pub const DRAIN_GAIN: u32 = BBR_UNIT * 1000 / 2885;
/// cwnd gain in PROBE_BW: room for delayed and stretched ACKs.
pub const CWND_GAIN: u32 = BBR_UNIT * 2;
/// The PROBE_BW pacing gains.
pub const PACING_GAIN: [u32; CYCLE_LEN] = [
    BBR_UNIT * 5 / 4,
    BBR_UNIT * 3 / 4,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
];
/// The initial PROBE_BW phase is drawn among this many (never 3/4).
pub const CYCLE_RAND: u32 = 7;
/// cwnd floor in segments, and cwnd in PROBE_RTT.
pub const CWND_MIN_TARGET: u32 = 4;
/// STARTUP is over when bandwidth grew less than 25% ...
pub const FULL_BW_THRESH: u32 = BBR_UNIT * 5 / 4;
/// ... for this many rounds.
pub const FULL_BW_CNT: u32 = 3;
/// Long-term sampling interval: at least this many round trips ...
pub const LT_INTVL_MIN_RTTS: u32 = 4;
/// ... with a loss rate of at least 50/256 (about 20%).
pub const LT_LOSS_THRESH: u64 = 50;
/// Two intervals within 1/8 of each other ...
pub const LT_BW_RATIO: u64 = BBR_UNIT as u64 / 8;
/// ... or within 4 kbit/s mean a policer.
pub const LT_BW_DIFF: u64 = 4000 / 8;
/// Use the policed rate for this many round trips, then probe again.
pub const LT_BW_MAX_RTTS: u32 = 48;
/// Gain on the ack-aggregation estimate in cwnd.
pub const EXTRA_ACKED_GAIN: u32 = BBR_UNIT;
/// Window of the ack-aggregation max filter, in round trips.
pub const EXTRA_ACKED_WIN_RTTS: u32 = 5;
/// An ack epoch is restarted after this many acknowledged segments.
pub const ACK_EPOCH_ACKED_RESET_THRESH: u64 = 1 << 20;
/// The aggregation allowance is at most this much data at bw.
pub const EXTRA_ACKED_MAX: Duration = Duration::from_millis(100);
/// RFC 6928 initial window, Linux `TCP_INIT_CWND`: the BDP before min_rtt
/// is known.
const TCP_INIT_CWND: u32 = 10;
/// Linux `GSO_LEGACY_MAX_SIZE - 1 - MAX_TCP_HEADER`.
const TSO_MAX_BYTES: u64 = 65_536 - 1 - 320;

/// BBR's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Startup,
    Drain,
    ProbeBw,
    ProbeRtt,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Startup => "startup",
            Mode::Drain => "drain",
            Mode::ProbeBw => "probe_bw",
            Mode::ProbeRtt => "probe_rtt",
        }
    }
}

/// A small seeded generator (SplitMix64) for the PROBE_BW start phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Linux `prandom_u32_max(n)`: uniform in `0..n`.
    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * u64::from(n)) >> 32) as u32
    }
}

/// Linux `struct bbr`.
#[derive(Debug, Clone)]
pub struct Bbr {
    seed: u64,
    rng: SplitMix64,
    /// Min RTT in the min_rtt window (None: not yet measured).
    min_rtt: Option<Duration>,
    /// When min_rtt was last measured or refreshed.
    min_rtt_stamp: Instant,
    /// End of the PROBE_RTT dwell time.
    probe_rtt_done_stamp: Option<Instant>,
    /// Max delivery rate over the last BW_RTTS rounds, bytes/s.
    bw: MinMax,
    /// Round trips counted (wrapping).
    rtt_cnt: u32,
    /// The round ends when a packet sent after this delivery count is acked.
    next_rtt_delivered: u64,
    /// Start of the current PROBE_BW phase.
    cycle_mstamp: Instant,
    mode: Mode,
    prev_ca_state: CaState,
    packet_conservation: bool,
    round_start: bool,
    idle_restart: bool,
    probe_rtt_round_done: bool,
    lt_is_sampling: bool,
    lt_rtt_cnt: u32,
    lt_use_bw: bool,
    /// Long-term (policed) bandwidth, bytes/s.
    lt_bw: u64,
    lt_last_delivered: u64,
    /// Start of the long-term interval, ms.
    lt_last_stamp: u64,
    lt_last_lost: u64,
    pacing_gain: u32,
    cwnd_gain: u32,
    full_bw_reached: bool,
    full_bw_cnt: u32,
    cycle_idx: usize,
    has_seen_rtt: bool,
    /// cwnd before PROBE_RTT or recovery, segments.
    prior_cwnd: u32,
    /// Bandwidth at the last significant STARTUP growth, bytes/s.
    full_bw: u64,
    ack_epoch_mstamp: Instant,
    /// Segments acknowledged in the current ack epoch.
    ack_epoch_acked: u64,
    /// Max extra_acked in the last two windows, segments.
    extra_acked: [u64; 2],
    extra_acked_win_rtts: u32,
    extra_acked_win_idx: usize,
    /// Mode changes, for `info`.
    mode_changes: u32,
}

impl Default for Bbr {
    fn default() -> Self {
        Self::with_seed(0)
    }
}

/// A segment count from bytes, rounding up (Linux counts partial segments
/// as packets).
fn segs(bytes: u64, mss: u64) -> u64 {
    bytes.div_ceil(mss.max(1))
}

impl Bbr {
    pub fn new() -> Self {
        Self::default()
    }

    /// A BBR whose pseudo-random choices derive from `seed` (mixed at `init`
    /// with `Window::seed` and the time).
    pub fn with_seed(seed: u64) -> Self {
        Bbr {
            seed,
            rng: SplitMix64(seed),
            min_rtt: None,
            min_rtt_stamp: Instant::ZERO,
            probe_rtt_done_stamp: None,
            bw: MinMax::default(),
            rtt_cnt: 0,
            next_rtt_delivered: 0,
            cycle_mstamp: Instant::ZERO,
            mode: Mode::Startup,
            prev_ca_state: CaState::Open,
            packet_conservation: false,
            round_start: false,
            idle_restart: false,
            probe_rtt_round_done: false,
            lt_is_sampling: false,
            lt_rtt_cnt: 0,
            lt_use_bw: false,
            lt_bw: 0,
            lt_last_delivered: 0,
            lt_last_stamp: 0,
            lt_last_lost: 0,
            pacing_gain: HIGH_GAIN,
            cwnd_gain: HIGH_GAIN,
            full_bw_reached: false,
            full_bw_cnt: 0,
            cycle_idx: 0,
            has_seen_rtt: false,
            prior_cwnd: 0,
            full_bw: 0,
            ack_epoch_mstamp: Instant::ZERO,
            ack_epoch_acked: 0,
            extra_acked: [0; 2],
            extra_acked_win_rtts: 0,
            extra_acked_win_idx: 0,
            mode_changes: 0,
        }
    }

    pub fn bbr_mode(&self) -> Mode {
        self.mode
    }

    pub fn pacing_gain(&self) -> u32 {
        self.pacing_gain
    }

    pub fn cwnd_gain(&self) -> u32 {
        self.cwnd_gain
    }

    pub fn cycle_idx(&self) -> usize {
        self.cycle_idx
    }

    pub fn full_bw_reached(&self) -> bool {
        self.full_bw_reached
    }

    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    pub fn lt_use_bw(&self) -> bool {
        self.lt_use_bw
    }

    fn set_mode(&mut self, m: Mode) {
        if self.mode != m {
            self.mode = m;
            self.mode_changes = self.mode_changes.saturating_add(1);
        }
    }

    /// Linux `bbr_max_bw`: the windowed max delivery rate, bytes/s.
    pub fn max_bw(&self) -> u64 {
        self.bw.get()
    }

    /// Linux `bbr_bw`: the bandwidth estimate in use (policed rate if any).
    pub fn bw(&self) -> u64 {
        if self.lt_use_bw {
            self.lt_bw
        } else {
            self.max_bw()
        }
    }

    /// Linux `bbr_extra_acked`, segments.
    fn extra_acked(&self) -> u64 {
        self.extra_acked[0].max(self.extra_acked[1])
    }

    /// Linux `bbr_rate_bytes_per_sec`: `rate·gain` less the pacing margin.
    fn rate_bytes_per_sec(rate: u64, gain: u32) -> u64 {
        let r = (u128::from(rate) * u128::from(gain)) >> BBR_SCALE;
        let r = r * u128::from(100 - PACING_MARGIN_PERCENT) / 100;
        // Linux's unit (packets/µs << 24) never rounds a real rate to zero;
        // whole bytes per second can, and a zero rate would stop the
        // sender: one byte per second is the least.
        u64::try_from(r).unwrap_or(u64::MAX).max(1)
    }

    /// Linux `bbr_init_pacing_rate_from_rtt`: before a bandwidth sample,
    /// pace at high_gain · cwnd / srtt (1 ms if no RTT yet).
    fn init_pacing_rate_from_rtt(&mut self, w: &mut Window) {
        let rtt_us = match w.srtt {
            Some(srtt) => {
                self.has_seen_rtt = true;
                (srtt.as_micros() as u64).max(1)
            }
            None => 1000,
        };
        // high_gain · cwnd / rtt, less the margin, in one step so that a
        // small window over a long RTT does not round to zero.
        let rate = (u128::from(w.cwnd) * 1_000_000 * u128::from(HIGH_GAIN)) >> BBR_SCALE;
        let rate = rate * u128::from(100 - PACING_MARGIN_PERCENT) / 100 / u128::from(rtt_us);
        w.pacing_rate = Some(u64::try_from(rate).unwrap_or(u64::MAX).max(1));
    }

    /// Linux `bbr_set_pacing_rate`: in STARTUP only ever raise it.
    fn set_pacing_rate(&mut self, w: &mut Window, bw: u64, gain: u32) {
        let rate = Self::rate_bytes_per_sec(bw, gain);
        if !self.has_seen_rtt && w.srtt.is_some() {
            self.init_pacing_rate_from_rtt(w);
        }
        if self.full_bw_reached || !matches!(w.pacing_rate, Some(cur) if rate <= cur) {
            w.pacing_rate = Some(rate);
        }
    }

    /// Linux `bbr_min_tso_segs`.
    fn min_tso_segs(w: &Window) -> u64 {
        if w.pacing_rate.unwrap_or(0) < MIN_TSO_RATE {
            1
        } else {
            2
        }
    }

    /// Linux `bbr_tso_segs_goal`: segments per burst, about 1 ms of data.
    fn tso_segs_goal(w: &Window) -> u64 {
        let mss = u64::from(w.mss.max(1));
        let bytes = (w.pacing_rate.unwrap_or(0) >> 10).min(TSO_MAX_BYTES);
        (bytes / mss).max(Self::min_tso_segs(w)).min(0x7f)
    }

    /// Linux `bbr_save_cwnd`: remember cwnd before PROBE_RTT or recovery.
    fn save_cwnd(&mut self, w: &Window) {
        let cwnd = w.cwnd / w.mss.max(1);
        if self.prev_ca_state < CaState::Recovery && self.mode != Mode::ProbeRtt {
            self.prior_cwnd = cwnd;
        } else {
            self.prior_cwnd = self.prior_cwnd.max(cwnd);
        }
    }

    /// Linux `bbr_bdp`: segments for `gain · bw · min_rtt`.
    fn bdp(&self, w: &Window, bw: u64, gain: u32) -> u64 {
        let Some(min_rtt) = self.min_rtt else {
            return u64::from(TCP_INIT_CWND);
        };
        let mss = u128::from(w.mss.max(1));
        let bytes_x_us = u128::from(bw) * min_rtt.as_micros();
        let gained = (bytes_x_us * u128::from(gain)) >> BBR_SCALE;
        let denom = 1_000_000 * mss;
        u64::try_from(gained.div_ceil(denom)).unwrap_or(u64::MAX)
    }

    /// Linux `bbr_quantization_budget`: room for the pacer's bursts, an even
    /// count for delayed ACKs, and 2 more while probing up.
    fn quantization_budget(&self, w: &Window, cwnd: u64) -> u64 {
        let mut cwnd = cwnd.saturating_add(3 * Self::tso_segs_goal(w));
        cwnd = (cwnd + 1) & !1;
        if self.mode == Mode::ProbeBw && self.cycle_idx == 0 {
            cwnd += 2;
        }
        cwnd
    }

    /// Linux `bbr_inflight`: the in-flight target for a gain, segments.
    fn inflight(&self, w: &Window, bw: u64, gain: u32) -> u64 {
        let inflight = self.bdp(w, bw, gain);
        self.quantization_budget(w, inflight)
    }

    /// Linux `bbr_packets_in_net_at_edt`, without an earliest departure
    /// time (see the module docs): in flight now, plus the next burst when
    /// probing up.
    fn packets_in_net_at_edt(&self, w: &Window, inflight_now: u64) -> u64 {
        let mut inflight_at_edt = inflight_now;
        if self.pacing_gain > BBR_UNIT {
            inflight_at_edt += Self::tso_segs_goal(w);
        }
        inflight_at_edt
    }

    /// Linux `bbr_update_ack_aggregation`: how many segments were
    /// acknowledged beyond what bw predicts since the epoch began.
    fn update_ack_aggregation(&mut self, w: &Window, rs: &RateSample, now: Instant) {
        let mss = u64::from(w.mss.max(1));
        if EXTRA_ACKED_GAIN == 0 || rs.acked_sacked == 0 || rs.interval.is_zero() {
            return;
        }
        if self.round_start {
            self.extra_acked_win_rtts = (self.extra_acked_win_rtts + 1).min(0x1f);
            if self.extra_acked_win_rtts >= EXTRA_ACKED_WIN_RTTS {
                self.extra_acked_win_rtts = 0;
                self.extra_acked_win_idx = 1 - self.extra_acked_win_idx;
                self.extra_acked[self.extra_acked_win_idx] = 0;
            }
        }
        let epoch_us = (now - self.ack_epoch_mstamp).as_micros();
        let mut expected =
            u64::try_from(u128::from(self.bw()) * epoch_us / (1_000_000 * u128::from(mss)))
                .unwrap_or(u64::MAX);
        let acked = segs(u64::from(rs.acked_sacked), mss);
        // Reset the epoch when ACKs come slower than bw, or after a lot.
        if self.ack_epoch_acked <= expected
            || self.ack_epoch_acked + acked >= ACK_EPOCH_ACKED_RESET_THRESH
        {
            self.ack_epoch_acked = 0;
            self.ack_epoch_mstamp = now;
            expected = 0;
        }
        self.ack_epoch_acked = (self.ack_epoch_acked + acked).min(0xfffff);
        let cwnd = u64::from(w.cwnd / w.mss.max(1));
        let extra = self.ack_epoch_acked.saturating_sub(expected).min(cwnd);
        let idx = self.extra_acked_win_idx;
        if extra > self.extra_acked[idx] {
            self.extra_acked[idx] = extra;
        }
    }

    /// Linux `bbr_ack_aggregation_cwnd`, segments.
    fn ack_aggregation_cwnd(&self, w: &Window) -> u64 {
        if EXTRA_ACKED_GAIN == 0 || !self.full_bw_reached {
            return 0;
        }
        let mss = u128::from(w.mss.max(1));
        let max_aggr =
            u64::try_from(u128::from(self.bw()) * EXTRA_ACKED_MAX.as_micros() / (1_000_000 * mss))
                .unwrap_or(u64::MAX);
        let aggr = (u64::from(EXTRA_ACKED_GAIN) * self.extra_acked()) >> BBR_SCALE;
        aggr.min(max_aggr)
    }

    /// Linux `bbr_set_cwnd_to_recover_or_restore`: packet conservation in
    /// the first round of recovery, cwnd restored when it ends. Returns the
    /// new cwnd in segments and whether it is final for this ACK.
    fn set_cwnd_to_recover_or_restore(
        &mut self,
        w: &Window,
        rs: &RateSample,
        acked: u64,
    ) -> (u64, bool) {
        let mss = u64::from(w.mss.max(1));
        let prev_state = self.prev_ca_state;
        let state = w.ca_state;
        let mut cwnd = u64::from(w.cwnd) / mss;
        let in_flight = segs(u64::from(w.bytes_in_flight), mss);
        // An ACK that marks losses reduces cwnd by what was lost.
        if rs.losses > 0 {
            cwnd = cwnd.saturating_sub(segs(u64::from(rs.losses), mss)).max(1);
        }
        if state == CaState::Recovery && prev_state != CaState::Recovery {
            // Starting recovery: one round of packet conservation.
            self.packet_conservation = true;
            self.next_rtt_delivered = w.delivered;
            cwnd = in_flight + acked;
        } else if prev_state >= CaState::Recovery && state < CaState::Recovery {
            // Leaving recovery: back to the window before it.
            cwnd = cwnd.max(u64::from(self.prior_cwnd));
            self.packet_conservation = false;
        }
        self.prev_ca_state = state;
        if self.packet_conservation {
            return (cwnd.max(in_flight + acked), true);
        }
        (cwnd, false)
    }

    /// Linux `bbr_set_cwnd`.
    fn set_cwnd(&mut self, w: &mut Window, rs: &RateSample, bw: u64, gain: u32) {
        let mss = u64::from(w.mss.max(1));
        let acked = segs(u64::from(rs.acked_sacked), mss);
        let mut cwnd = u64::from(w.cwnd) / mss;
        if acked > 0 {
            let (c, done) = self.set_cwnd_to_recover_or_restore(w, rs, acked);
            cwnd = c;
            if !done {
                // Target: gain·BDP plus the ack-aggregation allowance plus
                // the quantisation budget.
                let mut target = self.bdp(w, bw, gain);
                target += self.ack_aggregation_cwnd(w);
                target = self.quantization_budget(w, target);
                if self.full_bw_reached {
                    // Grow toward the target, or cut to it at once.
                    cwnd = (cwnd + acked).min(target);
                } else if cwnd < target || w.delivered < u64::from(TCP_INIT_CWND) * mss {
                    // STARTUP: grow by what was acked, like slow start.
                    cwnd += acked;
                }
                cwnd = cwnd.max(u64::from(CWND_MIN_TARGET));
            }
        }
        let clamp = u64::from(u32::MAX) / mss;
        cwnd = cwnd.min(clamp);
        if self.mode == Mode::ProbeRtt {
            cwnd = cwnd.min(u64::from(CWND_MIN_TARGET));
        }
        w.cwnd = (cwnd * mss) as u32;
    }

    /// Linux `bbr_is_next_cycle_phase`.
    fn is_next_cycle_phase(&self, w: &Window, rs: &RateSample, now: Instant) -> bool {
        let is_full_length = self
            .min_rtt
            .is_some_and(|min_rtt| now - self.cycle_mstamp > min_rtt);
        // The 1.0 phases last one min_rtt.
        if self.pacing_gain == BBR_UNIT {
            return is_full_length;
        }
        let mss = u64::from(w.mss.max(1));
        let inflight = self.packets_in_net_at_edt(w, segs(u64::from(rs.prior_in_flight), mss));
        let bw = self.max_bw();
        if self.pacing_gain > BBR_UNIT {
            // Probing up lasts a min_rtt, and until in-flight reached
            // pacing_gain·BDP or a loss says the pipe is full.
            return is_full_length
                && (rs.losses > 0 || inflight >= self.inflight(w, bw, self.pacing_gain));
        }
        // Draining (3/4) ends after a min_rtt or once at one BDP.
        is_full_length || inflight <= self.inflight(w, bw, BBR_UNIT)
    }

    /// Linux `bbr_advance_cycle_phase`.
    fn advance_cycle_phase(&mut self, now: Instant) {
        self.cycle_idx = (self.cycle_idx + 1) % CYCLE_LEN;
        self.cycle_mstamp = now;
    }

    /// Linux `bbr_update_cycle_phase`.
    fn update_cycle_phase(&mut self, w: &Window, rs: &RateSample, now: Instant) {
        if self.mode == Mode::ProbeBw && self.is_next_cycle_phase(w, rs, now) {
            self.advance_cycle_phase(now);
        }
    }

    /// Linux `bbr_reset_startup_mode`.
    fn reset_startup_mode(&mut self) {
        self.set_mode(Mode::Startup);
    }

    /// Linux `bbr_reset_probe_bw_mode`: a random phase other than 3/4.
    fn reset_probe_bw_mode(&mut self, now: Instant) {
        self.set_mode(Mode::ProbeBw);
        self.cycle_idx = CYCLE_LEN - 1 - self.rng.below(CYCLE_RAND) as usize;
        self.advance_cycle_phase(now);
    }

    /// Linux `bbr_reset_mode`.
    fn reset_mode(&mut self, now: Instant) {
        if !self.full_bw_reached {
            self.reset_startup_mode();
        } else {
            self.reset_probe_bw_mode(now);
        }
    }

    /// Linux `bbr_reset_lt_bw_sampling_interval`.
    fn reset_lt_bw_sampling_interval(&mut self, w: &Window, now: Instant) {
        self.lt_last_stamp = now.total_millis();
        self.lt_last_delivered = w.delivered;
        self.lt_last_lost = w.lost;
        self.lt_rtt_cnt = 0;
    }

    /// Linux `bbr_reset_lt_bw_sampling`.
    fn reset_lt_bw_sampling(&mut self, w: &Window, now: Instant) {
        self.lt_bw = 0;
        self.lt_use_bw = false;
        self.lt_is_sampling = false;
        self.reset_lt_bw_sampling_interval(w, now);
    }

    /// Linux `bbr_lt_bw_interval_done`: two consistent lossy intervals mean
    /// a token-bucket policer; use their average.
    fn lt_bw_interval_done(&mut self, w: &Window, bw: u64, now: Instant) {
        if self.lt_bw > 0 {
            let diff = bw.abs_diff(self.lt_bw);
            if diff * u64::from(BBR_UNIT) <= LT_BW_RATIO * self.lt_bw
                || Self::rate_bytes_per_sec(diff, BBR_UNIT) <= LT_BW_DIFF
            {
                self.lt_bw = (bw + self.lt_bw) >> 1;
                self.lt_use_bw = true;
                self.pacing_gain = BBR_UNIT;
                self.lt_rtt_cnt = 0;
                return;
            }
        }
        self.lt_bw = bw;
        self.reset_lt_bw_sampling_interval(w, now);
    }

    /// Linux `bbr_lt_bw_sampling`: token-bucket policer detection.
    fn lt_bw_sampling(&mut self, w: &Window, rs: &RateSample, now: Instant) {
        if self.lt_use_bw {
            // Using the policed rate: after LT_BW_MAX_RTTS, probe again.
            if self.mode == Mode::ProbeBw && self.round_start {
                self.lt_rtt_cnt += 1;
                if self.lt_rtt_cnt >= LT_BW_MAX_RTTS {
                    self.reset_lt_bw_sampling(w, now);
                    self.reset_probe_bw_mode(now);
                }
            }
            return;
        }
        // An interval starts at a loss (a policer exhausting its tokens).
        if !self.lt_is_sampling {
            if rs.losses == 0 {
                return;
            }
            self.reset_lt_bw_sampling_interval(w, now);
            self.lt_is_sampling = true;
        }
        // Application-limited samples say nothing about a policer.
        if rs.is_app_limited {
            self.reset_lt_bw_sampling(w, now);
            return;
        }
        if self.round_start {
            self.lt_rtt_cnt += 1;
        }
        if self.lt_rtt_cnt < LT_INTVL_MIN_RTTS {
            return;
        }
        if self.lt_rtt_cnt > 4 * LT_INTVL_MIN_RTTS {
            self.reset_lt_bw_sampling(w, now);
            return;
        }
        // The interval ends at a loss, with a high enough loss rate.
        if rs.losses == 0 {
            return;
        }
        let lost = w.lost.saturating_sub(self.lt_last_lost);
        let delivered = w.delivered.saturating_sub(self.lt_last_delivered);
        if delivered == 0 || (lost << BBR_SCALE) < LT_LOSS_THRESH * delivered {
            return;
        }
        let t_ms = now.total_millis().saturating_sub(self.lt_last_stamp);
        if t_ms < 1 {
            return;
        }
        if t_ms >= u64::from(u32::MAX) / 1000 {
            self.reset_lt_bw_sampling(w, now);
            return;
        }
        let bw = delivered * 1000 / t_ms;
        self.lt_bw_interval_done(w, bw, now);
    }

    /// Linux `bbr_update_bw`: round counting and the max-bandwidth filter.
    fn update_bw(&mut self, w: &Window, rs: &RateSample, now: Instant) {
        self.round_start = false;
        if rs.interval.is_zero() {
            return;
        }
        // A round trip ends when a packet sent after the round began is
        // delivered.
        if rs.prior_delivered >= self.next_rtt_delivered {
            self.next_rtt_delivered = w.delivered;
            self.rtt_cnt = self.rtt_cnt.wrapping_add(1);
            self.round_start = true;
            self.packet_conservation = false;
        }
        self.lt_bw_sampling(w, rs, now);
        let us = rs.interval.as_micros();
        let bw = u64::try_from(u128::from(rs.delivered) * 1_000_000 / us).unwrap_or(u64::MAX);
        // Application-limited samples only count when they are higher.
        if !rs.is_app_limited || bw >= self.max_bw() {
            self.bw.running_max(BW_RTTS, self.rtt_cnt, bw);
        }
    }

    /// Linux `bbr_check_full_bw_reached`: the pipe is full after
    /// FULL_BW_CNT rounds without 25% growth.
    fn check_full_bw_reached(&mut self, rs: &RateSample) {
        if self.full_bw_reached || !self.round_start || rs.is_app_limited {
            return;
        }
        let thresh = (u128::from(self.full_bw) * u128::from(FULL_BW_THRESH)) >> BBR_SCALE;
        if u128::from(self.max_bw()) >= thresh {
            self.full_bw = self.max_bw();
            self.full_bw_cnt = 0;
            return;
        }
        self.full_bw_cnt += 1;
        self.full_bw_reached = self.full_bw_cnt >= FULL_BW_CNT;
    }

    /// Linux `bbr_check_drain`.
    fn check_drain(&mut self, w: &mut Window, now: Instant) {
        let mss = u64::from(w.mss.max(1));
        if self.mode == Mode::Startup && self.full_bw_reached {
            self.set_mode(Mode::Drain);
            let ss = self.inflight(w, self.max_bw(), BBR_UNIT) * mss;
            w.ssthresh = u32::try_from(ss).unwrap_or(u32::MAX);
        }
        if self.mode == Mode::Drain {
            let in_net = self.packets_in_net_at_edt(w, segs(u64::from(w.bytes_in_flight), mss));
            if in_net <= self.inflight(w, self.max_bw(), BBR_UNIT) {
                self.reset_probe_bw_mode(now);
            }
        }
    }

    /// Linux `bbr_check_probe_rtt_done`.
    fn check_probe_rtt_done(&mut self, w: &mut Window, now: Instant) {
        match self.probe_rtt_done_stamp {
            Some(done) if now > done => {}
            _ => return,
        }
        self.min_rtt_stamp = now;
        let mss = w.mss.max(1);
        w.cwnd = w.cwnd.max(self.prior_cwnd.saturating_mul(mss));
        self.reset_mode(now);
    }

    /// Linux `bbr_update_min_rtt`: the min_rtt filter and PROBE_RTT.
    fn update_min_rtt(&mut self, w: &mut Window, rs: &RateSample, now: Instant) {
        let filter_expired = now > self.min_rtt_stamp + MIN_RTT_WIN;
        if let Some(rtt) = rs.rtt {
            if !matches!(self.min_rtt, Some(m) if rtt >= m) || (filter_expired && !w.ack_delayed) {
                self.min_rtt = Some(rtt);
                self.min_rtt_stamp = now;
            }
        }
        if filter_expired && !self.idle_restart && self.mode != Mode::ProbeRtt {
            self.set_mode(Mode::ProbeRtt);
            self.save_cwnd(w);
            self.probe_rtt_done_stamp = None;
        }
        if self.mode == Mode::ProbeRtt {
            // Linux sets tp->app_limited: the samples of this low-inflight
            // phase must not lower the bandwidth estimate.
            w.app_limited = true;
            let in_flight = segs(u64::from(w.bytes_in_flight), u64::from(w.mss.max(1)));
            if self.probe_rtt_done_stamp.is_none() && in_flight <= u64::from(CWND_MIN_TARGET) {
                self.probe_rtt_done_stamp = Some(now + PROBE_RTT_MODE);
                self.probe_rtt_round_done = false;
                self.next_rtt_delivered = w.delivered;
            } else if self.probe_rtt_done_stamp.is_some() {
                if self.round_start {
                    self.probe_rtt_round_done = true;
                }
                if self.probe_rtt_round_done {
                    self.check_probe_rtt_done(w, now);
                }
            }
        }
        if rs.delivered > 0 {
            self.idle_restart = false;
        }
    }

    /// Linux `bbr_update_gains`.
    fn update_gains(&mut self) {
        let (pacing, cwnd) = match self.mode {
            Mode::Startup => (HIGH_GAIN, HIGH_GAIN),
            Mode::Drain => (DRAIN_GAIN, HIGH_GAIN),
            Mode::ProbeBw => (
                if self.lt_use_bw {
                    BBR_UNIT
                } else {
                    PACING_GAIN[self.cycle_idx]
                },
                CWND_GAIN,
            ),
            Mode::ProbeRtt => (BBR_UNIT, BBR_UNIT),
        };
        self.pacing_gain = pacing;
        self.cwnd_gain = cwnd;
    }

    /// Linux `bbr_update_model`.
    fn update_model(&mut self, w: &mut Window, rs: &RateSample, now: Instant) {
        self.update_bw(w, rs, now);
        self.update_ack_aggregation(w, rs, now);
        self.update_cycle_phase(w, rs, now);
        self.check_full_bw_reached(rs);
        self.check_drain(w, now);
        self.update_min_rtt(w, rs, now);
        self.update_gains();
    }
}

impl CongestionControl for Bbr {
    fn name(&self) -> &'static str {
        "bbr"
    }

    /// Linux `bbr_init`.
    fn init(&mut self, w: &mut Window, now: Instant) {
        self.rng = SplitMix64(self.seed ^ w.seed.rotate_left(17) ^ now.total_micros());
        self.prior_cwnd = 0;
        w.ssthresh = u32::MAX;
        self.rtt_cnt = 0;
        self.next_rtt_delivered = w.delivered;
        self.prev_ca_state = CaState::Open;
        self.packet_conservation = false;
        self.probe_rtt_done_stamp = None;
        self.probe_rtt_round_done = false;
        self.min_rtt = w.min_rtt;
        self.min_rtt_stamp = now;
        self.bw.reset(self.rtt_cnt, 0);
        self.has_seen_rtt = false;
        self.init_pacing_rate_from_rtt(w);
        self.round_start = false;
        self.idle_restart = false;
        self.full_bw_reached = false;
        self.full_bw = 0;
        self.full_bw_cnt = 0;
        self.cycle_mstamp = now;
        self.cycle_idx = 0;
        self.reset_lt_bw_sampling(w, now);
        self.reset_startup_mode();
        self.update_gains();
        self.ack_epoch_mstamp = now;
        self.ack_epoch_acked = 0;
        self.extra_acked_win_rtts = 0;
        self.extra_acked_win_idx = 0;
        self.extra_acked = [0; 2];
    }

    /// Linux `bbr_ssthresh`: BBR does not use ssthresh to reduce cwnd; it
    /// saves cwnd for the restore after recovery and leaves ssthresh as is.
    fn ssthresh(&mut self, w: &Window, _now: Instant) -> u32 {
        self.save_cwnd(w);
        w.ssthresh
    }

    /// BBR owns cwnd through `cong_control`; nothing to do here (Linux
    /// `tcp_bbr_cong_ops` has no `cong_avoid`).
    fn cong_avoid(&mut self, _w: &mut Window, _ack: &AckSample, _now: Instant) {}

    fn has_cong_control(&self) -> bool {
        true
    }

    /// Linux `bbr_main`.
    fn cong_control(&mut self, w: &mut Window, rs: &RateSample, now: Instant) -> bool {
        self.update_model(w, rs, now);
        let bw = self.bw();
        self.set_pacing_rate(w, bw, self.pacing_gain);
        self.set_cwnd(w, rs, bw, self.cwnd_gain);
        true
    }

    /// Linux `bbr_set_state`: an RTO ends the round, resets the full-pipe
    /// estimate and counts as a loss for policer detection.
    fn set_state(&mut self, w: &mut Window, state: CaState, now: Instant) {
        if state == CaState::Loss {
            let rs = RateSample {
                losses: 1,
                ..RateSample::default()
            };
            self.prev_ca_state = CaState::Loss;
            self.full_bw = 0;
            self.round_start = true;
            self.lt_bw_sampling(w, &rs, now);
        }
    }

    /// Linux `bbr_cwnd_event`: restarting from idle.
    fn cwnd_event(&mut self, w: &mut Window, ev: CwndEvent, now: Instant) {
        if ev == CwndEvent::TxStart && w.app_limited {
            self.idle_restart = true;
            self.ack_epoch_mstamp = now;
            self.ack_epoch_acked = 0;
            // Avoid pointless buffer overflows: pace at est. bw after idle.
            if self.mode == Mode::ProbeBw {
                let bw = self.bw();
                self.set_pacing_rate(w, bw, BBR_UNIT);
            } else if self.mode == Mode::ProbeRtt {
                self.check_probe_rtt_done(w, now);
            }
        }
    }

    /// Linux `bbr_undo_cwnd`: the loss was spurious, so the pipe may not be
    /// full and no policer is proven; cwnd stays (BBR never cut it).
    fn undo_cwnd(&mut self, w: &Window) -> u32 {
        self.full_bw = 0;
        self.full_bw_cnt = 0;
        // Linux `bbr_reset_lt_bw_sampling` stamps the interval with the
        // delivery clock; undo has no `now`, so the interval restarts at the
        // next loss, which starts sampling anyway.
        self.lt_bw = 0;
        self.lt_use_bw = false;
        self.lt_is_sampling = false;
        self.lt_last_delivered = w.delivered;
        self.lt_last_lost = w.lost;
        self.lt_rtt_cnt = 0;
        w.cwnd
    }

    /// Linux `bbr_get_info`, plus the mode and the state machine's inputs.
    fn info(&self) -> CcInfo {
        let mode = match self.mode {
            Mode::Startup => 0.0,
            Mode::Drain => 1.0,
            Mode::ProbeBw => 2.0,
            Mode::ProbeRtt => 3.0,
        };
        CcInfo {
            fields: vec![
                ("bw_bytes_per_sec", self.bw() as f64),
                (
                    "min_rtt_us",
                    self.min_rtt.map_or(-1.0, |r| r.as_micros() as f64),
                ),
                (
                    "pacing_gain",
                    f64::from(self.pacing_gain) / f64::from(BBR_UNIT),
                ),
                ("cwnd_gain", f64::from(self.cwnd_gain) / f64::from(BBR_UNIT)),
                ("mode", mode),
                ("cycle_idx", self.cycle_idx as f64),
                ("full_bw_reached", f64::from(u8::from(self.full_bw_reached))),
                ("lt_use_bw", f64::from(u8::from(self.lt_use_bw))),
                ("extra_acked_segments", self.extra_acked() as f64),
                ("round_trips", f64::from(self.rtt_cnt)),
                ("mode_changes", f64::from(self.mode_changes)),
            ],
        }
    }

    fn mode(&self) -> Option<&'static str> {
        Some(self.mode.name())
    }
}
