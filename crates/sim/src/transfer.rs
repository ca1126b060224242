//! The bulk-transfer workload: host A connects to host B and sends N bytes
//! of a seeded pseudo-random stream; B checks every byte as it arrives.

use crate::net::{HostId, Sim, SimError};
use daytona_core::cc::CcRegistry;
use daytona_core::observe::{Event, EventKind, TcpInfo};
use daytona_core::stack::{ConnHandle, StackConfig};
use daytona_core::tcp::{Shutdown, TcpConfig};
use daytona_core::time::{Duration, Instant};
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
    /// Keep every frame in the report (for pcap output).
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
    pub frames: Vec<(Instant, HostId, Vec<u8>)>,
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

/// A cheap seeded byte stream (xorshift64*), reproducible on both ends.
#[derive(Debug, Clone)]
struct Stream {
    state: u64,
    word: u64,
    left: u32,
}

impl Stream {
    fn new(seed: u64) -> Stream {
        Stream {
            state: seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1,
            word: 0,
            left: 0,
        }
    }

    fn next_byte(&mut self) -> u8 {
        if self.left == 0 {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            self.word = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d);
            self.left = 8;
        }
        let b = self.word as u8;
        self.word >>= 8;
        self.left -= 1;
        b
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_byte();
        }
    }
}

const SENDER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const RECEIVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PORT: u16 = 5001;

struct App {
    client: ConnHandle,
    server: Option<ConnHandle>,
    tx: Stream,
    rx: Stream,
    /// Stream bytes generated but not yet accepted by the send buffer.
    pending: Vec<u8>,
    pending_off: usize,
    sent: u64,
    received: u64,
    exact: bool,
    eof: bool,
    finished_at: Option<Instant>,
    closed_client: bool,
    chunk: Vec<u8>,
    receiver_info: Option<TcpInfo>,
}

/// Runs one transfer and reports on it.
pub fn transfer(spec: &TransferSpec, registry: &CcRegistry) -> Result<TransferReport, SimError> {
    let mut sim = Sim::new(spec.seed);
    if spec.capture {
        sim.capture = Some(Vec::new());
    }
    let mut a_cfg = StackConfig::ip(SENDER_IP, 24);
    a_cfg.mtu = spec.mtu;
    a_cfg.tcp = spec.sender.clone();
    a_cfg.secret = seeded_secret(spec.seed, 1);
    let mut b_cfg = StackConfig::ip(RECEIVER_IP, 24);
    b_cfg.mtu = spec.mtu;
    b_cfg.tcp = spec.receiver.clone();
    b_cfg.secret = seeded_secret(spec.seed, 2);
    let a = sim.add_host(a_cfg, registry.clone())?;
    let b = sim.add_host(b_cfg, registry.clone())?;
    sim.connect(a, b, spec.forward.clone(), spec.reverse.clone())?;

    let now = sim.now();
    let listener = sim
        .stack(b)
        .tcp_listen(SocketAddrV4::new(RECEIVER_IP, PORT), 16)
        .map_err(SimError::Stack)?;
    let client = sim
        .stack(a)
        .tcp_connect(
            now,
            SocketAddrV4::new(RECEIVER_IP, PORT),
            Some(spec.sender.clone()),
        )
        .map_err(SimError::Stack)?;
    let start = now;
    let mut app = App {
        client,
        server: None,
        tx: Stream::new(spec.seed),
        rx: Stream::new(spec.seed),
        pending: Vec::with_capacity(65_536),
        pending_off: 0,
        sent: 0,
        received: 0,
        exact: true,
        eof: false,
        finished_at: None,
        closed_client: false,
        chunk: vec![0; 65_536],
        receiver_info: None,
    };
    let mut events = Vec::new();
    let mut retransmissions = 0;
    let mut rtos = 0;
    let mut fast = 0;
    let deadline = start + spec.time_limit;
    let max_steps = 50_000_000;
    let result = sim.run_until(deadline, max_steps, |sim| {
        let now = sim.now();
        // Sender: keep the send buffer full, then close.
        while app.sent < spec.bytes {
            if app.pending_off == app.pending.len() {
                let n = (spec.bytes - app.sent).min(65_536) as usize;
                app.pending.resize(n, 0);
                app.tx.fill(&mut app.pending);
                app.pending_off = 0;
            }
            match sim
                .stack(a)
                .tcp_send(now, app.client, &app.pending[app.pending_off..])
            {
                Ok(n) => {
                    app.pending_off += n;
                    app.sent += n as u64;
                }
                Err(_) => break,
            }
        }
        if app.sent == spec.bytes
            && !app.closed_client
            && sim
                .stack(a)
                .tcp_shutdown(now, app.client, Shutdown::Write)
                .is_ok()
        {
            app.closed_client = true;
        }
        // Receiver: accept, read and check.
        if app.server.is_none() {
            app.server = sim.stack(b).tcp_accept(listener).ok();
        }
        if let Some(s) = app.server {
            loop {
                match sim.stack(b).tcp_recv(now, s, &mut app.chunk) {
                    Ok(0) => {
                        if !app.eof {
                            app.eof = true;
                            app.finished_at = Some(now);
                            app.receiver_info = sim.stack(b).tcp_info(now, s).ok();
                            let _ = sim.stack(b).tcp_close(now, s);
                        }
                        break;
                    }
                    Ok(n) => {
                        for &byte in &app.chunk[..n] {
                            if byte != app.rx.next_byte() {
                                app.exact = false;
                            }
                        }
                        app.received += n as u64;
                    }
                    Err(_) => break,
                }
            }
        }
        for h in [a, b] {
            while let Some(e) = sim.stack(h).poll_event() {
                match e.kind {
                    EventKind::Retransmit { .. } => retransmissions += 1,
                    EventKind::RtoFired { .. } => rtos += 1,
                    EventKind::RecoveryStart { .. } => fast += 1,
                    _ => {}
                }
                if spec.keep_events {
                    events.push(e);
                }
            }
        }
        app.eof
    });
    result?;
    let finished = app.finished_at.unwrap_or(sim.now());
    let sender_info = sim
        .stack(a)
        .tcp_info(finished, app.client)
        .unwrap_or_default();
    let receiver_info = app.receiver_info.take().unwrap_or_default();
    Ok(TransferReport {
        bytes: app.received,
        byte_exact: app.exact && app.received == spec.bytes,
        duration: finished - start,
        retransmissions,
        rtos,
        fast_retransmits: fast,
        sender_info,
        receiver_info,
        events,
        frames: sim.capture.take().unwrap_or_default(),
        steps: sim.steps(),
    })
}

/// Distinct, reproducible stack secrets per run and host.
fn seeded_secret(seed: u64, host: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    let mut x = seed ^ host.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for chunk in s.chunks_mut(8) {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    s
}
