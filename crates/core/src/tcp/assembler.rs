//! Which byte offsets beyond RCV.NXT hold out-of-order data: a sorted set of
//! disjoint ranges, bounded only by memory (any number of holes).
//!
//! Each range remembers when it last grew, so the receiver can report the
//! most recently changed blocks first in SACK options (RFC 2018 §4).

/// A sorted set of disjoint, non-adjacent byte ranges `[start, end)`.
#[derive(Debug, Clone, Default)]
pub struct Assembler {
    /// (start, end, stamp), sorted by start.
    ranges: Vec<(usize, usize, u64)>,
    clock: u64,
}

impl Assembler {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of disjoint ranges (holes + 1 after the first gap).
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Total bytes covered.
    pub fn covered(&self) -> usize {
        self.ranges.iter().map(|(s, e, _)| e - s).sum()
    }

    /// Ranges in offset order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.ranges.iter().map(|(s, e, _)| (*s, *e))
    }

    /// Calls `f` for each sub-range of `[start, end)` not yet covered.
    pub fn for_each_gap(&self, start: usize, end: usize, mut f: impl FnMut(usize, usize)) {
        let mut pos = start;
        for &(s, e, _) in &self.ranges {
            if e <= pos {
                continue;
            }
            if s >= end {
                break;
            }
            if s > pos {
                f(pos, s.min(end));
            }
            pos = pos.max(e);
            if pos >= end {
                return;
            }
        }
        if pos < end {
            f(pos, end);
        }
    }

    /// Adds `[start, end)`, merging with overlapping or adjacent ranges.
    /// Returns how many bytes were not covered before.
    pub fn add(&mut self, start: usize, end: usize) -> usize {
        if start >= end {
            return 0;
        }
        let mut new_bytes = 0;
        self.for_each_gap(start, end, |s, e| new_bytes += e - s);
        self.clock += 1;
        // First range that ends at or after `start` (may merge).
        let first = self.ranges.partition_point(|(_, e, _)| *e < start);
        // First range that starts after `end` (cannot merge).
        let last = self.ranges.partition_point(|(s, _, _)| *s <= end);
        let (mut s, mut e) = (start, end);
        if first < last {
            s = s.min(self.ranges[first].0);
            e = e.max(self.ranges[last - 1].1);
        }
        self.ranges.splice(first..last, [(s, e, self.clock)]);
        new_bytes
    }

    /// If a range starts at offset 0, removes it and returns its length;
    /// then shifts every other range down by that amount.
    pub fn pop_front(&mut self) -> usize {
        match self.ranges.first() {
            Some(&(0, end, _)) => {
                self.ranges.remove(0);
                self.shift_down(end);
                end
            }
            _ => 0,
        }
    }

    /// Shifts all offsets down by `n` (RCV.NXT advanced by `n`); ranges
    /// that fall below zero are clipped.
    pub fn shift_down(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.ranges.retain_mut(|(s, e, _)| {
            *s = s.saturating_sub(n);
            *e = e.saturating_sub(n);
            *e > *s
        });
    }

    /// Up to four ranges, the most recently grown first (RFC 2018 §4).
    pub fn most_recent(&self) -> impl Iterator<Item = (usize, usize)> {
        let mut top: [Option<(usize, usize, u64)>; 4] = [None; 4];
        for &r in &self.ranges {
            // Insertion into a 4-slot list sorted by stamp, newest first.
            let mut item = Some(r);
            for slot in top.iter_mut() {
                match (*slot, item) {
                    (None, Some(_)) => {
                        *slot = item;
                        item = None;
                    }
                    (Some(cur), Some(new)) if new.2 > cur.2 => {
                        *slot = Some(new);
                        item = Some(cur);
                    }
                    _ => {}
                }
            }
        }
        top.into_iter().flatten().map(|(s, e, _)| (s, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merges_overlapping_and_adjacent_ranges() {
        let mut a = Assembler::new();
        assert_eq!(a.add(10, 20), 10);
        assert_eq!(a.add(30, 40), 10);
        assert_eq!(a.add(20, 30), 10);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![(10, 40)]);
        assert_eq!(a.add(5, 45), 10);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![(5, 45)]);
        assert_eq!(a.add(0, 5), 5);
        assert_eq!(a.pop_front(), 45);
        assert!(a.is_empty());
    }

    #[test]
    fn most_recent_ranges_come_first() {
        let mut a = Assembler::new();
        a.add(100, 200);
        a.add(300, 400);
        a.add(500, 600);
        a.add(150, 250);
        let order: Vec<_> = a.most_recent().collect();
        assert_eq!(order, vec![(100, 250), (500, 600), (300, 400)]);
    }

    proptest! {
        #[test]
        fn matches_a_bitmap_model(ops in proptest::collection::vec((0usize..500, 0usize..80), 1..80)) {
            let mut a = Assembler::new();
            let mut model = vec![false; 600];
            for (start, len) in ops {
                let end = start + len;
                let expected_new = model[start..end].iter().filter(|b| !**b).count();
                prop_assert_eq!(a.add(start, end), expected_new);
                for b in &mut model[start..end] { *b = true; }
                // Ranges are sorted, disjoint, non-adjacent and match the model.
                let ranges: Vec<_> = a.iter().collect();
                for w in ranges.windows(2) { prop_assert!(w[0].1 < w[1].0); }
                let mut rebuilt = vec![false; 600];
                for (s, e) in &ranges { for b in &mut rebuilt[*s..*e] { *b = true; } }
                prop_assert_eq!(&rebuilt, &model);
                prop_assert_eq!(a.most_recent().count(), ranges.len().min(4));
            }
        }
    }
}
