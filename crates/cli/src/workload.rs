//! What `serve`, `connect`, `demo` and `bench` do with a connection, over
//! anything that reads and writes (a kernel `std::net` socket or a Daytona
//! stream): bulk send, bulk receive, echo, and 1-byte request/response.
//!
//! Bulk data is the 1 MiB `daytona_testnet::pattern` block of a seed,
//! repeated: cheap to send at line rate, and a receiver (or a test) can
//! check it byte for byte with [`stream_digest`].

use daytona_testnet::{pattern, Digest};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Length of the repeated data block.
pub const BLOCK: usize = 1 << 20;

/// How much a bulk sender sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Bytes(u64),
    For(Duration),
}

impl Amount {
    pub fn describe(&self) -> String {
        match self {
            Amount::Bytes(b) => format!("{b} bytes"),
            Amount::For(d) => format!("{:.1} s", d.as_secs_f64()),
        }
    }
}

/// The data block of `seed`.
pub fn block(seed: u64) -> Vec<u8> {
    pattern(seed, BLOCK)
}

/// (bytes, hash) of the first `len` bytes of the stream of `seed`.
pub fn stream_digest(seed: u64, len: u64) -> (u64, u128) {
    let b = block(seed);
    let mut d = Digest::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        d.update(&b[..n]);
        left -= n as u64;
    }
    d.finish()
}

/// Sends the repeated `block` until `amount` is reached; counts progress
/// in `meter`. Returns the bytes sent. Does not shut the stream down.
pub fn send(
    w: &mut (impl Write + ?Sized),
    amount: Amount,
    block: &[u8],
    meter: &AtomicU64,
) -> io::Result<u64> {
    const CHUNK: usize = 128 * 1024;
    let start = Instant::now();
    let mut sent = 0u64;
    loop {
        let want = match amount {
            Amount::Bytes(total) if sent >= total => break,
            Amount::Bytes(total) => (total - sent).min(CHUNK as u64) as usize,
            Amount::For(d) if start.elapsed() >= d => break,
            Amount::For(_) => CHUNK,
        };
        let off = (sent % block.len() as u64) as usize;
        let n = want.min(block.len() - off);
        let wrote = w.write(&block[off..off + n])?;
        if wrote == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the connection accepted no more data",
            ));
        }
        sent += wrote as u64;
        meter.fetch_add(wrote as u64, Ordering::Relaxed);
    }
    w.flush()?;
    Ok(sent)
}

/// What a bulk receiver saw.
#[derive(Debug, Clone)]
pub struct Received {
    pub bytes: u64,
    /// From the first byte to end of stream.
    pub elapsed: Duration,
    pub digest: Option<(u64, u128)>,
}

impl Received {
    pub fn goodput_bps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Reads to end of stream, hashing when `digest` is set.
pub fn receive(
    r: &mut (impl Read + ?Sized),
    meter: &AtomicU64,
    digest: bool,
) -> io::Result<Received> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut d = digest.then(Digest::new);
    let mut bytes = 0u64;
    let mut first = None;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        first.get_or_insert_with(Instant::now);
        bytes += n as u64;
        meter.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(d) = d.as_mut() {
            d.update(&buf[..n]);
        }
    }
    Ok(Received {
        bytes,
        elapsed: first.map_or(Duration::ZERO, |t| t.elapsed()),
        digest: d.map(|d| d.finish()),
    })
}

/// Writes back everything read until end of stream; returns the bytes.
pub fn echo<S: Read + Write + ?Sized>(s: &mut S, meter: &AtomicU64) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        s.write_all(&buf[..n])?;
        total += n as u64;
        meter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Round-trip times of 1-byte requests, each answered by one byte.
#[derive(Debug, Clone, Default)]
pub struct RoundTrips {
    pub samples_ns: Vec<u64>,
}

impl RoundTrips {
    pub fn mean(&self) -> Duration {
        let n = self.samples_ns.len().max(1) as u64;
        Duration::from_nanos(self.samples_ns.iter().sum::<u64>() / n)
    }

    /// The `q` quantile (0..=1), nearest rank.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut s = self.samples_ns.clone();
        s.sort_unstable();
        if s.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
        Duration::from_nanos(s[rank - 1])
    }
}

/// Sends 1-byte requests and waits for each 1-byte answer, for `d`
/// (after `warmup` unrecorded ones).
pub fn round_trips<S: Read + Write + ?Sized>(
    s: &mut S,
    d: Duration,
    warmup: usize,
) -> io::Result<RoundTrips> {
    let mut out = RoundTrips::default();
    let mut b = [0u8; 1];
    let start = Instant::now();
    let mut i = 0usize;
    while start.elapsed() < d {
        let t = Instant::now();
        s.write_all(&[i as u8])?;
        s.read_exact(&mut b)?;
        if b[0] != i as u8 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the echo answered with a different byte",
            ));
        }
        if i >= warmup {
            out.samples_ns.push(t.elapsed().as_nanos() as u64);
        }
        i += 1;
    }
    Ok(out)
}
