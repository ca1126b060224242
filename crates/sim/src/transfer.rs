//! The bulk-transfer workload between two hosts on a point-to-point link:
//! the simplest run, kept as a function for `daytona transfer` and tests.

use crate::net::{Captured, LogEntry, Sim, SimError};
use crate::stream::seeded_secret;
use crate::workload::{FlowSpec, Flows, RunOptions, Workload};
use daytona_core::cc::CcRegistry;
use daytona_core::observe::{Event, TcpInfo};
use daytona_core::stack::StackConfig;
use daytona_core::tcp::TcpConfig;
use daytona_core::time::Duration;
use daytona_link::Impairment;
use std::net::{Ipv4Addr, SocketAddrV4};

/// What to transfer, over what.
#[derive(Debug, Clone)]
pub struct TransferSpec {
    pub bytes: u64,
    pub seed: u64,
    pub mtu: usize,
    /// Sender → receiver impairments.
    pub forward: Impairment,
    /// Receiver → sender impairments.
    pub reverse: Impairment,
    /// Settings of the sender's connection.
    pub sender: TcpConfig,
    /// Settings of the receiver's connections.
    pub receiver: TcpConfig,
    /// Virtual-time budget.
    pub time_limit: Duration,
    /// Keep every event of both stacks in the report.
    pub keep_events: bool,
    /// Keep every frame entering either link (for pcap output).
    pub capture: bool,
}

impl Default for TransferSpec {
    fn default() -> Self {
        TransferSpec {
            bytes: 1 << 20,
            seed: 1,
            mtu: 1500,
            forward: Impairment::default(),
            reverse: Impairment::default(),
            sender: TcpConfig::default(),
            receiver: TcpConfig::default(),
            time_limit: Duration::from_secs(3600),
            keep_events: false,
            capture: false,
        }
    }
}

/// What happened.
#[derive(Debug, Clone)]
pub struct TransferReport {
    pub bytes: u64,
    /// Every received byte matched the stream.
    pub byte_exact: bool,
    /// Virtual time from connect to the receiver reading EOF.
    pub duration: Duration,
    pub retransmissions: u64,
    pub rtos: u64,
    pub fast_retransmits: u64,
    pub sender_info: TcpInfo,
    pub receiver_info: TcpInfo,
    pub events: Vec<Event>,
    pub frames: Vec<Captured>,
    pub steps: u64,
}

impl TransferReport {
    /// Goodput in bits per second.
    pub fn goodput_bps(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs == 0.0 {
            return 0.0;
        }
        self.bytes as f64 * 8.0 / secs
    }
}

const SENDER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const RECEIVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PORT: u16 = 5001;

/// Runs one transfer and reports on it.
pub fn transfer(spec: &TransferSpec, registry: &CcRegistry) -> Result<TransferReport, SimError> {
    let mut sim = Sim::new(spec.seed);
    sim.record_events(spec.keep_events);
    let host = |addr, tcp: &TcpConfig, n| {
        let mut c = StackConfig::ip(addr, 24);
        c.mtu = spec.mtu;
        c.tcp = tcp.clone();
        c.secret = seeded_secret(spec.seed, n);
        c
    };
    let a = sim.add_host(host(SENDER_IP, &spec.sender, 1), registry.clone())?;
    let b = sim.add_host(host(RECEIVER_IP, &spec.receiver, 2), registry.clone())?;
    let (ab, ba) = sim.connect(a, b, spec.forward.clone(), spec.reverse.clone())?;
    if spec.capture {
        sim.capture_link(ab);
        sim.capture_link(ba);
    }
    let flow = FlowSpec {
        name: "transfer".into(),
        client: a,
        server: b,
        server_addr: SocketAddrV4::new(RECEIVER_IP, PORT),
        start: Duration::ZERO,
        workload: Workload::Bulk { bytes: spec.bytes },
        tcp: spec.sender.clone(),
        read_interval: None,
    };
    let flows = Flows::new(&mut sim, vec![flow], spec.seed)?;
    let opts = RunOptions {
        time_limit: spec.time_limit,
        max_steps: 50_000_000,
        ..RunOptions::default()
    };
    let mut reports = flows.run(&mut sim, &opts, &mut |_| {})?;
    let r = reports.remove(0);
    let events = sim
        .take_log()
        .into_iter()
        .filter_map(|e| match e {
            LogEntry::Stack { event, .. } => Some(event),
            LogEntry::Link { .. } => None,
        })
        .collect();
    Ok(TransferReport {
        bytes: r.bytes,
        byte_exact: r.byte_exact,
        duration: r.completion.unwrap_or_default(),
        retransmissions: r.retransmissions,
        rtos: r.rtos,
        fast_retransmits: r.recoveries,
        sender_info: r.sender_info,
        receiver_info: r.receiver_info,
        events,
        frames: sim.take_capture(),
        steps: sim.steps(),
    })
}
