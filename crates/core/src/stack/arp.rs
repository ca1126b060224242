//! The ARP cache (RFC 826): learned mappings with an expiry, and the
//! addresses being resolved with their retry state.

use crate::time::{Duration, Instant};
use daytona_wire::EthernetAddress;
use std::collections::HashMap;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy)]
struct Pending {
    next_request: Instant,
    tries: u32,
}

/// What to do about an unresolved next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Found(EthernetAddress),
    /// Send an ARP request now.
    Request,
    /// A request is outstanding; wait.
    Waiting,
    /// Resolution failed; drop.
    Failed,
}

#[derive(Debug, Default)]
pub struct ArpCache {
    entries: HashMap<Ipv4Addr, (EthernetAddress, Instant)>,
    pending: HashMap<Ipv4Addr, Pending>,
}

impl ArpCache {
    /// Learns (or refreshes) a mapping; returns true if it was pending.
    pub fn insert(
        &mut self,
        ip: Ipv4Addr,
        mac: EthernetAddress,
        now: Instant,
        ttl: Duration,
    ) -> bool {
        self.entries.insert(ip, (mac, now + ttl));
        self.pending.remove(&ip).is_some()
    }

    /// Looks `ip` up, deciding whether a request must go out.
    pub fn lookup(
        &mut self,
        ip: Ipv4Addr,
        now: Instant,
        retry: Duration,
        max_tries: u32,
    ) -> Lookup {
        if let Some((mac, expires)) = self.entries.get(&ip) {
            if *expires > now {
                return Lookup::Found(*mac);
            }
            self.entries.remove(&ip);
        }
        match self.pending.get_mut(&ip) {
            None => {
                self.pending.insert(
                    ip,
                    Pending {
                        next_request: now + retry,
                        tries: 1,
                    },
                );
                Lookup::Request
            }
            Some(p) if p.next_request <= now => {
                if p.tries >= max_tries {
                    // Give up for one retry interval, then start over.
                    self.pending.remove(&ip);
                    return Lookup::Failed;
                }
                p.tries += 1;
                p.next_request = now + retry;
                Lookup::Request
            }
            Some(_) => Lookup::Waiting,
        }
    }

    /// Earliest retry deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.next_request).min()
    }

    /// Addresses whose retry is due.
    pub fn due(&self, now: Instant) -> Vec<Ipv4Addr> {
        self.pending
            .iter()
            .filter(|(_, p)| p.next_request <= now)
            .map(|(ip, _)| *ip)
            .collect()
    }

    pub fn is_pending(&self, ip: Ipv4Addr) -> bool {
        self.pending.contains_key(&ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_retries_and_expires() {
        let mut c = ArpCache::default();
        let ip = Ipv4Addr::new(198, 18, 0, 9);
        let mac = EthernetAddress([2, 0, 0, 0, 0, 9]);
        let s = Duration::from_secs(1);
        let t = Instant::from_secs(10);
        assert_eq!(c.lookup(ip, t, s, 2), Lookup::Request);
        assert_eq!(c.lookup(ip, t, s, 2), Lookup::Waiting);
        assert_eq!(c.lookup(ip, t + s, s, 2), Lookup::Request);
        assert_eq!(c.lookup(ip, t + s * 2, s, 2), Lookup::Failed);
        assert!(!c.insert(ip, mac, t, Duration::from_secs(30)));
        assert_eq!(c.lookup(ip, t, s, 2), Lookup::Found(mac));
        assert_eq!(
            c.lookup(ip, t + Duration::from_secs(31), s, 2),
            Lookup::Request
        );
    }
}
