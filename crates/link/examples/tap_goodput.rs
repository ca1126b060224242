//! Bulk goodput between a Daytona stack on a TAP device and the kernel's
//! TCP (CUBIC), both directions, TAP offloads on and off, next to
//! kernel→kernel over a veth pair from the same run. Needs root; creates
//! and removes its own network namespaces (addresses in 198.18.0.0/15).
//!
//! ```sh
//! cargo run --release -p daytona-link --example tap_goodput -- \
//!     [--bytes 1000MB] [--mtu 1500] [--runs 3] [--hash] \
//!     [--direction to-daytona|to-kernel|both] [--offloads on|off|both] [--no-veth]
//! ```
//!
//! Each cell is the best of `--runs` transfers (first byte to the
//! receiver's end of stream); the CPU column is the least CPU time (user +
//! system) the thread running the Daytona stack spent per byte, which
//! varies less than goodput on a busy machine. `--hash` also checks every transfer byte for
//! byte (costs sender and receiver CPU).

#[path = "../tests/kernel/mod.rs"]
mod kernel;

use daytona_testnet::{set_cubic, Netns, Veth};
use kernel::{Direction, Run};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

struct Args {
    bytes: u64,
    mtu: usize,
    runs: usize,
    hash: bool,
    directions: Vec<Direction>,
    offloads: Vec<bool>,
    veth: bool,
}

fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_uppercase();
    let (num, mult) = if let Some(n) = s.strip_suffix("GB") {
        (n, 1_000_000_000)
    } else if let Some(n) = s.strip_suffix("MB") {
        (n, 1_000_000)
    } else if let Some(n) = s.strip_suffix("KB") {
        (n, 1_000)
    } else {
        (s.as_str(), 1)
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        bytes: 1_000_000_000,
        mtu: 1500,
        runs: 3,
        hash: false,
        directions: vec![Direction::KernelToDaytona, Direction::DaytonaToKernel],
        offloads: vec![true, false],
        veth: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--bytes" => {
                let v = value("--bytes")?;
                a.bytes = parse_bytes(&v)
                    .filter(|b| *b > 0)
                    .ok_or(format!("--bytes {v}: expected a positive size like 500MB"))?;
            }
            "--mtu" => {
                let v = value("--mtu")?;
                a.mtu = v
                    .parse()
                    .ok()
                    .filter(|m| (576..=65_535).contains(m))
                    .ok_or(format!("--mtu {v}: expected 576..=65535"))?;
            }
            "--runs" => {
                let v = value("--runs")?;
                a.runs = v
                    .parse()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or(format!("--runs {v}: expected a positive count"))?;
            }
            "--hash" => a.hash = true,
            "--direction" => {
                let v = value("--direction")?;
                a.directions = match v.as_str() {
                    "to-daytona" => vec![Direction::KernelToDaytona],
                    "to-kernel" => vec![Direction::DaytonaToKernel],
                    "both" => vec![Direction::KernelToDaytona, Direction::DaytonaToKernel],
                    _ => return Err(format!("--direction {v}: to-daytona, to-kernel or both")),
                };
            }
            "--offloads" => {
                let v = value("--offloads")?;
                a.offloads = match v.as_str() {
                    "on" => vec![true],
                    "off" => vec![false],
                    "both" => vec![true, false],
                    _ => return Err(format!("--offloads {v}: on, off or both")),
                };
            }
            "--no-veth" => a.veth = false,
            "-h" | "--help" => {
                return Err(
                    "usage: tap_goodput [--bytes 1000MB] [--mtu 1500] [--runs 3] [--hash] \
                     [--direction to-daytona|to-kernel|both] [--offloads on|off|both] [--no-veth]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other} (try --help)")),
        }
    }
    Ok(a)
}

/// Kernel→kernel over a veth pair between two namespaces (the reference).
fn kernel_to_kernel(bytes: u64, mtu: usize) -> io::Result<f64> {
    let a = Arc::new(Netns::new("dtka")?);
    let b = Arc::new(Netns::new("dtkb")?);
    let (na, nb) = (
        daytona_testnet::unique_name("dtva"),
        daytona_testnet::unique_name("dtvb"),
    );
    let _veth = Veth::new(&a, &na, &b, &nb)?;
    let mtu = mtu.to_string();
    a.exec(&["ip", "link", "set", &na, "mtu", &mtu])?;
    b.exec(&["ip", "link", "set", &nb, "mtu", &mtu])?;
    a.exec(&["ip", "addr", "add", "198.18.3.1/24", "dev", &na])?;
    b.exec(&["ip", "addr", "add", "198.18.3.2/24", "dev", &nb])?;
    let dst = SocketAddrV4::new(Ipv4Addr::new(198, 18, 3, 2), 5001);
    let listener = b.run(move || -> io::Result<TcpListener> {
        let l = TcpListener::bind(dst)?;
        set_cubic(&l)?;
        Ok(l)
    })?;
    let rx = b.thread(move || -> io::Result<(u64, Instant, Instant)> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 18];
        let mut total = 0;
        let mut start = None;
        loop {
            let n = s.read(&mut buf)?;
            start.get_or_insert_with(Instant::now);
            if n == 0 {
                return Ok((total, start.unwrap_or_else(Instant::now), Instant::now()));
            }
            total += n as u64;
        }
    });
    a.run(move || -> io::Result<()> {
        let mut s = TcpStream::connect(dst)?;
        set_cubic(&s)?;
        let buf = vec![0x5au8; 1 << 18];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            s.write_all(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    })?;
    let (total, start, end) = rx
        .join()
        .map_err(|_| io::Error::other("receiver panicked"))??;
    Ok(total as f64 / end.duration_since(start).as_secs_f64() / 1e6)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tap_goodput: {e}");
            return ExitCode::from(2);
        }
    };
    if !daytona_testnet::is_root() {
        eprintln!("tap_goodput: needs root (CAP_NET_ADMIN to create TAP devices and namespaces)");
        return ExitCode::from(2);
    }
    println!(
        "Daytona on a TAP vs the kernel's TCP (cubic): {} MB per transfer, MTU {}, best of {}{}",
        args.bytes / 1_000_000,
        args.mtu,
        args.runs,
        if args.hash { ", hashed" } else { "" }
    );
    println!();
    // The reference first, so every row can be read against it.
    let mut veth: Option<f64> = None;
    if args.veth {
        for _ in 0..args.runs {
            match kernel_to_kernel(args.bytes, args.mtu) {
                Ok(g) => veth = Some(veth.map_or(g, |b: f64| b.max(g))),
                Err(e) => {
                    eprintln!("tap_goodput: kernel → kernel: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    println!("| path                      | offloads | MB/s    | Gbit/s | vs veth | Daytona CPU ns/byte |");
    println!("|---------------------------|----------|---------|--------|---------|---------------------|");
    let vs = |g: f64| veth.map_or("-".to_string(), |v| format!("{:.0}%", 100.0 * g / v));
    for &dir in &args.directions {
        for &offloads in &args.offloads {
            let mut best: Option<f64> = None;
            let mut cpu: Option<f64> = None;
            for i in 0..args.runs {
                let r = Run {
                    offloads,
                    mtu: args.mtu,
                    hash: args.hash,
                    seed: i as u64 + 1,
                    deadline: std::time::Duration::from_secs(300),
                    ..Run::new(dir, args.bytes)
                };
                match kernel::run(&r) {
                    Ok(o) if o.received.0 == args.bytes && (!args.hash || o.received == o.sent) => {
                        let g = o.goodput_mbytes();
                        best = Some(best.map_or(g, |b: f64| b.max(g)));
                        let c = o.daytona_ns_per_byte();
                        cpu = Some(cpu.map_or(c, |b: f64| b.min(c)));
                    }
                    Ok(o) => {
                        eprintln!(
                            "tap_goodput: {dir:?}: received {} of {} bytes or a wrong hash",
                            o.received.0, args.bytes
                        );
                        return ExitCode::FAILURE;
                    }
                    Err(e) => {
                        eprintln!("tap_goodput: {dir:?}, offloads {offloads}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            let name = match dir {
                Direction::KernelToDaytona => "kernel → Daytona (TAP)",
                Direction::DaytonaToKernel => "Daytona → kernel (TAP)",
            };
            let g = best.unwrap_or(0.0);
            println!(
                "| {name:<25} | {:<8} | {g:>7.0} | {:>6.2} | {:>7} | {:>19.3} |",
                if offloads { "on" } else { "off" },
                g * 8.0 / 1000.0,
                vs(g),
                cpu.unwrap_or(0.0)
            );
        }
    }
    if let Some(g) = veth {
        println!(
            "| {:<25} | {:<8} | {g:>7.0} | {:>6.2} | {:>7} | {:>19} |",
            "kernel → kernel (veth)",
            "-",
            g * 8.0 / 1000.0,
            "100%",
            "-"
        );
    }
    ExitCode::SUCCESS
}
