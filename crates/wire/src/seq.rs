//! TCP sequence numbers and their modular arithmetic.
//!
//! RFC 9293 §3.4: sequence numbers live in a 2^32 space and are compared
//! modulo 2^32. `SeqNum` therefore has **no** `PartialOrd`: "before" only
//! means something for numbers less than 2^31 apart, and a total order would
//! silently lie. Use [`SeqNum::before`], [`SeqNum::after`] and friends.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence number (also used for acknowledgment numbers).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(transparent))]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// Wraps a raw 32-bit value.
    pub const fn new(v: u32) -> Self {
        SeqNum(v)
    }

    /// The raw 32-bit value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Signed distance `self - other`, interpreted in (-2^31, 2^31].
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self < other` in sequence space (RFC 9293 §3.4).
    pub fn before(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }

    /// `self <= other` in sequence space.
    pub fn before_eq(self, other: SeqNum) -> bool {
        self.diff(other) <= 0
    }

    /// `self > other` in sequence space.
    pub fn after(self, other: SeqNum) -> bool {
        self.diff(other) > 0
    }

    /// `self >= other` in sequence space.
    pub fn after_eq(self, other: SeqNum) -> bool {
        self.diff(other) >= 0
    }

    /// The earlier of two sequence numbers.
    pub fn earliest(self, other: SeqNum) -> SeqNum {
        if self.before(other) {
            self
        } else {
            other
        }
    }

    /// The later of two sequence numbers.
    pub fn latest(self, other: SeqNum) -> SeqNum {
        if self.after(other) {
            self
        } else {
            other
        }
    }

    /// `start <= self < start + len` in sequence space.
    pub fn in_window(self, start: SeqNum, len: u32) -> bool {
        self.0.wrapping_sub(start.0) < len
    }

    /// Number of sequence numbers from `earlier` up to `self`, saturating at
    /// zero when `self` is before `earlier`.
    pub fn since(self, earlier: SeqNum) -> u32 {
        let d = self.diff(earlier);
        if d < 0 {
            0
        } else {
            d as u32
        }
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    fn add(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs))
    }
}

impl AddAssign<u32> for SeqNum {
    fn add_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    fn sub(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs))
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqNum({})", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_around_zero() {
        let a = SeqNum(u32::MAX - 5);
        let b = a + 10;
        assert_eq!(b.0, 4);
        assert!(a.before(b));
        assert!(b.after(a));
        assert_eq!(b.diff(a), 10);
        assert_eq!(b.since(a), 10);
        assert_eq!(a.since(b), 0);
        assert_eq!(a.latest(b), b);
        assert_eq!(a.earliest(b), a);
        assert!((a + 3).in_window(a, 10));
        assert!(!(a + 10).in_window(a, 10));
    }

    proptest! {
        // Ordering laws, within the half-space where ordering is defined.
        #[test]
        fn irreflexive_and_antisymmetric(a in any::<u32>(), d in 1u32..(1 << 31)) {
            let x = SeqNum(a);
            let y = x + d;
            prop_assert!(!x.before(x));
            prop_assert!(x.before(y));
            prop_assert!(!y.before(x));
            prop_assert!(y.after(x));
            prop_assert!(x.before_eq(x) && x.after_eq(x));
        }

        #[test]
        fn transitive_within_half_space(a in any::<u32>(), d1 in 1u32..(1 << 30), d2 in 1u32..(1 << 30)) {
            let x = SeqNum(a);
            let y = x + d1;
            let z = y + d2;
            prop_assert!(x.before(y) && y.before(z) && x.before(z));
            prop_assert!(z.after(x));
        }

        #[test]
        fn totality(a in any::<u32>(), b in any::<u32>()) {
            let (x, y) = (SeqNum(a), SeqNum(b));
            // Exactly one of before / equal / after, except for the antipode.
            let n = [x.before(y), x == y, x.after(y)].iter().filter(|v| **v).count();
            if b.wrapping_sub(a) != 1 << 31 {
                prop_assert_eq!(n, 1);
            }
        }

        #[test]
        fn add_then_diff(a in any::<u32>(), d in 0u32..(1 << 31)) {
            prop_assert_eq!((SeqNum(a) + d).diff(SeqNum(a)), d as i32);
            prop_assert_eq!((SeqNum(a) + d) - d, SeqNum(a));
            prop_assert_eq!(SeqNum(a).latest(SeqNum(a) + d), SeqNum(a) + d);
        }
    }
}
