//! `daytona bench`: kernel↔kernel over a veth pair against kernel↔Daytona
//! over a TAP device, measured side by side in one run, in namespaces the
//! command creates and removes (also on error and Ctrl-C). Bulk goodput in
//! both directions (TAP offloads on and off), 1-byte request/response
//! round-trip time, and connections per second; the kernel's sockets name
//! their congestion controller (cubic unless told otherwise: the kernel
//! here defaults to BBR).

mod measure;
mod side;
mod table;

use crate::cleanup::Scratch;
use crate::privilege::{self, CAP_NET_ADMIN, CAP_SYS_ADMIN};
use crate::units;
use crate::workload::Amount;
use daytona_link::TapConfig;
use daytona_runtime::{ShutdownPolicy, StackBuilder, TimerMode};
use daytona_testnet::Veth;
use side::Side;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;
use table::{Row, Table};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Test {
    /// Bulk goodput, both directions.
    Bulk,
    /// 1-byte request/response round-trip time.
    Rr,
    /// Connections per second (connect + close).
    Cps,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// How long each bulk, round-trip and connection-rate test runs (us, ms, s).
    #[arg(long, default_value = "3s", value_parser = units::parse_duration)]
    duration: Duration,
    /// Bulk tests send this many bytes instead of running for --duration.
    #[arg(long, value_parser = units::parse_size)]
    bytes: Option<u64>,
    /// Tests to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "bulk,rr,cps")]
    tests: Vec<Test>,
    /// TAP offload settings to measure Daytona's bulk goodput with.
    #[arg(long, value_delimiter = ',', default_value = "on,off")]
    offload: Vec<OnOff>,
    /// Measure only kernel↔kernel.
    #[arg(long)]
    kernel_only: bool,
    /// Congestion controller of the kernel's sockets.
    #[arg(long, default_value = "cubic")]
    kernel_cc: String,
    /// Congestion controller of Daytona's connections.
    #[arg(long, default_value = "cubic")]
    cc: String,
    /// Daytona's busy-poll budget before its threads sleep (us, ms; 0us: off).
    #[arg(long, value_parser = units::parse_duration)]
    busy_poll: Option<Duration>,
    /// Daytona's timer mode.
    #[arg(long, value_enum, default_value = "hires")]
    timer: crate::netstack::Timer,
    /// Run each measurement this many times and report the median.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

const VETH_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const VETH_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const TAP_KERNEL: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const TAP_DAYTONA: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);

/// A fresh port for each test, so no test meets the previous one's
/// TIME_WAIT connections.
fn port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(5001);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// The kernel↔kernel reference: two namespaces joined by a veth pair.
struct KernelPair {
    a: Side,
    b: Side,
    _veth: Veth,
}

impl KernelPair {
    fn new(cc: &str) -> Result<KernelPair, String> {
        let na = Arc::new(Scratch::new("dtbka").map_err(io_err("creating a namespace"))?);
        let nb = Arc::new(Scratch::new("dtbkb").map_err(io_err("creating a namespace"))?);
        let veth = Veth::new(&na, "veth0", &nb, "veth1").map_err(io_err("creating a veth pair"))?;
        for (ns, dev, ip) in [(&na, "veth0", VETH_A), (&nb, "veth1", VETH_B)] {
            ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", dev])
                .map_err(io_err("adding an address"))?;
        }
        Ok(KernelPair {
            a: Side::kernel(&na, cc),
            b: Side::kernel(&nb, cc),
            _veth: veth,
        })
    }
}

/// kernel↔Daytona: a TAP device Daytona creates in a namespace of its
/// own; the kernel's end has [`TAP_KERNEL`], Daytona [`TAP_DAYTONA`].
struct TapPair {
    kernel: Side,
    daytona: Side,
    offloads: bool,
}

impl TapPair {
    fn new(a: &BenchArgs, offloads: bool) -> Result<TapPair, String> {
        let (kernel_cc, cc) = (&a.kernel_cc, &a.cc);
        let ns = Arc::new(Scratch::new("dtbt").map_err(io_err("creating a namespace"))?);
        // The device is created in the namespace of the thread that opens it.
        let tap = ns
            .run(move || TapConfig::default().name("dtap0").offloads(offloads).open())
            .map_err(io_err("creating a TAP device"))?;
        ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{TAP_KERNEL}/24"),
            "dev",
            "dtap0",
        ])
        .map_err(io_err("adding an address"))?;
        let offloads = tap.offloads();
        let rt = StackBuilder::new()
            .addr(TAP_DAYTONA, 24)
            .mac(tap.mac())
            .congestion_control(cc)
            .shutdown_policy(ShutdownPolicy::Reset)
            .timer_mode(match a.timer {
                crate::netstack::Timer::Hires => TimerMode::HighResolution,
                crate::netstack::Timer::Jiffies => TimerMode::Jiffies,
            })
            .busy_poll(a.busy_poll.filter(|d| !d.is_zero()))
            .link(tap)
            .build()
            .map_err(io_err("starting Daytona"))?;
        Ok(TapPair {
            kernel: Side::kernel(&ns, kernel_cc),
            daytona: Side::Daytona(Arc::new(rt)),
            offloads,
        })
    }
}

fn progress(quiet: bool, what: &str, result: &str) {
    if !quiet {
        eprintln!("bench: {what:<44} {result}");
    }
}

/// The median over `a.repeat` runs of each figure `f` returns; each run
/// is shown as it comes in.
fn median_of<const K: usize>(
    a: &BenchArgs,
    what: &str,
    mut f: impl FnMut() -> std::io::Result<[f64; K]>,
    show: impl Fn(&[f64; K]) -> String,
) -> Result<[f64; K], String> {
    let mut runs = Vec::new();
    for _ in 0..a.repeat {
        let r = f().map_err(io_err(what))?;
        progress(a.json, what, &show(&r));
        runs.push(r);
    }
    let mut out = [0.0; K];
    for (k, o) in out.iter_mut().enumerate() {
        let mut v: Vec<f64> = runs.iter().map(|r| r[k]).collect();
        v.sort_by(|x, y| x.total_cmp(y));
        *o = v[v.len() / 2];
    }
    Ok(out)
}

fn bulk_gbps(
    a: &BenchArgs,
    what: &str,
    sender: &Side,
    receiver: &Side,
    to: impl Fn() -> SocketAddrV4,
    amount: Amount,
) -> Result<f64, String> {
    let [g] = median_of(
        a,
        what,
        || Ok([measure::bulk(sender, receiver, to(), amount)?.goodput_bps() / 1e9]),
        |[g]| format!("{g:.2} Gbit/s"),
    )?;
    Ok(g)
}

/// (mean, p99) in µs.
fn round_trip_us(
    a: &BenchArgs,
    what: &str,
    client: &Side,
    server: &Side,
    to: impl Fn() -> SocketAddrV4,
) -> Result<[f64; 2], String> {
    median_of(
        a,
        what,
        || {
            let r = measure::round_trips(client, server, to(), a.duration)?;
            Ok([us(r.mean()), us(r.quantile(0.99))])
        },
        |[m, p]| format!("mean {m:.1} µs, p99 {p:.1} µs"),
    )
}

fn conn_rate(
    a: &BenchArgs,
    what: &str,
    client: &Side,
    server: &Side,
    to: impl Fn() -> SocketAddrV4,
) -> Result<f64, String> {
    let [r] = median_of(
        a,
        what,
        || Ok([measure::connection_rate(client, server, to(), a.duration)?]),
        |[r]| format!("{r:.0} conn/s"),
    )?;
    Ok(r)
}

pub fn run(a: &BenchArgs) -> Result<(), String> {
    privilege::require(
        "bench",
        &[CAP_NET_ADMIN, CAP_SYS_ADMIN],
        "create network namespaces, veth pairs and TAP devices",
    )?;
    if a.duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    if a.repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    let amount = match a.bytes {
        Some(0) => return Err("--bytes must be positive".into()),
        Some(b) => Amount::Bytes(b),
        None => Amount::For(a.duration),
    };
    let mut table = Table::new(a, amount);
    let k = KernelPair::new(&a.kernel_cc)?;
    let to_b = || SocketAddrV4::new(VETH_B, port());

    if a.tests.contains(&Test::Bulk) {
        let kernel = bulk_gbps(a, "bulk kernel→kernel (veth)", &k.a, &k.b, to_b, amount)?;
        for off in &a.offload {
            let o = if *off == OnOff::On { "on" } else { "off" };
            for dir in ["kernel→Daytona", "Daytona→kernel"] {
                table.push(Row::new(
                    format!("bulk {dir}, TAP offload {o}"),
                    "Gbit/s",
                    kernel,
                    true,
                ));
            }
        }
    }
    if a.tests.contains(&Test::Rr) {
        let [mean, p99] = round_trip_us(
            a,
            "1-byte round trip kernel↔kernel (veth)",
            &k.a,
            &k.b,
            to_b,
        )?;
        for who in ["kernel client", "Daytona client"] {
            let row =
                |m: &str, v| Row::new(format!("1-byte round trip, {m}, {who}"), "µs", v, false);
            table.push(row("mean", mean));
            table.push(row("p99", p99));
        }
    }
    if a.tests.contains(&Test::Cps) {
        let rate = conn_rate(a, "connections/s kernel↔kernel (veth)", &k.a, &k.b, to_b)?;
        for who in ["kernel client", "Daytona client"] {
            let test = format!("connections per second, {who}");
            table.push(Row::new(test, "conn/s", rate, true));
        }
    }
    drop(k);
    if !a.kernel_only {
        daytona(a, amount, &mut table)?;
    }
    table.print(a.json);
    Ok(())
}

/// Fills in the Daytona column.
fn daytona(a: &BenchArgs, amount: Amount, table: &mut Table) -> Result<(), String> {
    let to_daytona = || SocketAddrV4::new(TAP_DAYTONA, port());
    let to_kernel = || SocketAddrV4::new(TAP_KERNEL, port());
    let mut first = true;
    for off in &a.offload {
        let on = *off == OnOff::On;
        let o = if on { "on" } else { "off" };
        let t = TapPair::new(a, on)?;
        if on && !t.offloads {
            eprintln!("bench: warning: the kernel refused TAP offloads; measuring without");
        }
        if a.tests.contains(&Test::Bulk) {
            let what = format!("bulk kernel→Daytona, TAP offload {o}");
            let g = bulk_gbps(a, &what, &t.kernel, &t.daytona, to_daytona, amount)?;
            if let Some(row) = table.row(&what) {
                row.daytona = Some(g);
            }
            let what = format!("bulk Daytona→kernel, TAP offload {o}");
            let g = bulk_gbps(a, &what, &t.daytona, &t.kernel, to_kernel, amount)?;
            if let Some(row) = table.row(&what) {
                row.daytona = Some(g);
            }
        }
        // Round trips and the connection rate once, on the first TAP.
        if !std::mem::take(&mut first) {
            continue;
        }
        // Each of the two is measured with either side as the client.
        let to_kernel = || SocketAddrV4::new(TAP_KERNEL, port());
        let sides: [(&str, _, _, &dyn Fn() -> SocketAddrV4); 2] = [
            ("kernel client", &t.kernel, &t.daytona, &to_daytona),
            ("Daytona client", &t.daytona, &t.kernel, &to_kernel),
        ];
        if a.tests.contains(&Test::Rr) {
            for (who, client, server, to) in sides {
                let what = format!("1-byte round trip, {who} (TAP offload {o})");
                let [mean, p99] = round_trip_us(a, &what, client, server, to)?;
                if let Some(row) = table.row(&format!("1-byte round trip, mean, {who}")) {
                    row.daytona = Some(mean);
                }
                if let Some(row) = table.row(&format!("1-byte round trip, p99, {who}")) {
                    row.daytona = Some(p99);
                }
            }
        }
        if a.tests.contains(&Test::Cps) {
            for (who, client, server, to) in sides {
                let what = format!("connections/s, {who} (TAP offload {o})");
                let rate = conn_rate(a, &what, client, server, to)?;
                if let Some(row) = table.row(&format!("connections per second, {who}")) {
                    row.daytona = Some(rate);
                }
            }
        }
    }
    Ok(())
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
