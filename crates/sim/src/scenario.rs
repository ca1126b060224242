//! Scenarios: a topology, its bottleneck, and the flows that share it —
//! built from code or read from a TOML file — run to a [`ScenarioReport`].
//!
//! Two topologies:
//!
//! ```text
//! p2p:       client ══ bottleneck ══ server      (every flow between them)
//!
//! dumbbell:  sender_i ── L ══ bottleneck ══ R ── receiver_i
//! ```
//!
//! In the dumbbell, each flow has its own pair of hosts; the bottleneck's
//! propagation delay gives the base RTT and a flow's `rtt` above it is
//! added on its sender's access link, so flows with different RTTs share
//! one queue.
//!
//! A scenario file (every field optional; units as on the command line):
//!
//! ```toml
//! seed = 1
//! topology = "dumbbell"      # or "p2p"
//! time_limit = "600s"
//! sample_interval = "10ms"
//! mtu = 1500
//!
//! [link]                     # the bottleneck, sender → receiver
//! rate = "100mbit"           # or trace = "cell.up" (mahimahi format)
//! rtt = "40ms"               # base round trip, split over both ways
//! queue = "1bdp"             # or "256KB", "100pkt"
//! aqm = "codel"              # or "droptail"
//! loss = "1%"
//! burst = { to_bad = "0.5%", to_good = "30%" }
//! jitter = "1ms"
//! reorder = "1%"
//! reorder_delay = "2ms"
//! duplicate = "0.1%"
//! corrupt = "0.1%"
//!
//! [reverse]                  # the ACK path; defaults to the link's rate,
//! loss = "0.5%"              # queue and delay without random impairments
//!
//! [[flow]]
//! cc = "newreno"
//! bytes = "20MB"             # bulk (the default workload)
//!
//! [[flow]]
//! cc = "reno"
//! start = "2s"
//! rtt = "80ms"
//! workload = "rr"            # request/response
//! request = "200B"
//! response = "50KB"
//! count = 20
//!
//! [[flow]]
//! workload = "onoff"
//! bytes = "500KB"
//! off = "300ms"
//! count = 4
//! buffer = "16KB"            # fixed socket buffers (autotuning off)
//! read_interval = "50ms"     # a slow reader: zero windows
//! ```

use crate::net::{Captured, HostId, LinkId, LogEntry, Sim, SimError};
use crate::stream::seeded_secret;
use crate::units::{parse_duration, parse_percent, parse_queue, parse_rate, parse_size, QueueSize};
use crate::workload::{FlowReport, FlowSpec, Flows, Progress, RunOptions, Workload};
use daytona_core::cc::CcRegistry;
use daytona_core::stack::StackConfig;
use daytona_core::tcp::TcpConfig;
use daytona_core::time::Duration;
use daytona_link::{Aqm, CoDelParams, FaultStats, GilbertElliott, Impairment, Trace};
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;

/// How hosts are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Topology {
    /// Two hosts on one link; every flow runs between them.
    PointToPoint,
    /// A sender and a receiver per flow, sharing one bottleneck.
    #[default]
    Dumbbell,
}

/// One flow of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowDef {
    /// Congestion controller, by registry name.
    pub cc: String,
    pub start: Duration,
    /// This flow's base RTT (dumbbell only; at least the link's).
    pub rtt: Option<Duration>,
    pub workload: Workload,
    /// Fixed send and receive buffers (autotuning off), bytes.
    pub buffer: Option<usize>,
    /// The receiving application reads only this often.
    pub read_interval: Option<Duration>,
}

impl Default for FlowDef {
    fn default() -> Self {
        FlowDef {
            cc: "newreno".into(),
            start: Duration::ZERO,
            rtt: None,
            workload: Workload::Bulk { bytes: 20_000_000 },
            buffer: None,
            read_interval: None,
        }
    }
}

/// A complete, validated description of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub seed: u64,
    pub topology: Topology,
    pub mtu: usize,
    /// Base round-trip propagation delay of the bottleneck path.
    pub rtt: Duration,
    /// The bottleneck, sender → receiver. Its `delay` is set from `rtt`.
    pub forward: Impairment,
    /// The bottleneck, receiver → sender.
    pub reverse: Impairment,
    pub flows: Vec<FlowDef>,
    pub time_limit: Duration,
    pub sample_interval: Option<Duration>,
    /// Keep every stack and link event.
    pub record_events: bool,
    /// Capture the bottleneck's frames (both directions).
    pub capture: bool,
}

impl Default for Scenario {
    fn default() -> Self {
        let link = Impairment {
            rate_bps: Some(100_000_000),
            queue_bytes: Some(500_000),
            ..Impairment::default()
        };
        Scenario {
            seed: 1,
            topology: Topology::Dumbbell,
            mtu: 1500,
            rtt: Duration::from_millis(40),
            forward: link.clone(),
            reverse: link,
            flows: vec![FlowDef::default()],
            time_limit: Duration::from_secs(600),
            sample_interval: Some(Duration::from_millis(10)),
            record_events: false,
            capture: false,
        }
    }
}

/// The bandwidth-delay product in bytes.
pub fn bdp_bytes(rate_bps: u64, rtt: Duration) -> u64 {
    (rate_bps as u128 * rtt.as_micros() / 8 / 1_000_000) as u64
}

/// What a scenario run produced.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub flows: Vec<FlowReport>,
    /// The bottleneck's counters, each direction.
    pub forward: FaultStats,
    pub reverse: FaultStats,
    /// The bottleneck's mean capacity, bits per second.
    pub capacity_bps: Option<u64>,
    /// From the first flow's start to the last flow's end.
    pub active: Duration,
    /// Virtual time at the end of the run, since its start.
    pub elapsed: Duration,
    pub steps: u64,
    /// Ordered event log (empty unless `record_events`).
    pub log: Vec<LogEntry>,
    /// Stack events lost to full event queues (0: the log is complete).
    pub events_dropped: u64,
    /// Bottleneck frames (empty unless `capture`).
    pub capture: Vec<Captured>,
    /// The bottleneck links, forward and reverse.
    pub bottleneck: (LinkId, LinkId),
    /// Names of the hosts and links, for logs.
    pub host_names: Vec<String>,
    pub link_names: Vec<String>,
}

impl ScenarioReport {
    /// Jain's fairness index over the flows' goodputs: 1 when equal,
    /// 1/n when one flow has everything.
    pub fn jain_index(&self) -> Option<f64> {
        jain(
            &self
                .flows
                .iter()
                .map(|f| f.goodput_bps())
                .collect::<Vec<_>>(),
        )
    }

    /// Share of the bottleneck's capacity used while flows were active
    /// (frames as sent, headers included).
    pub fn utilisation(&self) -> Option<f64> {
        let cap = self.capacity_bps? as f64;
        let secs = self.active.as_secs_f64();
        (secs > 0.0).then(|| self.forward.bytes_out as f64 * 8.0 / (cap * secs))
    }

    /// Every flow finished and was byte-exact.
    pub fn all_exact(&self) -> bool {
        self.flows.iter().all(|f| f.byte_exact)
    }
}

/// Jain's fairness index of `x`, `(Σx)² / (n·Σx²)`.
pub fn jain(x: &[f64]) -> Option<f64> {
    let sum: f64 = x.iter().sum();
    let sq: f64 = x.iter().map(|v| v * v).sum();
    (!x.is_empty() && sq > 0.0).then(|| sum * sum / (x.len() as f64 * sq))
}

impl Scenario {
    /// Checks the scenario against the registry and its own limits; the
    /// error names the problem.
    pub fn validate(&self, registry: &CcRegistry) -> Result<(), SimError> {
        let bad = |s: String| Err(SimError::BadScenario(s));
        if self.flows.is_empty() {
            return bad("no flows".into());
        }
        if self.flows.len() > 250 {
            return bad(format!("{} flows (at most 250)", self.flows.len()));
        }
        if !(576..=65_535).contains(&self.mtu) {
            return bad(format!("MTU {} is not within 576..=65535", self.mtu));
        }
        for (name, l) in [("link", &self.forward), ("reverse", &self.reverse)] {
            l.validate()
                .map_err(|e| SimError::BadLink(format!("{name}: {e}")))?;
        }
        for (i, f) in self.flows.iter().enumerate() {
            if !registry.contains(&f.cc) {
                return bad(format!(
                    "flow {}: unknown congestion controller {:?} (known: {})",
                    i + 1,
                    f.cc,
                    registry.names().join(", ")
                ));
            }
            match (self.topology, f.rtt) {
                (Topology::PointToPoint, Some(_)) => {
                    return bad(format!(
                        "flow {}: a per-flow rtt needs the dumbbell topology",
                        i + 1
                    ))
                }
                (_, Some(r)) if r < self.rtt => {
                    return bad(format!(
                        "flow {}: rtt {} ms is below the link's {} ms",
                        i + 1,
                        r.as_millis(),
                        self.rtt.as_millis()
                    ))
                }
                _ => {}
            }
            let zero = match f.workload {
                Workload::Bulk { bytes } => bytes == 0,
                Workload::RequestResponse {
                    request,
                    response,
                    count,
                } => request == 0 || response == 0 || count == 0,
                Workload::OnOff { bytes, count, .. } => bytes == 0 || count == 0,
            };
            if zero {
                return bad(format!("flow {}: the workload moves no data", i + 1));
            }
            if f.buffer == Some(0) {
                return bad(format!("flow {}: buffer must be positive", i + 1));
            }
        }
        Ok(())
    }

    /// Builds the network and runs every flow to its end.
    pub fn run(
        &self,
        registry: &CcRegistry,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ScenarioReport, SimError> {
        self.validate(registry)?;
        let mut sim = Sim::new(self.seed);
        sim.record_events(self.record_events);
        let half = self.rtt / 2;
        let forward = Impairment {
            delay: half,
            ..self.forward.clone()
        };
        let reverse = Impairment {
            delay: self.rtt - half,
            ..self.reverse.clone()
        };
        let mut host_names = Vec::new();
        let routers = (self.topology == Topology::Dumbbell).then(|| {
            host_names.extend(["left".to_string(), "right".to_string()]);
            (sim.add_router("left"), sim.add_router("right"))
        });
        let mut add_host = |sim: &mut Sim, name: String, addr: Ipv4Addr, tcp: &TcpConfig| {
            let mut c = StackConfig::ip(addr, 16);
            c.mtu = self.mtu;
            c.tcp = tcp.clone();
            c.secret = seeded_secret(self.seed, host_names.len() as u64 + 1);
            host_names.push(name);
            sim.add_host(c, registry.clone())
        };
        let tcp_of = |f: &FlowDef| {
            let mut t = TcpConfig {
                congestion_control: f.cc.clone(),
                ..TcpConfig::default()
            };
            if let Some(b) = f.buffer {
                t.send_buffer = b;
                t.recv_buffer = b;
                t.send_buffer_max = None;
                t.recv_buffer_max = None;
            }
            t
        };
        let mut specs = Vec::new();
        let bottleneck;
        match routers {
            None => {
                let (ca, sa) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
                // The server's stack settings: its listeners' connections
                // take the first flow's buffers.
                let server_tcp = tcp_of(&self.flows[0]);
                let c = add_host(&mut sim, "client".into(), ca, &TcpConfig::default())?;
                let s = add_host(&mut sim, "server".into(), sa, &server_tcp)?;
                bottleneck = sim.connect(c, s, forward, reverse)?;
                for (i, f) in self.flows.iter().enumerate() {
                    specs.push(flow_spec(i, f, c, s, sa, tcp_of(f)));
                }
            }
            Some((l, r)) => {
                let fwd = sim.add_link(l, r, forward, "bottleneck")?;
                let rev = sim.add_link(r, l, reverse, "bottleneck-reverse")?;
                bottleneck = (fwd, rev);
                for (i, f) in self.flows.iter().enumerate() {
                    let n = i as u8 + 1;
                    let (ca, sa) = (Ipv4Addr::new(198, 18, 1, n), Ipv4Addr::new(198, 18, 2, n));
                    let tcp = tcp_of(f);
                    let c = add_host(&mut sim, format!("sender{n}"), ca, &TcpConfig::default())?;
                    let s = add_host(&mut sim, format!("receiver{n}"), sa, &tcp)?;
                    // The flow's extra RTT on its sender's access link,
                    // half each way.
                    let extra = f.rtt.map_or(Duration::ZERO, |r| r - self.rtt);
                    let access = |d| Impairment {
                        delay: d,
                        ..Impairment::default()
                    };
                    sim.add_link(c, l, access(extra / 2), &format!("access{n}"))?;
                    sim.add_link(
                        l,
                        c,
                        access(extra - extra / 2),
                        &format!("access{n}-reverse"),
                    )?;
                    sim.add_link(r, s, access(Duration::ZERO), &format!("egress{n}"))?;
                    sim.add_link(s, r, access(Duration::ZERO), &format!("egress{n}-reverse"))?;
                    specs.push(flow_spec(i, f, c, s, sa, tcp));
                }
            }
        }
        if self.capture {
            sim.capture_link(bottleneck.0);
            sim.capture_link(bottleneck.1);
        }
        let start = sim.now();
        let flows = Flows::new(&mut sim, specs, self.seed)?;
        let opts = RunOptions {
            time_limit: self.time_limit,
            sample_interval: self.sample_interval,
            ..RunOptions::default()
        };
        let flows = flows.run(&mut sim, &opts, progress)?;
        let first = flows.iter().map(|f| f.start).min().unwrap_or_default();
        let last = flows
            .iter()
            .filter_map(|f| f.completion.map(|c| f.start + c))
            .max()
            .unwrap_or_default();
        let link_names = sim.link_names();
        Ok(ScenarioReport {
            forward: sim.link(bottleneck.0).stats.clone(),
            reverse: sim.link(bottleneck.1).stats.clone(),
            capacity_bps: self.forward.capacity_bps(),
            active: last.saturating_sub(first),
            elapsed: sim.now() - start,
            steps: sim.steps(),
            log: sim.take_log(),
            events_dropped: sim.events_dropped(),
            capture: sim.take_capture(),
            bottleneck,
            host_names,
            link_names,
            flows,
        })
    }
}

fn flow_spec(
    i: usize,
    f: &FlowDef,
    client: HostId,
    server: HostId,
    server_ip: Ipv4Addr,
    tcp: TcpConfig,
) -> FlowSpec {
    FlowSpec {
        name: format!("flow{}", i + 1),
        client,
        server,
        server_addr: SocketAddrV4::new(server_ip, 5001 + i as u16),
        start: f.start,
        workload: f.workload.clone(),
        tcp,
        read_interval: f.read_interval,
    }
}

// ---------------------------------------------------------------- TOML

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    seed: Option<u64>,
    topology: Option<String>,
    time_limit: Option<String>,
    sample_interval: Option<String>,
    mtu: Option<usize>,
    link: Option<LinkFile>,
    reverse: Option<LinkFile>,
    #[serde(default)]
    flow: Vec<FlowFile>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkFile {
    rate: Option<String>,
    trace: Option<String>,
    rtt: Option<String>,
    queue: Option<String>,
    aqm: Option<String>,
    codel_target: Option<String>,
    codel_interval: Option<String>,
    loss: Option<String>,
    burst: Option<BurstFile>,
    jitter: Option<String>,
    reorder: Option<String>,
    reorder_delay: Option<String>,
    duplicate: Option<String>,
    corrupt: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BurstFile {
    to_bad: String,
    to_good: String,
    loss_good: Option<String>,
    loss_bad: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowFile {
    cc: Option<String>,
    start: Option<String>,
    rtt: Option<String>,
    workload: Option<String>,
    bytes: Option<String>,
    request: Option<String>,
    response: Option<String>,
    count: Option<u32>,
    off: Option<String>,
    buffer: Option<String>,
    read_interval: Option<String>,
}

/// Parses an optional field with `f`, naming the field in the error.
fn field<T>(
    name: &str,
    v: &Option<String>,
    f: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    v.as_deref()
        .map(|s| f(s).map_err(|e| format!("{name}: {e}")))
        .transpose()
}

/// The parts of a link section, resolved against `base` (the defaults).
fn link_from_file(
    l: &LinkFile,
    base: &Impairment,
    rtt: Duration,
    mtu: usize,
    dir: &Path,
) -> Result<Impairment, String> {
    let mut out = base.clone();
    if let Some(r) = field("rate", &l.rate, parse_rate)? {
        out.rate_bps = Some(r);
        out.trace = None;
    }
    if let Some(t) = &l.trace {
        let path = dir.join(t);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("trace {}: {e}", path.display()))?;
        let trace = Trace::parse(&text).map_err(|e| format!("trace {}: {e}", path.display()))?;
        out.trace = Some(Arc::new(trace));
        out.rate_bps = None;
    }
    if let Some(q) = field("queue", &l.queue, parse_queue)? {
        let cap = out.capacity_bps().unwrap_or(0);
        (out.queue_bytes, out.queue_packets) = q.resolve(bdp_bytes(cap, rtt), mtu);
    }
    match l.aqm.as_deref() {
        None => {}
        Some("droptail" | "drop-tail" | "fifo") => out.aqm = Aqm::DropTail,
        Some("codel") => {
            let mut p = CoDelParams::default();
            if let Some(t) = field("codel_target", &l.codel_target, parse_duration)? {
                p.target = t;
            }
            if let Some(i) = field("codel_interval", &l.codel_interval, parse_duration)? {
                p.interval = i;
            }
            out.aqm = Aqm::CoDel(p);
        }
        Some(other) => return Err(format!("aqm: unknown {other:?} (use droptail or codel)")),
    }
    if let Some(p) = field("loss", &l.loss, parse_percent)? {
        out.loss = p;
    }
    if let Some(b) = &l.burst {
        let p = |name, v: &str| parse_percent(v).map_err(|e| format!("burst.{name}: {e}"));
        out.burst = Some(GilbertElliott {
            to_bad: p("to_bad", &b.to_bad)?,
            to_good: p("to_good", &b.to_good)?,
            loss_good: b
                .loss_good
                .as_deref()
                .map_or(Ok(0.0), |v| p("loss_good", v))?,
            loss_bad: b
                .loss_bad
                .as_deref()
                .map_or(Ok(1.0), |v| p("loss_bad", v))?,
        });
    }
    if let Some(j) = field("jitter", &l.jitter, parse_duration)? {
        out.jitter = j;
    }
    if let Some(p) = field("reorder", &l.reorder, parse_percent)? {
        out.reorder = p;
    }
    if let Some(d) = field("reorder_delay", &l.reorder_delay, parse_duration)? {
        out.reorder_delay = d;
    }
    if let Some(p) = field("duplicate", &l.duplicate, parse_percent)? {
        out.duplicate = p;
    }
    if let Some(p) = field("corrupt", &l.corrupt, parse_percent)? {
        out.corrupt = p;
    }
    Ok(out)
}

fn flow_from_file(i: usize, f: &FlowFile) -> Result<FlowDef, String> {
    let n = i + 1;
    let size = |name: &str, v: &Option<String>| field(&format!("flow {n}: {name}"), v, parse_size);
    let dur =
        |name: &str, v: &Option<String>| field(&format!("flow {n}: {name}"), v, parse_duration);
    let count = f.count.unwrap_or(1);
    let workload = match f.workload.as_deref().unwrap_or("bulk") {
        "bulk" => Workload::Bulk {
            bytes: size("bytes", &f.bytes)?.unwrap_or(20_000_000),
        },
        "rr" | "request-response" => Workload::RequestResponse {
            request: size("request", &f.request)?.unwrap_or(100),
            response: size("response", &f.response)?.unwrap_or(10_000),
            count,
        },
        "onoff" | "on-off" => Workload::OnOff {
            bytes: size("bytes", &f.bytes)?.unwrap_or(1_000_000),
            off: dur("off", &f.off)?.unwrap_or(Duration::from_millis(500)),
            count,
        },
        other => {
            return Err(format!(
                "flow {n}: unknown workload {other:?} (use bulk, rr or onoff)"
            ))
        }
    };
    Ok(FlowDef {
        cc: f.cc.clone().unwrap_or_else(|| "newreno".into()),
        start: dur("start", &f.start)?.unwrap_or(Duration::ZERO),
        rtt: dur("rtt", &f.rtt)?,
        workload,
        buffer: size("buffer", &f.buffer)?.map(|b| b as usize),
        read_interval: dur("read_interval", &f.read_interval)?,
    })
}

impl Scenario {
    /// Reads a scenario from TOML text; `dir` resolves relative trace
    /// paths. Fields left out take the defaults of [`Scenario::default`].
    pub fn from_toml(text: &str, dir: &Path) -> Result<Scenario, SimError> {
        let file: File = toml::from_str(text).map_err(|e| {
            // One line: toml's message spans several with a source excerpt.
            let msg = e.message().to_string();
            let at = e
                .span()
                .map(|sp| {
                    let upto = &text[..sp.start.min(text.len())];
                    let line = upto.matches('\n').count() + 1;
                    let src = text.lines().nth(line - 1).unwrap_or_default().trim();
                    format!(" (line {line}: {src})")
                })
                .unwrap_or_default();
            SimError::BadScenario(format!("{msg}{at}"))
        })?;
        Self::from_file(file, dir).map_err(SimError::BadScenario)
    }

    fn from_file(file: File, dir: &Path) -> Result<Scenario, String> {
        let mut s = Scenario::default();
        if let Some(seed) = file.seed {
            s.seed = seed;
        }
        match file.topology.as_deref() {
            None | Some("dumbbell") => s.topology = Topology::Dumbbell,
            Some("p2p" | "point-to-point") => s.topology = Topology::PointToPoint,
            Some(other) => {
                return Err(format!("topology: unknown {other:?} (use p2p or dumbbell)"))
            }
        }
        if let Some(t) = field("time_limit", &file.time_limit, parse_duration)? {
            s.time_limit = t;
        }
        if let Some(t) = field("sample_interval", &file.sample_interval, parse_duration)? {
            s.sample_interval = (!t.is_zero()).then_some(t);
        }
        if let Some(m) = file.mtu {
            s.mtu = m;
        }
        let link = file.link.unwrap_or_default();
        if let Some(r) = field("link.rtt", &link.rtt, parse_duration)? {
            s.rtt = r;
        }
        if file.reverse.as_ref().is_some_and(|r| r.rtt.is_some()) {
            return Err("reverse: rtt is set on [link] for both directions".into());
        }
        // Default queue: one BDP.
        let base = Impairment {
            queue_bytes: Some(bdp_bytes(100_000_000, s.rtt) as usize),
            ..s.forward.clone()
        };
        let base = link_from_file(
            &LinkFile {
                queue: link.queue.clone().or(Some("1bdp".into())),
                ..link.clone()
            },
            &base,
            s.rtt,
            s.mtu,
            dir,
        )
        .map_err(|e| format!("link: {e}"))?;
        s.forward = base.clone();
        // The return path: the same capacity, queue and AQM, no random
        // impairments unless [reverse] sets them.
        let plain = Impairment {
            rate_bps: base.rate_bps,
            trace: base.trace.clone(),
            queue_bytes: base.queue_bytes,
            queue_packets: base.queue_packets,
            aqm: base.aqm,
            ..Impairment::default()
        };
        s.reverse = match &file.reverse {
            Some(r) => {
                link_from_file(r, &plain, s.rtt, s.mtu, dir).map_err(|e| format!("reverse: {e}"))?
            }
            None => plain,
        };
        if !file.flow.is_empty() {
            s.flows = file
                .flow
                .iter()
                .enumerate()
                .map(|(i, f)| flow_from_file(i, f))
                .collect::<Result<_, _>>()?;
        }
        Ok(s)
    }

    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SimError::BadScenario(format!("{}: {e}", path.display())))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, dir)
    }
}

/// A queue size resolved against a rate and RTT (for command lines).
pub fn queue_limits(
    q: QueueSize,
    rate_bps: u64,
    rtt: Duration,
    mtu: usize,
) -> (Option<usize>, Option<usize>) {
    q.resolve(bdp_bytes(rate_bps, rtt), mtu)
}
