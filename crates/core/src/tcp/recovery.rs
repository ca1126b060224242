//! NewReno loss recovery (RFC 5681 §3.2, RFC 6582) with limited transmit
//! (RFC 3042). This type decides *that* something is lost; the congestion
//! controller decides how much may be in flight; output decides what to send.
//! SACK-based recovery (RFC 6675) and RACK-TLP (RFC 8985) will sit beside it.

use daytona_wire::SeqNum;

/// What an ACK means for loss recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckVerdict {
    /// A new cumulative ACK outside recovery.
    NewAck,
    /// A duplicate ACK below the threshold; `limited_transmit` segments may
    /// be sent beyond cwnd (RFC 3042).
    DupAck { count: u32 },
    /// The threshold was reached: fast retransmit and enter recovery.
    EnterRecovery,
    /// Another duplicate ACK during recovery: inflate cwnd (RFC 6582 §3.2 step 4).
    RecoveryDupAck,
    /// A partial ACK during recovery (RFC 6582 §3.2 step 5).
    PartialAck,
    /// A full ACK: recovery ends (RFC 6582 §3.2 step 3).
    FullAck,
    /// A duplicate ACK that must not start another recovery because it does
    /// not cover `recover` (RFC 6582 §3.2 step 2 / §4.1).
    Ignored,
}

/// NewReno recovery state.
#[derive(Debug, Clone)]
pub struct Recovery {
    dupacks: u32,
    /// RFC 6582 `recover`: highest sequence number sent when recovery began.
    recover: SeqNum,
    in_recovery: bool,
    /// Segments retransmitted in the current episode (for `TcpInfo.retrans`).
    retransmitted: u32,
    /// `recover` was set by a timeout and snd_una has not passed it yet.
    after_rto: bool,
    /// Partial ACKs seen in the current episode.
    partial_acks: u32,
}

impl Recovery {
    /// RFC 6582 §3.2: `recover` starts at the initial send sequence number.
    pub fn new(iss: SeqNum) -> Self {
        Recovery {
            dupacks: 0,
            recover: iss,
            in_recovery: false,
            retransmitted: 0,
            after_rto: false,
            partial_acks: 0,
        }
    }

    pub fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    pub fn recover(&self) -> SeqNum {
        self.recover
    }

    pub fn dupacks(&self) -> u32 {
        self.dupacks
    }

    pub fn retransmitted_segments(&self) -> u32 {
        self.retransmitted
    }

    /// Partial ACKs in the current recovery episode.
    pub fn partial_acks(&self) -> u32 {
        self.partial_acks
    }

    pub fn note_retransmit(&mut self) {
        self.retransmitted += 1;
    }

    /// A cumulative ACK advanced snd_una to `ack`.
    pub fn on_new_ack(&mut self, ack: SeqNum) -> AckVerdict {
        self.dupacks = 0;
        if ack.after(self.recover) {
            self.after_rto = false;
        }
        if !self.in_recovery {
            // `recover` trails snd_una outside recovery, so the modular
            // comparison of RFC 6582 §3.2 step 2 stays meaningful after
            // 2^31 bytes (it would otherwise read an old `recover` as ahead).
            if !self.after_rto {
                self.recover = ack;
            }
            return AckVerdict::NewAck;
        }
        // RFC 6582 §3.2 step 3: a full ACK covers `recover`.
        if ack.after(self.recover) || ack == self.recover {
            self.in_recovery = false;
            self.retransmitted = 0;
            AckVerdict::FullAck
        } else {
            self.partial_acks += 1;
            AckVerdict::PartialAck
        }
    }

    /// A duplicate ACK (RFC 5681 §2 definition, checked by the caller).
    /// `snd_una` is the ACK's value and `snd_max` the highest sequence sent.
    pub fn on_dup_ack(&mut self, snd_una: SeqNum, snd_max: SeqNum, threshold: u32) -> AckVerdict {
        if self.in_recovery {
            return AckVerdict::RecoveryDupAck;
        }
        self.dupacks += 1;
        if self.dupacks < threshold {
            return AckVerdict::DupAck {
                count: self.dupacks,
            };
        }
        if self.dupacks > threshold {
            return AckVerdict::Ignored;
        }
        // RFC 6582 §3.2 step 2: only if the cumulative ACK covers more than
        // `recover` — otherwise these duplicates echo an earlier episode.
        // An ACK exactly at `recover` is ambiguous only after a timeout,
        // when the old flight's duplicates may still be arriving.
        let covers = snd_una.after(self.recover) || (snd_una == self.recover && !self.after_rto);
        if !covers {
            return AckVerdict::Ignored;
        }
        self.in_recovery = true;
        self.recover = snd_max;
        self.retransmitted = 0;
        self.partial_acks = 0;
        AckVerdict::EnterRecovery
    }

    /// A retransmission timeout: leave fast recovery, and remember the
    /// highest sequence sent so duplicate ACKs of the old flight do not start
    /// a new recovery (RFC 6582 §3.2 step 1 / §4).
    pub fn on_rto(&mut self, snd_max: SeqNum) {
        self.in_recovery = false;
        self.dupacks = 0;
        self.recover = snd_max;
        self.retransmitted = 0;
        self.after_rto = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn third_duplicate_enters_recovery_once() {
        let mut r = Recovery::new(SeqNum(0));
        let una = SeqNum(1000);
        let max = SeqNum(20_000);
        assert_eq!(r.on_dup_ack(una, max, 3), AckVerdict::DupAck { count: 1 });
        assert_eq!(r.on_dup_ack(una, max, 3), AckVerdict::DupAck { count: 2 });
        assert_eq!(r.on_dup_ack(una, max, 3), AckVerdict::EnterRecovery);
        assert_eq!(r.recover(), max);
        assert_eq!(r.on_dup_ack(una, max, 3), AckVerdict::RecoveryDupAck);
        assert_eq!(r.on_new_ack(SeqNum(5000)), AckVerdict::PartialAck);
        assert_eq!(r.on_new_ack(max), AckVerdict::FullAck);
        assert!(!r.in_recovery());
    }

    #[test]
    fn fast_retransmit_still_works_after_two_gigabytes() {
        // `recover` starts at ISS; cumulative ACKs must carry it along, or
        // after 2^31 bytes `snd_una > recover` reads false and fast
        // retransmit is disabled for the rest of the connection.
        let mut r = Recovery::new(SeqNum(0));
        let mut una = SeqNum(0);
        for _ in 0..5 {
            una += 1_000_000_000;
            assert_eq!(r.on_new_ack(una), AckVerdict::NewAck);
        }
        let max = una + 20_000;
        r.on_dup_ack(una, max, 3);
        r.on_dup_ack(una, max, 3);
        assert_eq!(r.on_dup_ack(una, max, 3), AckVerdict::EnterRecovery);
    }

    #[test]
    fn duplicates_below_recover_after_rto_are_ignored() {
        // RFC 6582 §4.1: after a timeout, duplicate ACKs for data sent before
        // it must not trigger a second fast retransmit.
        let mut r = Recovery::new(SeqNum(0));
        r.on_rto(SeqNum(50_000));
        let una = SeqNum(10_000);
        r.on_dup_ack(una, SeqNum(50_000), 3);
        r.on_dup_ack(una, SeqNum(50_000), 3);
        assert_eq!(r.on_dup_ack(una, SeqNum(50_000), 3), AckVerdict::Ignored);
        assert!(!r.in_recovery());
    }
}
