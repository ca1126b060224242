//! `daytona demo`: Daytona and the kernel's TCP talking over a TAP device,
//! in a namespace the command creates and removes. Daytona sends to a
//! kernel socket, then the kernel sends to Daytona; each transfer shows a
//! live progress bar, then goodput, whether the bytes arrived exactly, and
//! Daytona's `TcpInfo` for the connection.

use crate::cleanup::Scratch;
use crate::privilege::{self, CAP_NET_ADMIN, CAP_SYS_ADMIN};
use crate::report;
use crate::units;
use crate::workload::{self, Amount};
use daytona_link::TapConfig;
use daytona_runtime::{Runtime, ShutdownPolicy, StackBuilder, TcpInfo};
use indicatif::{ProgressBar, ProgressStyle};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Bytes to move each way (B, KB, MB, GB, KiB, MiB, GiB).
    #[arg(long, default_value = "200MB", value_parser = units::parse_size)]
    bytes: u64,
    /// Daytona's congestion controller.
    #[arg(long, default_value = "cubic")]
    cc: String,
    /// The kernel socket's congestion controller (the kernel here
    /// defaults to BBR).
    #[arg(long, default_value = "cubic")]
    kernel_cc: String,
    /// TAP checksum and segmentation offloads.
    #[arg(long, value_enum, default_value = "on")]
    offload: crate::netstack::OnOff,
    /// Seed of the data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

const KERNEL: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
const DAYTONA: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
const TAP: &str = "dtdemo0";

fn err(what: &'static str) -> impl Fn(io::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn join<R>(h: JoinHandle<io::Result<R>>, what: &'static str) -> Result<R, String> {
    h.join()
        .map_err(|_| format!("{what}: thread panicked"))?
        .map_err(|e| format!("{what}: {e}"))
}

/// Shows `meter` against `total` until `done` finishes.
fn watch<R>(label: &str, meter: &AtomicU64, total: u64, done: &JoinHandle<R>) {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:<16} {bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}",
    ) {
        bar.set_style(style);
    }
    bar.set_message(label.to_string());
    while !done.is_finished() {
        bar.set_position(meter.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.set_position(meter.load(Ordering::Relaxed));
    bar.finish();
}

fn kernel_socket(cc: &str) -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    daytona_testnet::set_congestion_control(&s, cc)?;
    Ok(s)
}

fn outcome(what: &str, bytes: u64, elapsed: Duration, exact: bool, info: &TcpInfo) {
    println!();
    println!(
        "{what}: {bytes} bytes in {:.3} s, goodput {}, byte-exact {}",
        elapsed.as_secs_f64(),
        report::rate(bytes as f64 * 8.0 / elapsed.as_secs_f64().max(1e-9)),
        if exact { "yes" } else { "NO" }
    );
    println!("Daytona's TcpInfo:");
    report::print_info(info);
}

pub fn run(a: &DemoArgs) -> Result<(), String> {
    privilege::require(
        "demo",
        &[CAP_NET_ADMIN, CAP_SYS_ADMIN],
        "create a network namespace and a TAP device",
    )?;
    if a.bytes == 0 {
        return Err("--bytes must be positive".into());
    }
    let registry = daytona_core::cc::CcRegistry::with_builtin();
    if !registry.contains(&a.cc) {
        return Err(format!(
            "unknown congestion controller {:?} (known: {})",
            a.cc,
            registry.names().join(", ")
        ));
    }
    let ns = Arc::new(Scratch::new("dtdemo").map_err(err("creating a namespace"))?);
    let offloads = a.offload == crate::netstack::OnOff::On;
    let tap = ns
        .run(move || TapConfig::default().name(TAP).offloads(offloads).open())
        .map_err(err("creating the TAP device"))?;
    ns.exec(&["ip", "addr", "add", &format!("{KERNEL}/24"), "dev", TAP])
        .map_err(err("adding the kernel's address"))?;
    println!(
        "namespace {}: TAP {TAP} (offloads {}), kernel {KERNEL} ({}), Daytona {DAYTONA} ({})",
        ns.name(),
        if tap.offloads() { "on" } else { "off" },
        a.kernel_cc,
        a.cc
    );
    let rt = Arc::new(
        StackBuilder::new()
            .addr(DAYTONA, 24)
            .mac(tap.mac())
            .congestion_control(&a.cc)
            .shutdown_policy(ShutdownPolicy::Reset)
            .link(tap)
            .build()
            .map_err(err("starting Daytona"))?,
    );
    daytona_to_kernel(a, &ns, &rt)?;
    kernel_to_daytona(a, &ns, &rt)?;
    drop(rt);
    let name = ns.name().to_string();
    drop(ns);
    println!();
    println!("removed namespace {name} and TAP {TAP}");
    Ok(())
}

fn daytona_to_kernel(a: &DemoArgs, ns: &Scratch, rt: &Arc<Runtime>) -> Result<(), String> {
    let addr = SocketAddrV4::new(KERNEL, 5001);
    let cc = a.kernel_cc.clone();
    let listener = ns
        .run(move || -> io::Result<std::net::TcpListener> {
            let s = kernel_socket(&cc)?;
            s.set_reuse_address(true)?;
            s.bind(&addr.into())?;
            s.listen(8)?;
            Ok(s.into())
        })
        .map_err(err("kernel listener"))?;
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = listener.accept()?;
        workload::receive(&mut s, &AtomicU64::new(0), true)
    });
    let meter = Arc::new(AtomicU64::new(0));
    let (rt2, m, bytes, seed) = (rt.clone(), meter.clone(), a.bytes, a.seed);
    let start = Instant::now();
    let sender = std::thread::spawn(move || -> io::Result<TcpInfo> {
        let mut s = daytona_runtime::TcpStream::connect(&rt2, addr)?;
        workload::send(&mut s, Amount::Bytes(bytes), &workload::block(seed), &m)?;
        s.shutdown(Shutdown::Write)?;
        // The kernel closes after end of stream: everything was acknowledged.
        let mut b = [0u8; 1];
        let _ = io::Read::read(&mut s, &mut b);
        s.info()
    });
    watch("Daytona→kernel", &meter, a.bytes, &sender);
    let info = join(sender, "Daytona sending")?;
    let elapsed = start.elapsed();
    let got = join(receiver, "kernel receiving")?;
    let exact = got.digest == Some(workload::stream_digest(a.seed, a.bytes));
    outcome("Daytona→kernel", got.bytes, elapsed, exact, &info);
    if !exact {
        return Err("Daytona→kernel: the kernel did not receive the bytes sent".into());
    }
    Ok(())
}

fn kernel_to_daytona(a: &DemoArgs, ns: &Scratch, rt: &Arc<Runtime>) -> Result<(), String> {
    let addr = SocketAddrV4::new(DAYTONA, 5002);
    let listener = daytona_runtime::TcpListener::bind(rt, addr).map_err(err("Daytona listener"))?;
    let meter = Arc::new(AtomicU64::new(0));
    let m = meter.clone();
    let start = Instant::now();
    let receiver = std::thread::spawn(move || -> io::Result<(workload::Received, TcpInfo)> {
        let (mut s, _) = listener.accept()?;
        let r = workload::receive(&mut s, &m, true)?;
        let info = s.info()?;
        Ok((r, info))
    });
    let (cc, bytes, seed) = (a.kernel_cc.clone(), a.bytes, a.seed);
    let sender = ns.thread(move || -> io::Result<u64> {
        let s = kernel_socket(&cc)?;
        s.connect(&addr.into())?;
        let mut s: std::net::TcpStream = s.into();
        let n = workload::send(
            &mut s,
            Amount::Bytes(bytes),
            &workload::block(seed),
            &AtomicU64::new(0),
        )?;
        s.shutdown(Shutdown::Write)?;
        Ok(n)
    });
    watch("kernel→Daytona", &meter, a.bytes, &receiver);
    let (got, info) = join(receiver, "Daytona receiving")?;
    let elapsed = start.elapsed();
    join(sender, "kernel sending")?;
    let exact = got.digest == Some(workload::stream_digest(a.seed, a.bytes));
    outcome("kernel→Daytona", got.bytes, elapsed, exact, &info);
    if !exact {
        return Err("kernel→Daytona: Daytona did not receive the bytes sent".into());
    }
    Ok(())
}
