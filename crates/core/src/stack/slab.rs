//! Generational slots: a stale handle finds nothing, never someone else's
//! socket.

#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores `value`; returns (index, generation).
    pub fn insert(&mut self, value: T) -> (u32, u32) {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = Some(value);
            return (index, slot.0);
        }
        self.slots.push((0, Some(value)));
        ((self.slots.len() - 1) as u32, 0)
    }

    pub fn get(&self, index: u32, generation: u32) -> Option<&T> {
        match self.slots.get(index as usize) {
            Some((g, Some(v))) if *g == generation => Some(v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, index: u32, generation: u32) -> Option<&mut T> {
        match self.slots.get_mut(index as usize) {
            Some((g, Some(v))) if *g == generation => Some(v),
            _ => None,
        }
    }

    pub fn remove(&mut self, index: u32, generation: u32) -> Option<T> {
        match self.slots.get_mut(index as usize) {
            Some((g, v @ Some(_))) if *g == generation => {
                self.len -= 1;
                self.free.push(index);
                v.take()
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// (index, generation, value) of every occupied slot.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, (g, v))| v.as_ref().map(|v| (i as u32, *g, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_handles_find_nothing() {
        let mut s = Slab::default();
        let (i, g) = s.insert("a");
        assert_eq!(s.remove(i, g), Some("a"));
        let (i2, g2) = s.insert("b");
        assert_eq!(i2, i);
        assert_ne!(g2, g);
        assert_eq!(s.get(i, g), None);
        assert_eq!(s.get(i2, g2), Some(&"b"));
        assert_eq!(s.len(), 1);
    }
}
