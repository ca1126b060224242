//! Two Daytona runtimes in one process over a socket-pair link: an echo
//! server and a client measuring 1-byte request/response round trips (and
//! optionally bulk goodput), next to the kernel's TCP over loopback.
//!
//! ```sh
//! cargo run --release -p daytona-runtime --example echo
//! cargo run --release -p daytona-runtime --example echo -- --count 20000 --busy-poll 50
//! cargo run --release -p daytona-runtime --example echo -- --jiffies --bulk 200
//! ```
//!
//! Options: `--count N` round trips (default 10000), `--busy-poll US`,
//! `--jiffies`, `--bulk MB` (also time a one-way transfer), `--no-kernel`.

use daytona_link::SocketPairLink;
use daytona_runtime::{StackBuilder, TcpListener, TcpStream, TimerMode};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

struct Opts {
    count: usize,
    busy_poll: Option<Duration>,
    jiffies: bool,
    bulk_mb: usize,
    kernel: bool,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        count: 10_000,
        busy_poll: None,
        jiffies: false,
        bulk_mb: 0,
        kernel: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--count" => o.count = num("--count")?.max(1) as usize,
            "--busy-poll" => o.busy_poll = Some(Duration::from_micros(num("--busy-poll")?)),
            "--bulk" => o.bulk_mb = num("--bulk")? as usize,
            "--jiffies" => o.jiffies = true,
            "--no-kernel" => o.kernel = false,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

/// Runs `count` 1-byte round trips; returns the sorted RTTs.
fn ping_pong(c: &mut impl ReadWrite, count: usize) -> io::Result<Vec<Duration>> {
    let mut rtts = Vec::with_capacity(count);
    let mut b = [0u8; 1];
    for i in 0..count {
        let t = Instant::now();
        c.write_all(&[i as u8])?;
        c.read_exact(&mut b)?;
        rtts.push(t.elapsed());
    }
    rtts.sort_unstable();
    Ok(rtts)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn report(name: &str, rtts: &[Duration]) {
    let mean = rtts.iter().sum::<Duration>() / rtts.len() as u32;
    let pct = |p: f64| rtts[((rtts.len() - 1) as f64 * p) as usize];
    println!(
        "{name:<28} mean {:>7.1} µs   p50 {:>7.1} µs   p99 {:>7.1} µs   ({} round trips)",
        mean.as_secs_f64() * 1e6,
        pct(0.5).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        rtts.len()
    );
}

fn echo_loop(mut s: impl Read + Write) {
    let mut buf = [0u8; 64 * 1024];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("echo: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&o) {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}

fn run(o: &Opts) -> io::Result<()> {
    let a_ip = Ipv4Addr::new(198, 18, 0, 1);
    let b_ip = Ipv4Addr::new(198, 18, 0, 2);
    let (la, lb) = SocketPairLink::pair(1500)?;
    let mode = if o.jiffies {
        TimerMode::Jiffies
    } else {
        TimerMode::HighResolution
    };
    let build = |ip, link| {
        StackBuilder::new()
            .addr(ip, 24)
            .timer_mode(mode)
            .busy_poll(o.busy_poll)
            .link(link)
            .build()
    };
    let a = build(a_ip, la)?;
    let b = build(b_ip, lb)?;
    let listener = TcpListener::bind(&b, SocketAddrV4::new(b_ip, 7))?;
    let server = std::thread::spawn(move || {
        for s in listener.incoming() {
            match s {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    std::thread::spawn(move || echo_loop(s));
                }
                Err(_) => break,
            }
        }
    });
    let mut c = TcpStream::connect(&a, SocketAddrV4::new(b_ip, 7))?;
    c.set_nodelay(true)?;
    ping_pong(&mut c, o.count.min(1000))?; // warm-up
    let label = format!(
        "daytona ({}{})",
        if o.jiffies { "jiffies" } else { "hires" },
        o.busy_poll
            .map(|d| format!(", busy-poll {} µs", d.as_micros()))
            .unwrap_or_default()
    );
    report(&label, &ping_pong(&mut c, o.count)?);
    if o.bulk_mb > 0 {
        let c2 = TcpStream::connect(&a, SocketAddrV4::new(b_ip, 7))?;
        bulk("daytona bulk (echoed)", c2, o.bulk_mb)?;
    }
    let info = c.info()?;
    println!(
        "  client srtt {:?}, segs out {}, retrans {}",
        info.rtt, info.segs_out, info.total_retrans
    );
    if o.kernel {
        // The link's own floor: two threads ping-ponging one byte over an
        // AF_UNIX datagram pair, blocking, no TCP at all.
        let (x, y) = std::os::unix::net::UnixDatagram::pair()?;
        let n = o.count + o.count.min(1000);
        let peer = std::thread::spawn(move || -> io::Result<()> {
            let mut b = [0u8; 1];
            for _ in 0..n {
                y.recv(&mut b)?;
                y.send(&b)?;
            }
            Ok(())
        });
        let mut rtts = Vec::with_capacity(n);
        let mut b = [0u8; 1];
        for _ in 0..n {
            let t = Instant::now();
            x.send(&b)?;
            x.recv(&mut b)?;
            rtts.push(t.elapsed());
        }
        let _ = peer.join();
        let mut rtts = rtts.split_off(n - o.count);
        rtts.sort_unstable();
        report("AF_UNIX pair, no TCP", &rtts);
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        // Accepted sockets inherit the listener's controller.
        rustix::net::sockopt::set_tcp_congestion(&l, "cubic")?;
        let port = l.local_addr()?.port();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let _ = s.set_nodelay(true);
                std::thread::spawn(move || echo_loop(s));
            }
        });
        let mut k = std::net::TcpStream::connect(("127.0.0.1", port))?;
        k.set_nodelay(true)?;
        // Name the kernel's controller (its default here is BBR); for a
        // 1-byte ping-pong it hardly matters, but the comparison is fixed.
        rustix::net::sockopt::set_tcp_congestion(&k, "cubic")?;
        ping_pong(&mut k, o.count.min(1000))?;
        report("kernel TCP over loopback", &ping_pong(&mut k, o.count)?);
    }
    drop(c);
    drop(a);
    drop(b);
    let _ = server.join();
    Ok(())
}

/// Sends `mb` MiB through the echo server and reads it back; prints the
/// goodput of the round trip.
fn bulk(name: &str, c: TcpStream, mb: usize) -> io::Result<()> {
    let total = mb << 20;
    let w = c.try_clone()?;
    let t = Instant::now();
    let writer = std::thread::spawn(move || -> io::Result<()> {
        let chunk = vec![0x5au8; 64 * 1024];
        let mut w = w;
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk.len());
            w.write_all(&chunk[..n])?;
            left -= n;
        }
        w.shutdown(std::net::Shutdown::Write)
    });
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let mut r = &c;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    writer
        .join()
        .map_err(|_| io::Error::other("writer panicked"))??;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{name:<28} {:.0} MiB each way in {:.2} s: {:.2} Gbit/s each way",
        got as f64 / (1 << 20) as f64,
        secs,
        got as f64 * 8.0 / secs / 1e9
    );
    Ok(())
}
