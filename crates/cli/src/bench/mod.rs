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
use daytona_runtime::{ShutdownPolicy, StackBuilder};
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
    fn new(kernel_cc: &str, cc: &str, offloads: bool) -> Result<TapPair, String> {
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

pub fn run(a: &BenchArgs) -> Result<(), String> {
    privilege::require(
        "bench",
        &[CAP_NET_ADMIN, CAP_SYS_ADMIN],
        "create network namespaces, veth pairs and TAP devices",
    )?;
    if a.duration.is_zero() {
        return Err("--duration must be positive".into());
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
        let r = measure::bulk(&k.a, &k.b, to_b(), amount).map_err(io_err("kernel→kernel bulk"))?;
        progress(
            a.json,
            "bulk kernel→kernel (veth)",
            &table::gbit(r.goodput_bps()),
        );
        let kernel = r.goodput_bps() / 1e9;
        for off in &a.offload {
            let o = if *off == OnOff::On { "on" } else { "off" };
            table.push(Row::new(
                format!("bulk kernel→Daytona, TAP offload {o}"),
                "Gbit/s",
                kernel,
                true,
            ));
            table.push(Row::new(
                format!("bulk Daytona→kernel, TAP offload {o}"),
                "Gbit/s",
                kernel,
                true,
            ));
        }
    }
    if a.tests.contains(&Test::Rr) {
        let r = measure::round_trips(&k.a, &k.b, to_b(), a.duration)
            .map_err(io_err("kernel↔kernel round trips"))?;
        progress(
            a.json,
            "1-byte round trip kernel↔kernel (veth)",
            &format!(
                "mean {:.1} µs, p99 {:.1} µs ({} samples)",
                us(r.mean()),
                us(r.quantile(0.99)),
                r.samples_ns.len()
            ),
        );
        table.push(Row::new(
            "1-byte round trip, mean".into(),
            "µs",
            us(r.mean()),
            false,
        ));
        table.push(Row::new(
            "1-byte round trip, p99".into(),
            "µs",
            us(r.quantile(0.99)),
            false,
        ));
    }
    if a.tests.contains(&Test::Cps) {
        let rate = measure::connection_rate(&k.a, &k.b, to_b(), a.duration)
            .map_err(io_err("kernel↔kernel connection rate"))?;
        progress(
            a.json,
            "connections/s kernel↔kernel (veth)",
            &format!("{rate:.0}"),
        );
        table.push(Row::new(
            "connections per second".into(),
            "conn/s",
            rate,
            true,
        ));
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
        let t = TapPair::new(&a.kernel_cc, &a.cc, on)?;
        if on && !t.offloads {
            eprintln!("bench: warning: the kernel refused TAP offloads; measuring without");
        }
        if a.tests.contains(&Test::Bulk) {
            let what = format!("bulk kernel→Daytona, TAP offload {o}");
            let r = measure::bulk(&t.kernel, &t.daytona, to_daytona(), amount)
                .map_err(io_err(&what))?;
            progress(a.json, &what, &table::gbit(r.goodput_bps()));
            if let Some(row) = table.row(&what) {
                row.daytona = Some(r.goodput_bps() / 1e9);
            }
            let what = format!("bulk Daytona→kernel, TAP offload {o}");
            let r =
                measure::bulk(&t.daytona, &t.kernel, to_kernel(), amount).map_err(io_err(&what))?;
            progress(a.json, &what, &table::gbit(r.goodput_bps()));
            if let Some(row) = table.row(&what) {
                row.daytona = Some(r.goodput_bps() / 1e9);
            }
        }
        // Round trips and the connection rate once, on the first TAP.
        if !std::mem::take(&mut first) {
            continue;
        }
        if a.tests.contains(&Test::Rr) {
            let r = measure::round_trips(&t.kernel, &t.daytona, to_daytona(), a.duration)
                .map_err(io_err("kernel↔Daytona round trips"))?;
            progress(
                a.json,
                &format!("1-byte round trip kernel↔Daytona (TAP offload {o})"),
                &format!(
                    "mean {:.1} µs, p99 {:.1} µs ({} samples)",
                    us(r.mean()),
                    us(r.quantile(0.99)),
                    r.samples_ns.len()
                ),
            );
            if let Some(row) = table.row("1-byte round trip, mean") {
                row.daytona = Some(us(r.mean()));
            }
            if let Some(row) = table.row("1-byte round trip, p99") {
                row.daytona = Some(us(r.quantile(0.99)));
            }
        }
        if a.tests.contains(&Test::Cps) {
            let rate = measure::connection_rate(&t.kernel, &t.daytona, to_daytona(), a.duration)
                .map_err(io_err("kernel↔Daytona connection rate"))?;
            progress(
                a.json,
                &format!("connections/s kernel→Daytona (TAP offload {o})"),
                &format!("{rate:.0}"),
            );
            if let Some(row) = table.row("connections per second") {
                row.daytona = Some(rate);
            }
        }
    }
    Ok(())
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
