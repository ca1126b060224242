//! `daytona`: the project's command.
//!
//! Until the simulator and the real links land, its main job is
//! `daytona transfer`: two Daytona stacks in one process, connected by a
//! simulated link with the impairments you choose, moving a seeded byte
//! stream and checking it byte for byte.

mod bench;
mod cleanup;
mod demo;
mod netstack;
mod privilege;
mod report;
mod session;
mod sim;
mod units;
mod workload;

use clap::{Parser, Subcommand};
use daytona_core::cc::CcRegistry;
use daytona_core::tcp::TcpConfig;
use daytona_core::time::Duration;
use daytona_link::Impairment;
use daytona_sim::{transfer, TransferSpec};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "daytona",
    version,
    about = "Daytona, a user-level TCP/IP stack"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transfer bytes between two in-memory stacks over a simulated link.
    Transfer(TransferArgs),
    /// Simulate a network of Daytona stacks on virtual time: summary,
    /// event log, time series, pcapng and plots.
    Sim(Box<sim::SimArgs>),
    /// Measure Daytona against the kernel's TCP (as root): bulk goodput,
    /// 1-byte round trips and connections per second, kernel↔kernel over
    /// a veth pair next to kernel↔Daytona over a TAP device.
    Bench(Box<bench::BenchArgs>),
    /// Listen on a Daytona stack over a real link (TAP, raw, AF_PACKET) and
    /// receive, send, echo or answer HTTP GETs, like nc -l / iperf -s.
    Serve(Box<session::ServeArgs>),
    /// Connect from a Daytona stack over a real link and send, receive or
    /// echo, like nc / iperf -c.
    Connect(Box<session::ConnectArgs>),
    /// As root: create a namespace and a TAP device, move bytes between
    /// Daytona and the kernel's TCP both ways with live progress, print
    /// goodput and TcpInfo, and clean up.
    Demo(Box<demo::DemoArgs>),
}

#[derive(clap::Args)]
struct TransferArgs {
    /// Bytes to transfer (B, KB, MB, GB, KiB, MiB, GiB).
    #[arg(long, default_value = "10MB", value_parser = units::parse_size)]
    bytes: u64,
    /// Bottleneck rate (kbit, mbit, gbit).
    #[arg(long, default_value = "100mbit", value_parser = units::parse_rate)]
    rate: u64,
    /// One-way propagation delay (us, ms, s).
    #[arg(long, default_value = "10ms", value_parser = units::parse_duration)]
    delay: Duration,
    #[command(flatten)]
    impair: sim::RandomImpairments,
    /// Bottleneck queue in bytes.
    #[arg(long, default_value = "1MiB", value_parser = units::parse_size)]
    queue: u64,
    /// Fix the send and receive buffer of each connection at this size
    /// (bounds the window; like SO_SNDBUF/SO_RCVBUF). Default: autotuned
    /// as Linux, receive 128 KiB up to 6 MiB, send 1 MiB up to 4 MiB.
    #[arg(long, value_parser = sim::parse_buffer)]
    buffer: Option<usize>,
    /// Congestion controller of the sender.
    #[arg(long, default_value = "cubic")]
    cc: String,
    /// IP MTU of the link.
    #[arg(long, default_value_t = 1500)]
    mtu: usize,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn impairment(a: &TransferArgs, ack_path: bool) -> Impairment {
    let base = Impairment {
        delay: a.delay,
        rate_bps: Some(a.rate),
        queue_bytes: Some(a.queue as usize),
        ..Impairment::default()
    };
    a.impair.apply(&base, ack_path)
}

fn run_transfer(a: &TransferArgs) -> Result<(), String> {
    let registry = CcRegistry::with_builtin();
    if !registry.contains(&a.cc) {
        return Err(format!(
            "unknown congestion controller {:?} (known: {})",
            a.cc,
            registry.names().join(", ")
        ));
    }
    if !(576..=65_535).contains(&a.mtu) {
        return Err(format!("MTU {} is not within 576..=65535", a.mtu));
    }
    let mut receiver = TcpConfig::default();
    if let Some(buffer) = a.buffer {
        receiver.send_buffer = buffer;
        receiver.recv_buffer = buffer;
        receiver.send_buffer_max = None;
        receiver.recv_buffer_max = None;
    }
    let sender = TcpConfig {
        congestion_control: a.cc.clone(),
        ..receiver.clone()
    };
    let spec = TransferSpec {
        bytes: a.bytes,
        seed: a.seed,
        mtu: a.mtu,
        forward: impairment(a, false),
        reverse: impairment(a, true),
        sender,
        receiver,
        ..TransferSpec::default()
    };
    let wall = std::time::Instant::now();
    let r = transfer(&spec, &registry).map_err(|e| e.to_string())?;
    let wall = wall.elapsed();
    println!(
        "transfer: {} bytes, {} bit/s, one-way delay {:?}, loss {}%, cc {}, seed {}",
        a.bytes,
        a.rate,
        a.delay,
        a.impair.loss * 100.0,
        a.cc,
        a.seed
    );
    println!();
    println!(
        "  byte-exact        {}",
        if r.byte_exact { "yes" } else { "NO" }
    );
    println!("  virtual time      {:.3} s", r.duration.as_secs_f64());
    println!("  goodput           {:.2} Mbit/s", r.goodput_bps() / 1e6);
    println!("  retransmissions   {}", r.retransmissions);
    println!("  RTOs              {}", r.rtos);
    println!("  recoveries        {}", r.fast_retransmits);
    println!(
        "  wall time         {:.3} s ({:.0}x real time)",
        wall.as_secs_f64(),
        r.duration.as_secs_f64() / wall.as_secs_f64().max(1e-9)
    );
    println!();
    println!("sender TcpInfo:");
    report::print_info(&r.sender_info);
    if !r.byte_exact {
        return Err("the transfer was not byte-exact".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    cleanup::default_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Bad arguments: clap's first line names the problem; exit 2.
        Err(e) if e.use_stderr() => {
            let msg = e.to_string();
            eprintln!("daytona: {}", msg.lines().next().unwrap_or("bad arguments"));
            return ExitCode::from(2);
        }
        // --help, --version.
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match &cli.command {
        Command::Transfer(a) => run_transfer(a),
        Command::Sim(a) => return sim::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Serve(a) => session::serve(a),
        Command::Connect(a) => session::connect(a),
        Command::Demo(a) => demo::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daytona: {e}");
            ExitCode::from(2)
        }
    }
}
