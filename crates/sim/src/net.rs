//! Nodes, links and the event loop: the discrete-event core.
//!
//! A [`Sim`] holds *hosts* (each a real Daytona [`Stack`] on a bare-IP
//! medium), *routers* (forward by destination address, no stack) and
//! one-way *links* between nodes, each with its own seeded
//! [`FaultModel`]. Time is virtual: the loop jumps to the earliest of the
//! links' next deliveries, the stacks' timers and scheduled wake-ups, so a
//! minute of a 100 ms path costs only the work of its packets.

use daytona_core::cc::CcRegistry;
use daytona_core::observe::Event;
use daytona_core::stack::{Stack, StackConfig};
use daytona_core::time::Instant;
use daytona_core::Error;
use daytona_link::{FaultModel, Impairment, LinkEvent};
use daytona_wire::Ipv4Packet;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;

/// Index of a node (host or router) in a [`Sim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(pub usize);

/// Index of a one-way link in a [`Sim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub usize);

/// Why a simulation could not go on.
#[derive(Debug, Clone, PartialEq)]
pub enum SimError {
    /// A stack refused its configuration.
    Stack(Error),
    /// An impairment is out of range.
    BadLink(String),
    /// A scenario is malformed.
    BadScenario(String),
    /// The run did not finish within its step or time budget.
    Stalled { steps: u64, now: Instant },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Stack(e) => write!(f, "stack configuration rejected: {e}"),
            SimError::BadLink(e) => write!(f, "bad link parameters: {e}"),
            SimError::BadScenario(e) => write!(f, "bad scenario: {e}"),
            SimError::Stalled { steps, now } => {
                write!(
                    f,
                    "the run did not finish: stopped after {steps} steps at virtual time {now} \
                     (time limit reached, or nothing left that could happen)"
                )
            }
        }
    }
}

impl std::error::Error for SimError {}

enum Node {
    Host(Box<Stack>),
    Router { name: String },
}

struct Link {
    from: HostId,
    to: HostId,
    model: FaultModel,
    name: String,
    capture: bool,
}

/// A frame seen entering a captured link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub time: Instant,
    pub link: LinkId,
    pub frame: Vec<u8>,
}

/// One line of the run's event log: a stack's event or a link's.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEntry {
    Stack { host: HostId, event: Event },
    Link { link: LinkId, event: LinkEvent },
}

/// Counters of the network itself (not the stacks').
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames a router dropped: bad IP header (corruption) or no route.
    pub router_drops: u64,
    /// Frames a host sent to an address with no route.
    pub unroutable: u64,
}

/// The simulated network.
pub struct Sim {
    now: Instant,
    nodes: Vec<Node>,
    addrs: Vec<Option<Ipv4Addr>>,
    links: Vec<Link>,
    /// Per node: destination address → outgoing link.
    routes: Vec<BTreeMap<Ipv4Addr, LinkId>>,
    routes_dirty: bool,
    wakeups: BinaryHeap<Reverse<Instant>>,
    seed: u64,
    steps: u64,
    buf: Vec<u8>,
    /// Frames delivered by links this step, waiting to be handled.
    arrivals: VecDeque<(HostId, Vec<u8>)>,
    log: Option<Vec<LogEntry>>,
    capture: Vec<Captured>,
    pub stats: NetStats,
}

impl Sim {
    /// An empty network; `seed` drives every random choice.
    pub fn new(seed: u64) -> Sim {
        Sim {
            now: Instant::from_secs(1),
            nodes: Vec::new(),
            addrs: Vec::new(),
            links: Vec::new(),
            routes: Vec::new(),
            routes_dirty: false,
            wakeups: BinaryHeap::new(),
            seed,
            steps: 0,
            buf: vec![0; 65_536 + 64],
            arrivals: VecDeque::new(),
            log: None,
            capture: Vec::new(),
            stats: NetStats::default(),
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Keeps every stack and link event in an ordered log. Turn it on
    /// before the run starts; stacks' events are otherwise left for the
    /// caller to poll.
    pub fn record_events(&mut self, on: bool) {
        self.log = on.then(Vec::new);
        for l in &mut self.links {
            l.model.record_events(on);
        }
    }

    /// Takes the event log gathered so far.
    pub fn take_log(&mut self) -> Vec<LogEntry> {
        self.collect_link_events();
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Records every frame entering `link`.
    pub fn capture_link(&mut self, link: LinkId) {
        self.links[link.0].capture = true;
    }

    /// Takes the frames captured so far.
    pub fn take_capture(&mut self) -> Vec<Captured> {
        std::mem::take(&mut self.capture)
    }

    /// Adds a host with its own stack.
    pub fn add_host(
        &mut self,
        config: StackConfig,
        registry: CcRegistry,
    ) -> Result<HostId, SimError> {
        let addr = config.addr;
        let stack = Stack::new(config, registry).map_err(SimError::Stack)?;
        self.nodes.push(Node::Host(Box::new(stack)));
        self.addrs.push(Some(addr));
        self.routes.push(BTreeMap::new());
        self.routes_dirty = true;
        Ok(HostId(self.nodes.len() - 1))
    }

    /// Adds a router: it forwards frames by destination address along the
    /// shortest path (in hops).
    pub fn add_router(&mut self, name: &str) -> HostId {
        self.nodes.push(Node::Router {
            name: name.to_string(),
        });
        self.addrs.push(None);
        self.routes.push(BTreeMap::new());
        HostId(self.nodes.len() - 1)
    }

    /// A one-way link from `from` to `to`.
    pub fn add_link(
        &mut self,
        from: HostId,
        to: HostId,
        params: Impairment,
        name: &str,
    ) -> Result<LinkId, SimError> {
        params
            .validate()
            .map_err(|e| SimError::BadLink(format!("{name}: {e}")))?;
        let id = self.links.len();
        // Each link draws from its own stream: adding a link elsewhere does
        // not change what happens on this one.
        let seed = self
            .seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add((from.0 as u64) << 32 ^ to.0 as u64)
            .rotate_left(17)
            ^ id as u64;
        let mut model = FaultModel::new(params, seed);
        model.record_events(self.log.is_some());
        self.links.push(Link {
            from,
            to,
            model,
            name: name.to_string(),
            capture: false,
        });
        self.routes_dirty = true;
        Ok(LinkId(id))
    }

    /// A point-to-point link pair: `ab` impairs a→b, `ba` impairs b→a.
    pub fn connect(
        &mut self,
        a: HostId,
        b: HostId,
        ab: Impairment,
        ba: Impairment,
    ) -> Result<(LinkId, LinkId), SimError> {
        let x = self.add_link(a, b, ab, &format!("{}->{}", a.0, b.0))?;
        let y = self.add_link(b, a, ba, &format!("{}->{}", b.0, a.0))?;
        Ok((x, y))
    }

    /// The stack of host `h`.
    ///
    /// # Panics
    /// If `h` is a router: a bug in the caller's topology code.
    pub fn stack(&mut self, h: HostId) -> &mut Stack {
        match &mut self.nodes[h.0] {
            Node::Host(s) => s,
            Node::Router { name } => panic!("node {} ({name}) is a router", h.0),
        }
    }

    /// The fault model (and its counters) of a link.
    pub fn link(&self, l: LinkId) -> &FaultModel {
        &self.links[l.0].model
    }

    /// Events the stacks dropped because their queues overflowed between
    /// two drains (0 means the log is complete).
    pub fn events_dropped(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| match n {
                Node::Host(s) => s.counters().events_dropped,
                Node::Router { .. } => 0,
            })
            .sum()
    }

    /// Every link's name, by [`LinkId`].
    pub fn link_names(&self) -> Vec<String> {
        self.links.iter().map(|l| l.name.clone()).collect()
    }

    pub fn link_name(&self, l: LinkId) -> &str {
        &self.links[l.0].name
    }

    /// Runs the event loop to wake at `t` even if nothing else happens then.
    pub fn schedule(&mut self, t: Instant) {
        if t >= self.now {
            self.wakeups.push(Reverse(t));
        }
    }

    /// Breadth-first shortest paths from every node to every host address,
    /// ties broken by link order, so routes are deterministic.
    fn compute_routes(&mut self) {
        self.routes_dirty = false;
        let n = self.nodes.len();
        for (dst, addr) in self.addrs.clone().into_iter().enumerate() {
            let Some(addr) = addr else { continue };
            // Walk backwards from the destination over incoming links.
            let mut dist = vec![usize::MAX; n];
            dist[dst] = 0;
            let mut queue = VecDeque::from([dst]);
            while let Some(v) = queue.pop_front() {
                for (i, l) in self.links.iter().enumerate() {
                    if l.to.0 == v && dist[l.from.0] == usize::MAX {
                        dist[l.from.0] = dist[v] + 1;
                        self.routes[l.from.0].insert(addr, LinkId(i));
                        queue.push_back(l.from.0);
                    }
                }
            }
        }
    }

    /// Hands a frame from node `from` to the link towards its destination.
    fn forward(&mut self, from: HostId, frame: &[u8], is_router: bool) {
        let dst = match Ipv4Packet::new_checked(frame) {
            // A router checks the header checksum (RFC 1812 §5.2.2); a
            // corrupted header is dropped here, not misrouted.
            Ok(p) if !is_router || p.verify_checksum() => p.dst_addr(),
            _ => {
                self.stats.router_drops += 1;
                return;
            }
        };
        let Some(&link) = self.routes[from.0].get(&dst) else {
            if is_router {
                self.stats.router_drops += 1;
            } else {
                self.stats.unroutable += 1;
            }
            return;
        };
        let now = self.now;
        let l = &mut self.links[link.0];
        if l.capture {
            self.capture.push(Captured {
                time: now,
                link,
                frame: frame.to_vec(),
            });
        }
        l.model.send(now, frame);
    }

    /// Moves everything the stacks want to send onto their links.
    fn transmit_all(&mut self) {
        if self.routes_dirty {
            self.compute_routes();
        }
        let mut buf = std::mem::take(&mut self.buf);
        for i in 0..self.nodes.len() {
            let now = self.now;
            while let Node::Host(stack) = &mut self.nodes[i] {
                let Some(n) = stack.poll_transmit(now, &mut buf) else {
                    break;
                };
                self.forward(HostId(i), &buf[..n], false);
            }
        }
        self.buf = buf;
    }

    /// The next time anything happens.
    pub fn next_event(&mut self) -> Option<Instant> {
        let mut next = self.wakeups.peek().map(|Reverse(t)| *t);
        let mut earliest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for l in &self.links {
            if let Some(t) = l.model.poll_at() {
                earliest(t);
            }
        }
        for n in &mut self.nodes {
            if let Node::Host(s) = n {
                if let Some(t) = s.poll_timeout() {
                    earliest(t);
                }
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
        let now = self.now;
        while self.wakeups.peek().is_some_and(|Reverse(w)| *w <= now) {
            self.wakeups.pop();
        }
        // Deliver what the links have due, in link order; routers forward
        // at once (their own links may then deliver within this step when
        // they add no delay).
        loop {
            for l in &mut self.links {
                while let Some(f) = l.model.deliver(now) {
                    self.arrivals.push_back((l.to, f));
                }
            }
            if self.arrivals.is_empty() {
                break;
            }
            while let Some((to, frame)) = self.arrivals.pop_front() {
                match &mut self.nodes[to.0] {
                    Node::Host(s) => s.handle_frame(now, &frame),
                    Node::Router { .. } => self.forward(to, &frame, true),
                }
            }
        }
        for n in &mut self.nodes {
            if let Node::Host(s) = n {
                if s.poll_timeout().is_some_and(|t| t <= now) {
                    s.handle_timeout(now);
                }
            }
        }
        self.transmit_all();
        true
    }

    /// Moves the stacks' pending events into the log (when recording) and
    /// hands each to `f`.
    pub fn drain_events(&mut self, mut f: impl FnMut(HostId, &Event)) {
        self.collect_link_events();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            let Node::Host(s) = n else { continue };
            while let Some(e) = s.poll_event() {
                f(HostId(i), &e);
                if let Some(log) = self.log.as_mut() {
                    log.push(LogEntry::Stack {
                        host: HostId(i),
                        event: e,
                    });
                }
            }
        }
    }

    fn collect_link_events(&mut self) {
        let Some(log) = self.log.as_mut() else { return };
        for (i, l) in self.links.iter_mut().enumerate() {
            for event in l.model.drain_events() {
                log.push(LogEntry::Link {
                    link: LinkId(i),
                    event,
                });
            }
        }
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
