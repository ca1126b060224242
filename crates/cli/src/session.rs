//! `daytona serve` and `daytona connect`: like nc/iperf, over a Daytona
//! stack on the link of your choice. One connection at a time does one of
//! bulk send, bulk receive, echo, or (serve only) answer an HTTP GET with
//! `--bytes` bytes; then progress, goodput and the final `TcpInfo`.

use crate::netstack::{self, StackArgs};
use crate::report::{self, Ticker};
use crate::units;
use crate::workload::{self, Amount};
use daytona_core::tcp::State;
use daytona_runtime::{TcpListener, TcpStream};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Send --bytes (or for --duration) of the --seed stream, then close.
    Send,
    /// Read to end of stream and count (with --verify: check the bytes).
    Recv,
    /// Write back everything read.
    Echo,
    /// Answer one HTTP GET with --bytes bytes of the --seed stream (serve only).
    Http,
}

#[derive(clap::Args, Debug)]
pub struct TransferFlags {
    /// Bytes to send (B, KB, MB, GB, KiB, MiB, GiB); with http, the body size.
    #[arg(long, value_parser = units::parse_size)]
    pub bytes: Option<u64>,
    /// Send for this long instead (us, ms, s). Default: 10s unless --bytes.
    #[arg(long, value_parser = units::parse_duration)]
    pub duration: Option<Duration>,
    /// Received bytes are hashed and checked against the --seed stream
    /// (what `daytona` sends); prints the digest.
    #[arg(long)]
    pub verify: bool,
    /// Seed of the data stream (the 1 MiB testnet pattern, repeated).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
}

impl TransferFlags {
    fn amount(&self, mode: Mode) -> Result<Amount, String> {
        match (self.bytes, self.duration) {
            (Some(_), Some(_)) => Err("give --bytes or --duration, not both".into()),
            (Some(b), None) => Ok(Amount::Bytes(b)),
            (None, Some(d)) if mode == Mode::Http => {
                Err(format!("http mode needs --bytes, not --duration {d:?}"))
            }
            (None, Some(d)) if d.is_zero() => Err("--duration must be positive".into()),
            (None, Some(d)) => Ok(Amount::For(d)),
            (None, None) if mode == Mode::Http => Ok(Amount::Bytes(10_000_000)),
            (None, None) => Ok(Amount::For(Duration::from_secs(10))),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 5001)]
    pub port: u16,
    /// What to do with each connection.
    #[arg(long, value_enum, default_value = "recv")]
    pub mode: Mode,
    /// Connections to serve, one after another, before exiting (0: forever).
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    #[command(flatten)]
    pub transfer: TransferFlags,
}

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// Where to connect: a.b.c.d:port.
    pub target: SocketAddrV4,
    #[command(flatten)]
    pub stack: StackArgs,
    /// What to do on the connection.
    #[arg(long, value_enum, default_value = "send")]
    pub mode: Mode,
    /// Give up connecting after this long (us, ms, s).
    #[arg(long, default_value = "10s", value_parser = units::parse_duration)]
    pub connect_timeout: Duration,
    #[command(flatten)]
    pub transfer: TransferFlags,
}

pub fn serve(a: &ServeArgs) -> Result<(), String> {
    let amount = a.transfer.amount(a.mode)?;
    let net = netstack::start(&a.stack, Some(a.port))?;
    let listener = TcpListener::bind(&net.rt, SocketAddrV4::new(net.addr, a.port))
        .map_err(|e| format!("listening on {}:{}: {e}", net.addr, a.port))?;
    println!(
        "daytona serve: listening on {}:{} ({}), mode {:?}",
        net.addr, a.port, net.description, a.mode
    );
    let _ = io::stdout().flush();
    let mut served = 0u64;
    while a.count == 0 || served < a.count {
        let (mut s, peer) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        println!("connection from {peer}");
        served += 1;
        let r = session(&mut s, a.mode, amount, &a.transfer);
        let _ = io::stdout().flush();
        if a.count == 1 {
            return r;
        }
        if let Err(e) = r {
            eprintln!("daytona: {e}");
        }
    }
    Ok(())
}

pub fn connect(a: &ConnectArgs) -> Result<(), String> {
    if a.mode == Mode::Http {
        return Err("http mode is for serve; connect with curl instead".into());
    }
    let amount = a.transfer.amount(a.mode)?;
    let net = netstack::start(&a.stack, None)?;
    println!(
        "daytona connect: {} → {} ({}), mode {:?}",
        net.addr, a.target, net.description, a.mode
    );
    let mut s = TcpStream::connect_timeout(&net.rt, &SocketAddr::V4(a.target), a.connect_timeout)
        .map_err(|e| format!("connecting to {}: {e}", a.target))?;
    session(&mut s, a.mode, amount, &a.transfer)
}

/// Closes our direction and waits (bounded) for the peer to close its
/// own, so that everything sent has been acknowledged.
fn finish_sending(s: &mut TcpStream) -> io::Result<()> {
    s.shutdown(Shutdown::Write)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    wait_acknowledged(s);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The peer did not close in time: the data was still delivered
            // as far as TCP knows; report the numbers anyway.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits (up to 10 s) until everything sent, FIN included, has been
/// acknowledged: the connection is in FIN-WAIT-2, TIME-WAIT or CLOSED.
/// Woken by the connection's events, so it does not poll. (When the peer
/// closed first — echo — its close says nothing about our data.)
fn wait_acknowledged(s: &TcpStream) {
    let events = s.events(64);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match s.state() {
            Ok(State::FinWait2 | State::TimeWait | State::Closed) | Err(_) => return,
            Ok(_) => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let _ = events.next_timeout(left);
    }
}

/// Reads an HTTP request head (up to 16 KiB); returns its first line.
fn read_request(s: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too long",
            ));
        }
        let n = s.read(&mut b)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the request was complete",
            ));
        }
        head.extend_from_slice(&b[..n]);
    }
    Ok(String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string())
}

fn session(s: &mut TcpStream, mode: Mode, amount: Amount, t: &TransferFlags) -> Result<(), String> {
    let meter = Arc::new(AtomicU64::new(0));
    let label = format!("{mode:?}").to_lowercase();
    let start = Instant::now();
    let ticker = Ticker::start(label, meter.clone(), t.quiet);
    let e = |what: &'static str| move |e: io::Error| format!("{what}: {e}");
    let mut verdict = Ok(());
    let (what, bytes) = match mode {
        Mode::Send => {
            let n =
                workload::send(s, amount, &workload::block(t.seed), &meter).map_err(e("send"))?;
            finish_sending(s).map_err(e("closing"))?;
            ("sent", n)
        }
        Mode::Recv => {
            let r = workload::receive(s, &meter, t.verify).map_err(e("receive"))?;
            if let Some((len, hash)) = r.digest {
                let exact = workload::stream_digest(t.seed, len) == (len, hash);
                println!("digest            {len} bytes, {hash:032x}");
                println!("byte-exact        {}", if exact { "yes" } else { "NO" });
                if !exact {
                    verdict = Err(format!(
                        "the {len} bytes received are not the seed-{} stream",
                        t.seed
                    ));
                }
            }
            ("received", r.bytes)
        }
        Mode::Echo => {
            let n = workload::echo(s, &meter).map_err(e("echo"))?;
            finish_sending(s).map_err(e("closing"))?;
            ("echoed", n)
        }
        Mode::Http => {
            let line = read_request(s).map_err(e("request"))?;
            println!("request           {line}");
            if !line.starts_with("GET ") {
                let _ = s.write_all(
                    b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return Err(format!("not a GET: {line:?}"));
            }
            let Amount::Bytes(len) = amount else {
                return Err("http mode needs --bytes".into());
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            );
            s.write_all(head.as_bytes()).map_err(e("send"))?;
            let n =
                workload::send(s, amount, &workload::block(t.seed), &meter).map_err(e("send"))?;
            finish_sending(s).map_err(e("closing"))?;
            ("sent", n)
        }
    };
    let elapsed = start.elapsed();
    drop(ticker);
    println!(
        "{what:<17} {bytes} bytes in {:.3} s, goodput {}",
        elapsed.as_secs_f64(),
        report::rate(bytes as f64 * 8.0 / elapsed.as_secs_f64().max(1e-9))
    );
    match s.info() {
        Ok(info) => {
            println!("TcpInfo:");
            report::print_info(&info);
        }
        Err(e) => println!("TcpInfo: unavailable ({e})"),
    }
    verdict
}
