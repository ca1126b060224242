//! Workloads: flows between hosts of a [`Sim`], each a real TCP
//! connection moving seeded byte streams that the far end checks byte for
//! byte and by hash.
//!
//! - *Bulk*: the client sends N bytes and closes.
//! - *Request/response*: the client sends a request, the server answers
//!   with a response of the given size, `count` times.
//! - *On/off*: the client sends a burst, waits until it is acknowledged
//!   and an idle period has passed, `count` times.
//!
//! Every flow starts at its own (virtual) time. While flows run, the
//! sender's [`TcpInfo`] is sampled on a virtual-time grid.

use crate::net::{HostId, Sim, SimError};
use crate::stream::{mix, Stream, StreamHash};
use daytona_core::observe::{ConnId, Event, EventKind, TcpInfo};
use daytona_core::stack::{ConnHandle, ListenerHandle, Stack};
use daytona_core::tcp::{Shutdown, TcpConfig};
use daytona_core::time::{Duration, Instant};
use std::net::SocketAddrV4;

/// What a flow does.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    Bulk {
        bytes: u64,
    },
    RequestResponse {
        request: u64,
        response: u64,
        count: u32,
    },
    OnOff {
        /// Bytes per burst.
        bytes: u64,
        /// Idle time after a burst is acknowledged.
        off: Duration,
        count: u32,
    },
}

impl Workload {
    /// Bytes the flow moves, both directions.
    pub fn total_bytes(&self) -> u64 {
        match *self {
            Workload::Bulk { bytes } => bytes,
            Workload::RequestResponse {
                request,
                response,
                count,
            } => (request + response) * u64::from(count),
            Workload::OnOff { bytes, count, .. } => bytes * u64::from(count),
        }
    }

    /// True when the server sends most of the data.
    fn server_sends(&self) -> bool {
        matches!(self, Workload::RequestResponse { request, response, .. } if response > request)
    }

    pub fn describe(&self) -> String {
        match self {
            Workload::Bulk { bytes } => format!("bulk {bytes} B"),
            Workload::RequestResponse {
                request,
                response,
                count,
            } => format!("{count}x request {request} B / response {response} B"),
            Workload::OnOff { bytes, off, count } => {
                format!("{count}x on {bytes} B / off {} ms", off.as_millis())
            }
        }
    }
}

/// One flow of a run.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    pub name: String,
    pub client: HostId,
    pub server: HostId,
    /// The server's address and listening port (unique per flow).
    pub server_addr: SocketAddrV4,
    /// Start, relative to the beginning of the run.
    pub start: Duration,
    pub workload: Workload,
    /// The client connection's settings (its congestion controller too).
    pub tcp: TcpConfig,
    /// The receiving application reads only this often (a slow reader:
    /// its buffer fills and it advertises zero windows). `None`: reads
    /// whenever data arrives.
    pub read_interval: Option<Duration>,
}

/// One sample of the sender's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Since the start of the run.
    pub time: Duration,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub srtt: Duration,
    pub rttvar: Duration,
    pub bytes_in_flight: u32,
    /// Bytes per second.
    pub delivery_rate: Option<u64>,
    /// Bytes per second.
    pub pacing_rate: Option<u64>,
    pub bytes_acked: u64,
    pub total_retrans: u32,
}

/// A retransmission, for time-sequence graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmitMark {
    pub time: Duration,
    pub seq: u32,
    pub len: u32,
}

/// What happened to one flow.
#[derive(Debug, Clone)]
pub struct FlowReport {
    pub name: String,
    pub cc: String,
    pub workload: Workload,
    pub start: Duration,
    /// Bytes that arrived, both directions.
    pub bytes: u64,
    /// Every byte matched its stream and the hashes of both ends agree.
    pub byte_exact: bool,
    /// Hashes of what was written and what was read, per direction
    /// (client→server, server→client).
    pub hashes: [(u64, u64); 2],
    /// From start to the last byte read, if the flow finished.
    pub completion: Option<Duration>,
    pub retransmissions: u64,
    pub rtos: u64,
    pub recoveries: u64,
    /// Zero windows the data receiver advertised.
    pub zero_windows_sent: u64,
    /// The data sender's RTT samples: (time since the run's start, RTT).
    pub rtt_samples: Vec<(Duration, Duration)>,
    pub samples: Vec<Sample>,
    pub retransmits: Vec<RetransmitMark>,
    /// The data sender's address and port (to find its frames in a capture).
    pub sender: Option<SocketAddrV4>,
    pub sender_info: TcpInfo,
    /// The data receiver's state when the flow finished.
    pub receiver_info: TcpInfo,
}

impl FlowReport {
    /// Goodput over the flow's life, bits per second.
    pub fn goodput_bps(&self) -> f64 {
        match self.completion {
            Some(d) if !d.is_zero() => self.bytes as f64 * 8.0 / d.as_secs_f64(),
            _ => 0.0,
        }
    }

    /// The RTT sample at quantile `q` (0..=1), nearest rank.
    pub fn rtt_quantile(&self, q: f64) -> Option<Duration> {
        let mut v: Vec<Duration> = self.rtt_samples.iter().map(|&(_, r)| r).collect();
        if v.is_empty() {
            return None;
        }
        v.sort();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }
}

/// One direction of a flow's data.
#[derive(Debug)]
struct Pipe {
    tx: Stream,
    rx: Stream,
    /// Bytes the application wants written so far.
    goal: u64,
    written: u64,
    read: u64,
    pending: Vec<u8>,
    off: usize,
    exact: bool,
    tx_hash: StreamHash,
    rx_hash: StreamHash,
    /// The bytes the reader expects next.
    expected: Vec<u8>,
}

impl Pipe {
    fn new(seed: u64) -> Pipe {
        Pipe {
            tx: Stream::new(seed),
            rx: Stream::new(seed),
            goal: 0,
            written: 0,
            read: 0,
            pending: Vec::new(),
            off: 0,
            exact: true,
            tx_hash: StreamHash::default(),
            rx_hash: StreamHash::default(),
            expected: Vec::new(),
        }
    }

    /// Writes towards the goal until the send buffer is full.
    fn send(&mut self, stack: &mut Stack, now: Instant, h: ConnHandle) {
        while self.written < self.goal {
            if self.off == self.pending.len() {
                let n = (self.goal - self.written).min(65_536) as usize;
                self.pending.resize(n, 0);
                self.tx.fill(&mut self.pending);
                self.tx_hash.update(&self.pending);
                self.off = 0;
            }
            match stack.tcp_send(now, h, &self.pending[self.off..]) {
                Ok(n) if n > 0 => {
                    self.off += n;
                    self.written += n as u64;
                }
                _ => break,
            }
        }
    }

    /// Reads everything available and checks it; true at end of stream.
    fn recv(&mut self, stack: &mut Stack, now: Instant, h: ConnHandle, buf: &mut [u8]) -> bool {
        loop {
            match stack.tcp_recv(now, h, buf) {
                Ok(0) => return true,
                Ok(n) => {
                    self.expected.resize(n, 0);
                    self.rx.fill(&mut self.expected);
                    if buf[..n] != self.expected[..] {
                        self.exact = false;
                    }
                    self.rx_hash.update(&buf[..n]);
                    self.read += n as u64;
                }
                Err(_) => return false,
            }
        }
    }

    fn ok(&self) -> bool {
        self.exact && self.read == self.written && self.tx_hash.value() == self.rx_hash.value()
    }
}

/// A flow while it runs.
struct Flow {
    spec: FlowSpec,
    listener: ListenerHandle,
    client: Option<ConnHandle>,
    server: Option<ConnHandle>,
    client_id: Option<ConnId>,
    server_id: Option<ConnId>,
    up: Pipe,
    down: Pipe,
    /// Requests or bursts issued.
    round: u32,
    /// An on/off flow's next burst is due then.
    next_burst: Option<Instant>,
    /// A slow reader's next read.
    next_read: Instant,
    client_shut: bool,
    eof: bool,
    finished_at: Option<Instant>,
    report: FlowReport,
}

impl Flow {
    fn sender(&self) -> (HostId, Option<ConnHandle>, Option<ConnId>) {
        if self.spec.workload.server_sends() {
            (self.spec.server, self.server, self.server_id)
        } else {
            (self.spec.client, self.client, self.client_id)
        }
    }

    fn receiver(&self) -> (HostId, Option<ConnId>) {
        if self.spec.workload.server_sends() {
            (self.spec.client, self.client_id)
        } else {
            (self.spec.server, self.server_id)
        }
    }

    fn done(&self) -> bool {
        self.finished_at.is_some()
    }
}

/// How to run flows.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Virtual-time budget from the start of the run.
    pub time_limit: Duration,
    /// Sample every flow's sender this often (`None`: never).
    pub sample_interval: Option<Duration>,
    pub max_steps: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            time_limit: Duration::from_secs(3600),
            sample_interval: None,
            max_steps: 200_000_000,
        }
    }
}

/// Where a run stands, for progress reports.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub now: Duration,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// The flows of a run: set up with [`Flows::new`], then [`Flows::run`].
pub struct Flows {
    flows: Vec<Flow>,
    start: Instant,
    buf: Vec<u8>,
}

impl Flows {
    /// Opens each flow's listener; clients connect at their start times.
    pub fn new(sim: &mut Sim, specs: Vec<FlowSpec>, seed: u64) -> Result<Flows, SimError> {
        let start = sim.now();
        let mut flows = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let listener = sim
                .stack(spec.server)
                .tcp_listen(spec.server_addr, 16)
                .map_err(SimError::Stack)?;
            sim.schedule(start + spec.start);
            let i = i as u64;
            flows.push(Flow {
                listener,
                client: None,
                server: None,
                client_id: None,
                server_id: None,
                up: Pipe::new(mix(seed, i, 0)),
                down: Pipe::new(mix(seed, i, 1)),
                round: 0,
                next_burst: None,
                next_read: Instant::ZERO,
                client_shut: false,
                eof: false,
                finished_at: None,
                report: FlowReport {
                    name: spec.name.clone(),
                    cc: spec.tcp.congestion_control.clone(),
                    workload: spec.workload.clone(),
                    start: spec.start,
                    bytes: 0,
                    byte_exact: false,
                    hashes: [(0, 0); 2],
                    completion: None,
                    retransmissions: 0,
                    rtos: 0,
                    recoveries: 0,
                    zero_windows_sent: 0,
                    rtt_samples: Vec::new(),
                    samples: Vec::new(),
                    retransmits: Vec::new(),
                    sender: None,
                    sender_info: TcpInfo::default(),
                    receiver_info: TcpInfo::default(),
                },
                spec,
            });
        }
        Ok(Flows {
            flows,
            start,
            buf: vec![0; 65_536],
        })
    }

    fn bytes_total(&self) -> u64 {
        self.flows
            .iter()
            .map(|f| f.spec.workload.total_bytes())
            .sum()
    }

    fn bytes_done(&self) -> u64 {
        self.flows.iter().map(|f| f.up.read + f.down.read).sum()
    }

    /// Runs until every flow has finished, reporting progress every few
    /// thousand steps.
    pub fn run(
        mut self,
        sim: &mut Sim,
        opts: &RunOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<FlowReport>, SimError> {
        let deadline = self.start + opts.time_limit;
        let total = self.bytes_total();
        let mut next_sample = opts.sample_interval.map(|_| self.start);
        let start = self.start;
        let result = sim.run_until(deadline, opts.max_steps, |sim| {
            let now = sim.now();
            for f in &mut self.flows {
                drive(f, sim, now, start, &mut self.buf);
            }
            let flows = &mut self.flows;
            sim.drain_events(|host, e| attribute(flows, host, e, start));
            if let (Some(t), Some(iv)) = (next_sample, opts.sample_interval) {
                if now >= t {
                    for f in flows.iter_mut().filter(|f| !f.done()) {
                        sample(f, sim, now, start);
                    }
                    let next = t + iv.max(Duration::from_micros(1));
                    next_sample = Some(next.max(now));
                    if flows.iter().any(|f| !f.done()) {
                        sim.schedule(next);
                    }
                }
            }
            if sim.steps() % 4096 == 0 {
                progress(Progress {
                    now: now - start,
                    bytes_done: flows.iter().map(|f| f.up.read + f.down.read).sum(),
                    bytes_total: total,
                });
            }
            flows.iter().all(Flow::done)
        });
        progress(Progress {
            now: sim.now() - start,
            bytes_done: self.bytes_done(),
            bytes_total: total,
        });
        result?;
        Ok(self.flows.into_iter().map(|f| finish(f, start)).collect())
    }
}

/// Advances one flow's application logic at `now`.
fn drive(f: &mut Flow, sim: &mut Sim, now: Instant, start: Instant, buf: &mut [u8]) {
    if f.done() || now < start + f.spec.start {
        return;
    }
    let (client_host, server_host) = (f.spec.client, f.spec.server);
    if f.client.is_none() {
        let Ok(c) =
            sim.stack(client_host)
                .tcp_connect(now, f.spec.server_addr, Some(f.spec.tcp.clone()))
        else {
            return;
        };
        f.client = Some(c);
        f.client_id = sim.stack(client_host).tcp(c).ok().map(|c| c.id());
        match f.spec.workload {
            Workload::Bulk { bytes } => f.up.goal = bytes,
            Workload::RequestResponse { request, .. } | Workload::OnOff { bytes: request, .. } => {
                f.up.goal = request;
                f.round = 1;
            }
        }
    }
    let Some(c) = f.client else { return };
    if f.server.is_none() {
        f.server = sim.stack(server_host).tcp_accept(f.listener).ok();
    }
    // Client → server data, and the workload's next round.
    f.up.send(sim.stack(client_host), now, c);
    match f.spec.workload {
        Workload::Bulk { .. } => {}
        Workload::RequestResponse {
            request,
            response,
            count,
        } => {
            f.down.recv(sim.stack(client_host), now, c, buf);
            if f.down.read == u64::from(f.round) * response && f.round < count {
                f.round += 1;
                f.up.goal += request;
                f.up.send(sim.stack(client_host), now, c);
            }
            // The response to every complete request.
            let answered = f.up.read / request.max(1);
            f.down.goal = answered * response;
            if let Some(s) = f.server {
                f.down.send(sim.stack(server_host), now, s);
            }
        }
        Workload::OnOff { bytes, off, count } => {
            let acked = sim
                .stack(client_host)
                .tcp_info(now, c)
                .map_or(0, |i| i.bytes_acked);
            if f.up.written == f.up.goal && acked >= f.up.goal && f.round < count {
                match f.next_burst {
                    None => {
                        f.next_burst = Some(now + off);
                        sim.schedule(now + off);
                    }
                    Some(t) if now >= t => {
                        f.next_burst = None;
                        f.round += 1;
                        f.up.goal += bytes;
                        f.up.send(sim.stack(client_host), now, c);
                    }
                    Some(_) => {}
                }
            }
        }
    }
    let last_round = match f.spec.workload {
        Workload::Bulk { .. } => true,
        Workload::RequestResponse {
            response, count, ..
        } => f.round == count && f.down.read == u64::from(count) * response,
        Workload::OnOff { count, .. } => f.round == count,
    };
    if last_round
        && f.up.written == f.up.goal
        && !f.client_shut
        && sim
            .stack(client_host)
            .tcp_shutdown(now, c, Shutdown::Write)
            .is_ok()
    {
        f.client_shut = true;
    }
    // Server: read and check; the end of the client's stream ends the flow.
    let may_read = match f.spec.read_interval {
        Some(iv) if now >= f.next_read => {
            f.next_read = now + iv;
            sim.schedule(f.next_read);
            true
        }
        Some(_) => false,
        None => true,
    };
    if let (Some(s), true) = (f.server, may_read) {
        if f.up.recv(sim.stack(server_host), now, s, buf) && !f.eof {
            f.eof = true;
            f.finished_at = Some(now);
            let sender_is_server = f.spec.workload.server_sends();
            let (client_info, server_info) = (
                sim.stack(client_host).tcp_info(now, c).unwrap_or_default(),
                sim.stack(server_host).tcp_info(now, s).unwrap_or_default(),
            );
            (f.report.sender_info, f.report.receiver_info) = if sender_is_server {
                (server_info, client_info)
            } else {
                (client_info, server_info)
            };
            let _ = sim.stack(server_host).tcp_close(now, s);
            let _ = sim.stack(client_host).tcp_close(now, c);
        }
    }
}

/// Credits a stack event to its flow.
fn attribute(flows: &mut [Flow], host: HostId, e: &Event, start: Instant) {
    if let EventKind::ConnectionCreated {
        local,
        active: false,
        ..
    } = e.kind
    {
        if let Some(f) = flows
            .iter_mut()
            .find(|f| f.spec.server == host && f.spec.server_addr == local && f.server_id.is_none())
        {
            f.server_id = Some(e.conn);
        }
    }
    if let Some(f) = flows
        .iter_mut()
        .find(|f| f.receiver() == (host, Some(e.conn)))
    {
        if e.kind == EventKind::ZeroWindowSent {
            f.report.zero_windows_sent += 1;
        }
        return;
    }
    let Some(f) = flows.iter_mut().find(|f| {
        let (h, _, id) = f.sender();
        h == host && id == Some(e.conn)
    }) else {
        return;
    };
    let r = &mut f.report;
    match e.kind {
        EventKind::ConnectionCreated { local, .. } => r.sender = Some(local),
        EventKind::Retransmit { seq, len, .. } => {
            r.retransmissions += 1;
            r.retransmits.push(RetransmitMark {
                time: e.time.saturating_since(start),
                seq: seq.0,
                len,
            });
        }
        EventKind::RtoFired { .. } => r.rtos += 1,
        EventKind::RecoveryStart { .. } => r.recoveries += 1,
        EventKind::RttSample { rtt, .. } => {
            r.rtt_samples.push((e.time.saturating_since(start), rtt))
        }
        _ => {}
    }
}

fn sample(f: &mut Flow, sim: &mut Sim, now: Instant, start: Instant) {
    let (host, Some(h), _) = f.sender() else {
        return;
    };
    let stack = sim.stack(host);
    let Ok(i) = stack.tcp_info(now, h) else {
        return;
    };
    let in_flight = stack.tcp(h).map_or(0, |c| c.window().bytes_in_flight);
    f.report.samples.push(Sample {
        time: now - start,
        cwnd: i.snd_cwnd,
        ssthresh: i.snd_ssthresh,
        srtt: i.rtt,
        rttvar: i.rttvar,
        bytes_in_flight: in_flight,
        delivery_rate: i.delivery_rate,
        pacing_rate: i.pacing_rate,
        bytes_acked: i.bytes_acked,
        total_retrans: i.total_retrans,
    });
}

fn finish(f: Flow, start: Instant) -> FlowReport {
    let mut r = f.report;
    r.bytes = f.up.read + f.down.read;
    r.byte_exact = f.eof && f.up.ok() && f.down.ok();
    r.hashes = [
        (f.up.tx_hash.value(), f.up.rx_hash.value()),
        (f.down.tx_hash.value(), f.down.rx_hash.value()),
    ];
    r.completion = f
        .finished_at
        .map(|t| t.saturating_since(start + f.spec.start));
    r
}
