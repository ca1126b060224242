//! Hosts, links and the event loop.

use daytona_core::cc::CcRegistry;
use daytona_core::stack::{Stack, StackConfig};
use daytona_core::time::Instant;
use daytona_core::Error;
use daytona_link::{FaultModel, Impairment};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;

/// Index of a host in a [`Sim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostId(pub usize);

/// Why a simulation could not go on.
#[derive(Debug, Clone, PartialEq)]
pub enum SimError {
    /// A stack refused its configuration.
    Stack(Error),
    /// An impairment is out of range.
    BadLink(String),
    /// The run did not finish within its step or time budget.
    Stalled { steps: u64, now: Instant },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Stack(e) => write!(f, "stack configuration rejected: {e}"),
            SimError::BadLink(e) => write!(f, "bad link parameters: {e}"),
            SimError::Stalled { steps, now } => {
                write!(f, "simulation stalled after {steps} steps at {now}")
            }
        }
    }
}

impl std::error::Error for SimError {}

struct Host {
    stack: Stack,
    /// Outgoing link: (peer, fault model).
    link: Option<(HostId, FaultModel)>,
}

/// A frame in flight: (delivery time, sequence for FIFO ties, to, bytes).
type InFlight = Reverse<(Instant, u64, usize, Vec<u8>)>;

/// The simulated network.
pub struct Sim {
    now: Instant,
    hosts: Vec<Host>,
    wire: BinaryHeap<InFlight>,
    seq: u64,
    seed: u64,
    steps: u64,
    buf: Vec<u8>,
    /// Every frame handed to a link, for captures: (time, from, bytes).
    pub capture: Option<Vec<(Instant, HostId, Vec<u8>)>>,
}

impl Sim {
    /// An empty network; `seed` drives every random choice.
    pub fn new(seed: u64) -> Sim {
        Sim {
            now: Instant::from_secs(1),
            hosts: Vec::new(),
            wire: BinaryHeap::new(),
            seq: 0,
            seed,
            steps: 0,
            buf: vec![0; 65_536 + 64],
            capture: None,
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn add_host(
        &mut self,
        config: StackConfig,
        registry: CcRegistry,
    ) -> Result<HostId, SimError> {
        let stack = Stack::new(config, registry).map_err(SimError::Stack)?;
        self.hosts.push(Host { stack, link: None });
        Ok(HostId(self.hosts.len() - 1))
    }

    /// A point-to-point link: `ab` impairs a→b, `ba` impairs b→a.
    pub fn connect(
        &mut self,
        a: HostId,
        b: HostId,
        ab: Impairment,
        ba: Impairment,
    ) -> Result<(), SimError> {
        ab.validate().map_err(SimError::BadLink)?;
        ba.validate().map_err(SimError::BadLink)?;
        let seed_ab =
            self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (a.0 as u64) << 32 ^ b.0 as u64;
        let seed_ba =
            self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (b.0 as u64) << 32 ^ a.0 as u64;
        self.hosts[a.0].link = Some((b, FaultModel::new(ab, seed_ab)));
        self.hosts[b.0].link = Some((a, FaultModel::new(ba, seed_ba)));
        Ok(())
    }

    pub fn stack(&mut self, h: HostId) -> &mut Stack {
        &mut self.hosts[h.0].stack
    }

    /// The fault model of `h`'s outgoing link.
    pub fn link(&self, h: HostId) -> Option<&FaultModel> {
        self.hosts[h.0].link.as_ref().map(|(_, m)| m)
    }

    /// Moves everything the stacks want to send onto the wire.
    fn transmit_all(&mut self) {
        for i in 0..self.hosts.len() {
            let now = self.now;
            let host = &mut self.hosts[i];
            while let Some(n) = host.stack.poll_transmit(now, &mut self.buf) {
                let frame = &self.buf[..n];
                if let Some(cap) = self.capture.as_mut() {
                    cap.push((now, HostId(i), frame.to_vec()));
                }
                if let Some((to, model)) = host.link.as_mut() {
                    for (at, bytes) in model.transmit(now, frame) {
                        self.seq += 1;
                        self.wire.push(Reverse((at, self.seq, to.0, bytes)));
                    }
                }
            }
        }
    }

    /// The next time anything happens.
    fn next_event(&mut self) -> Option<Instant> {
        let mut next = self.wire.peek().map(|Reverse((t, ..))| *t);
        for h in &mut self.hosts {
            if let Some(t) = h.stack.poll_timeout() {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        }
        next
    }

    /// Transmits, then advances to the next event (no later than `limit`)
    /// and processes everything due then. Returns false when nothing is
    /// left to happen before `limit`.
    pub fn step(&mut self, limit: Instant) -> bool {
        self.steps += 1;
        self.transmit_all();
        let Some(t) = self.next_event() else {
            return false;
        };
        if t > limit {
            self.now = self.now.max(limit);
            return false;
        }
        self.now = self.now.max(t);
        while let Some(Reverse((at, ..))) = self.wire.peek() {
            if *at > self.now {
                break;
            }
            let Some(Reverse((_, _, to, bytes))) = self.wire.pop() else {
                break;
            };
            self.hosts[to].stack.handle_frame(self.now, &bytes);
        }
        let now = self.now;
        for h in &mut self.hosts {
            if h.stack.poll_timeout().is_some_and(|t| t <= now) {
                h.stack.handle_timeout(now);
            }
        }
        self.transmit_all();
        true
    }

    /// Runs until `done` returns true (checked after every step), giving
    /// up after `max_steps` or at `deadline`.
    pub fn run_until(
        &mut self,
        deadline: Instant,
        max_steps: u64,
        mut done: impl FnMut(&mut Sim) -> bool,
    ) -> Result<(), SimError> {
        let start = self.steps;
        let mut idle = 0;
        loop {
            if done(self) {
                return Ok(());
            }
            // Nothing in flight and no timer armed twice in a row, with the
            // workload not done: nothing will ever happen again.
            if self.steps - start >= max_steps || self.now >= deadline || idle > 1 {
                return Err(SimError::Stalled {
                    steps: self.steps - start,
                    now: self.now,
                });
            }
            if self.step(deadline) {
                idle = 0;
            } else {
                idle += 1;
            }
        }
    }
}
