//! `daytona sim`: real Daytona stacks over a simulated network, on
//! virtual time. The simple case comes from flags (a dumbbell of `--flows`
//! bulk flows over one bottleneck); anything else from `--scenario FILE`
//! (see `daytona_sim::scenario`). Prints a summary table and, with
//! `--out DIR`, writes the event log, per-flow time series, a pcapng of
//! the bottleneck and SVG plots.

mod args;
mod output;
mod pcap;
mod plots;
mod summary;

pub use args::{parse_buffer, RandomImpairments};

use crate::units;
use daytona_core::cc::CcRegistry;
use daytona_core::time::Duration;
use daytona_link::{Aqm, CoDelParams, Impairment, Trace};
use daytona_sim::scenario::{bdp_bytes, FlowDef, Scenario, Topology};
use daytona_sim::units::QueueSize;
use daytona_sim::workload::{Progress, Workload};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct SimArgs {
    /// Bottleneck rate (kbit, mbit, gbit).
    #[arg(long, default_value = "100mbit", value_parser = units::parse_rate)]
    rate: u64,
    /// Rate of the return (ACK) path, for asymmetric links; default: --rate.
    #[arg(long, value_parser = units::parse_rate)]
    ack_rate: Option<u64>,
    /// Base round-trip time of the path (us, ms, s).
    #[arg(long, default_value = "40ms", value_parser = units::parse_duration)]
    rtt: Duration,
    #[command(flatten)]
    impair: RandomImpairments,
    /// Bottleneck queue: a BDP multiple (1bdp), bytes (256KB) or packets (100pkt).
    #[arg(long, default_value = "1bdp", value_parser = units::parse_queue)]
    queue: QueueSize,
    /// Queue management at the bottleneck: droptail or codel.
    #[arg(long, default_value = "droptail")]
    aqm: String,
    /// Congestion controller; a comma-separated list is given to the
    /// flows in turn. Default: cubic when built in, else newreno.
    #[arg(long)]
    cc: Option<String>,
    /// Bytes each flow sends (B, KB, MB, GB, KiB, MiB, GiB).
    #[arg(long, default_value = "20MB", value_parser = units::parse_size)]
    bytes: u64,
    /// Bulk flows sharing the bottleneck.
    #[arg(long, default_value_t = 1)]
    flows: usize,
    /// Uniform extra delay on the data path, up to this (us, ms, s).
    #[arg(long, default_value = "0ms", value_parser = units::parse_duration)]
    jitter: Duration,
    /// Fix each connection's send and receive buffers at this size
    /// (autotuning off, like SO_SNDBUF/SO_RCVBUF).
    #[arg(long, value_parser = parse_buffer)]
    buffer: Option<usize>,
    /// A mahimahi trace for the data path's capacity instead of --rate.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// IP MTU.
    #[arg(long, default_value_t = 1500)]
    mtu: usize,
    /// Seed for every random choice (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Give up after this much virtual time.
    #[arg(long, default_value = "600s", value_parser = units::parse_duration)]
    time_limit: Duration,
    /// Sample each flow's TcpInfo this often (virtual time).
    #[arg(long, default_value = "10ms", value_parser = units::parse_duration)]
    sample_interval: Duration,
    /// Write events.jsonl, per-flow CSVs, bottleneck.pcapng and SVG plots here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A TOML scenario (topology, link, flows); link and flow flags are
    /// then not allowed.
    #[arg(long, conflicts_with_all = ["rate", "ack_rate", "rtt", "loss", "ack_loss", "queue", "aqm", "cc", "bytes", "flows", "reorder", "reorder_delay", "duplicate", "corrupt", "jitter", "trace", "mtu", "buffer"])]
    scenario: Option<PathBuf>,
}

/// Bad input: a one-line message and exit code 2.
fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("daytona sim: {msg}");
    ExitCode::from(2)
}

/// The scenario the flags describe.
fn scenario_from_flags(a: &SimArgs, registry: &CcRegistry) -> Result<Scenario, String> {
    let default_cc = if registry.contains("cubic") {
        "cubic"
    } else {
        "newreno"
    };
    let ccs: Vec<String> =
        a.cc.as_deref()
            .unwrap_or(default_cc)
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
    if a.flows == 0 {
        return Err("--flows must be at least 1".into());
    }
    let trace = match &a.trace {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| format!("trace {}: {e}", p.display()))?;
            Some(Arc::new(
                Trace::parse(&text).map_err(|e| format!("trace {}: {e}", p.display()))?,
            ))
        }
        None => None,
    };
    let capacity = trace.as_ref().map_or(a.rate, |t| t.mean_rate_bps());
    let (queue_bytes, queue_packets) = a.queue.resolve(bdp_bytes(capacity, a.rtt), a.mtu);
    let aqm = match a.aqm.as_str() {
        "droptail" | "drop-tail" | "fifo" => Aqm::DropTail,
        "codel" => Aqm::CoDel(CoDelParams::default()),
        other => return Err(format!("unknown AQM {other:?} (use droptail or codel)")),
    };
    let bottleneck = Impairment {
        rate_bps: trace.is_none().then_some(a.rate),
        trace,
        queue_bytes,
        queue_packets,
        aqm,
        ..Impairment::default()
    };
    let forward = Impairment {
        jitter: a.jitter,
        ..a.impair.apply(&bottleneck, false)
    };
    let mut reverse = a.impair.apply(&bottleneck, true);
    if let Some(r) = a.ack_rate {
        reverse.rate_bps = Some(r);
        reverse.trace = None;
    }
    let buffer = a.buffer;
    let flows = (0..a.flows)
        .map(|i| FlowDef {
            cc: ccs[i % ccs.len()].clone(),
            workload: Workload::Bulk { bytes: a.bytes },
            buffer,
            ..FlowDef::default()
        })
        .collect();
    Ok(Scenario {
        seed: a.seed.unwrap_or(1),
        topology: Topology::Dumbbell,
        mtu: a.mtu,
        rtt: a.rtt,
        forward,
        reverse,
        flows,
        time_limit: a.time_limit,
        sample_interval: (!a.sample_interval.is_zero()).then_some(a.sample_interval),
        record_events: false,
        capture: false,
    })
}

/// A progress bar on stderr, shown only on a terminal and only once the
/// run has taken more than a second.
struct Bar {
    bar: ProgressBar,
    wall: std::time::Instant,
    shown: bool,
    tty: bool,
}

impl Bar {
    fn new(total: u64) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} virtual {msg} ({elapsed} wall)",
        ) {
            bar.set_style(style);
        }
        Bar {
            bar,
            wall: std::time::Instant::now(),
            shown: false,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn update(&mut self, p: Progress) {
        if !self.shown && self.tty && self.wall.elapsed().as_secs_f64() > 1.0 {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        self.bar.set_position(p.bytes_done);
        self.bar
            .set_message(format!("{:.2} s", p.now.as_secs_f64()));
    }

    fn finish(self) {
        self.bar.finish_and_clear();
    }
}

pub fn run(a: &SimArgs) -> ExitCode {
    let registry = CcRegistry::with_builtin();
    let scenario = match &a.scenario {
        Some(path) => daytona_sim::scenario::Scenario::load(path).map_err(|e| e.to_string()),
        None => scenario_from_flags(a, &registry),
    };
    let mut scenario = match scenario {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    if let Some(seed) = a.seed {
        scenario.seed = seed;
    }
    if let Err(e) = scenario.validate(&registry) {
        return usage_error(e);
    }
    if let Some(dir) = &a.out {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return usage_error(format!("cannot create {}: {e}", dir.display()));
        }
        scenario.record_events = true;
        scenario.capture = true;
    }
    let total = scenario
        .flows
        .iter()
        .map(|f| f.workload.total_bytes())
        .sum();
    let mut bar = Bar::new(total);
    let wall = std::time::Instant::now();
    let result = scenario.run(&registry, &mut |p| bar.update(p));
    bar.finish();
    let wall = wall.elapsed();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("daytona sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut text = summary::render(&scenario, &report, wall);
    if let Some(dir) = &a.out {
        match output::write_all(dir, &report) {
            Ok(files) => {
                text += &format!("\nwrote {} files to {}\n", files.len(), dir.display());
                for f in files {
                    text += &format!("  {f}\n");
                }
            }
            Err(e) => {
                eprintln!("daytona sim: writing {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
    }
    // A closed stdout (`| head`) is not an error of the run.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    if report.all_exact() {
        ExitCode::SUCCESS
    } else {
        eprintln!("daytona sim: a flow was not byte-exact");
        ExitCode::FAILURE
    }
}
