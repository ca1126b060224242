//! Duplicate-ACK counting and the RFC 6582 `recover` guard.
//!
//! With SACK, losses are found by RACK (RFC 8985) or RFC 6675's IsLost on
//! the scoreboard; this counter still drives limited transmit (RFC 3042),
//! the Disorder state, and — for peers that do not permit SACK — NewReno's
//! fast retransmit (RFC 5681 §3.2, RFC 6582), as Linux falls back to Reno.

use daytona_wire::SeqNum;

/// Duplicate ACKs since the last cumulative advance, and `recover`.
#[derive(Debug, Clone)]
pub struct DupAcks {
    count: u32,
    /// RFC 6582 §3.2: the highest sequence sent when the last recovery or
    /// timeout began; duplicates of that flight must not start another.
    recover: SeqNum,
    /// `recover` was set by a timeout and SND.UNA has not passed it yet.
    after_rto: bool,
}

impl DupAcks {
    /// RFC 6582 §3.2: `recover` starts at the initial send sequence number.
    pub fn new(iss: SeqNum) -> Self {
        DupAcks {
            count: 0,
            recover: iss,
            after_rto: false,
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn recover(&self) -> SeqNum {
        self.recover
    }

    /// A duplicate ACK. Returns true when it is the `threshold`-th and
    /// NewReno may start fast retransmit: the cumulative ACK covers more
    /// than `recover` (RFC 6582 §3.2 step 2). An ACK exactly at `recover`
    /// is ambiguous only after a timeout, when the old flight's duplicates
    /// may still be arriving.
    pub fn on_dup_ack(&mut self, snd_una: SeqNum, threshold: u32) -> bool {
        self.count += 1;
        self.count == threshold
            && (snd_una.after(self.recover) || (snd_una == self.recover && !self.after_rto))
    }

    /// A cumulative ACK advanced SND.UNA to `ack`. Outside recovery
    /// `recover` trails SND.UNA, so the modular comparison of RFC 6582 §3.2
    /// step 2 stays meaningful after 2^31 bytes.
    pub fn on_new_ack(&mut self, ack: SeqNum, in_recovery: bool) {
        self.count = 0;
        if ack.after(self.recover) {
            self.after_rto = false;
        }
        if !in_recovery && !self.after_rto && ack.after(self.recover) {
            self.recover = ack;
        }
    }

    /// Fast recovery begins with `snd_max` the highest sequence sent.
    pub fn on_recovery(&mut self, snd_max: SeqNum) {
        self.recover = snd_max;
    }

    /// A retransmission timeout (RFC 6582 §3.2 step 1 / §4).
    pub fn on_rto(&mut self, snd_max: SeqNum) {
        self.count = 0;
        self.recover = snd_max;
        self.after_rto = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn third_duplicate_starts_fast_retransmit_once() {
        let mut d = DupAcks::new(SeqNum(0));
        let una = SeqNum(1000);
        assert!(!d.on_dup_ack(una, 3));
        assert!(!d.on_dup_ack(una, 3));
        assert!(d.on_dup_ack(una, 3));
        assert!(!d.on_dup_ack(una, 3));
    }

    #[test]
    fn fast_retransmit_still_works_after_two_gigabytes() {
        // `recover` starts at ISS; cumulative ACKs must carry it along, or
        // after 2^31 bytes `snd_una > recover` reads false and fast
        // retransmit is disabled for the rest of the connection.
        let mut d = DupAcks::new(SeqNum(0));
        let mut una = SeqNum(0);
        for _ in 0..5 {
            una += 1_000_000_000;
            d.on_new_ack(una, false);
        }
        d.on_dup_ack(una, 3);
        d.on_dup_ack(una, 3);
        assert!(d.on_dup_ack(una, 3));
    }

    #[test]
    fn duplicates_below_recover_after_rto_are_ignored() {
        // RFC 6582 §4.1: after a timeout, duplicate ACKs for data sent before
        // it must not trigger a second fast retransmit.
        let mut d = DupAcks::new(SeqNum(0));
        d.on_rto(SeqNum(50_000));
        let una = SeqNum(10_000);
        d.on_new_ack(una, false);
        d.on_dup_ack(una, 3);
        d.on_dup_ack(una, 3);
        assert!(!d.on_dup_ack(una, 3));
    }
}
