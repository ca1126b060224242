//! Human units, shared by scenario files and the command line: sizes
//! (`20MB`, `1MiB`), rates (`100mbit`, `1gbit`), durations (`40ms`, `2s`),
//! percentages (`1%`) and queue sizes (`1bdp`, `64KB`, `100pkt`).

use daytona_core::time::Duration;

fn split(s: &str) -> (f64, String) {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    (
        num.parse::<f64>().unwrap_or(f64::NAN),
        unit.trim().to_ascii_lowercase(),
    )
}

/// Bytes: plain, K/M/G (powers of 1000, also KB/MB/GB) or KiB/MiB/GiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (n, unit) = split(s);
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "unknown size unit in {s:?} (use B, KB, MB, GB, KiB, MiB, GiB)"
            ))
        }
    };
    let v = n * mult;
    if !v.is_finite() || v < 1.0 {
        return Err(format!("size {s:?} must be at least 1 byte"));
    }
    Ok(v as u64)
}

/// Bits per second: `100mbit`, `1gbit`, `500kbit`, `10mbps` (bits), plain bit/s.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let (n, unit) = split(s);
    let mult: f64 = match unit.as_str() {
        "" | "bit" | "bps" => 1.0,
        "kbit" | "kbps" => 1e3,
        "mbit" | "mbps" => 1e6,
        "gbit" | "gbps" => 1e9,
        _ => return Err(format!("unknown rate unit in {s:?} (use kbit, mbit, gbit)")),
    };
    let v = n * mult;
    if !v.is_finite() || v < 1.0 {
        return Err(format!("rate {s:?} must be positive"));
    }
    Ok(v as u64)
}

/// `10ms`, `2s`, `500us`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = split(s);
    let micros = match unit.as_str() {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => return Err(format!("unknown time unit in {s:?} (use us, ms, s)")),
    };
    if !micros.is_finite() || micros < 0.0 {
        return Err(format!("duration {s:?} is not valid"));
    }
    Ok(Duration::from_micros(micros as u64))
}

/// `1%` or `1` (both one percent) → 0.01; must be within 0..=100 %.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%');
    let v: f64 = t
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("{s} is not within 0%..100%"));
    }
    Ok(v / 100.0)
}

/// A queue limit: bytes, packets, or a multiple of the path's
/// bandwidth-delay product.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QueueSize {
    Bytes(u64),
    Packets(u64),
    Bdp(f64),
}

impl QueueSize {
    /// The limit in bytes or packets, given the path's BDP in bytes; at
    /// least one packet's worth (`mtu`).
    pub fn resolve(self, bdp_bytes: u64, mtu: usize) -> (Option<usize>, Option<usize>) {
        match self {
            QueueSize::Bytes(b) => (Some(b as usize), None),
            QueueSize::Packets(p) => (None, Some(p as usize)),
            QueueSize::Bdp(k) => (Some(((bdp_bytes as f64 * k) as usize).max(mtu)), None),
        }
    }
}

/// `1bdp`, `0.5bdp`, `100pkt` (or `100p`), or a size (`64KB`).
pub fn parse_queue(s: &str) -> Result<QueueSize, String> {
    let (n, unit) = split(s);
    match unit.as_str() {
        "bdp" if n.is_finite() && n > 0.0 => Ok(QueueSize::Bdp(n)),
        "bdp" => Err(format!("queue {s:?}: the BDP multiple must be positive")),
        "p" | "pkt" | "pkts" | "packets" if n.is_finite() && n >= 1.0 => {
            Ok(QueueSize::Packets(n as u64))
        }
        "p" | "pkt" | "pkts" | "packets" => {
            Err(format!("queue {s:?} must hold at least one packet"))
        }
        _ => parse_size(s)
            .map(QueueSize::Bytes)
            .map_err(|e| format!("{e}; or use a BDP multiple (1bdp) or packets (100pkt)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("20MB"), Ok(20_000_000));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("2.5k"), Ok(2500));
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn rates_durations_percentages() {
        assert_eq!(parse_rate("100mbit"), Ok(100_000_000));
        assert_eq!(parse_rate("1Gbit"), Ok(1_000_000_000));
        assert!(parse_rate("fast").is_err());
        assert_eq!(parse_duration("40ms"), Ok(Duration::from_millis(40)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("3 fortnights").is_err());
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("0.5"), Ok(0.005));
        assert!(parse_percent("140%").unwrap_err().contains("140%"));
        assert!(parse_percent("lots").is_err());
    }

    #[test]
    fn queues() {
        assert_eq!(parse_queue("1bdp"), Ok(QueueSize::Bdp(1.0)));
        assert_eq!(parse_queue("100pkt"), Ok(QueueSize::Packets(100)));
        assert_eq!(parse_queue("64KB"), Ok(QueueSize::Bytes(64_000)));
        assert!(parse_queue("-1bdp").is_err());
        assert!(parse_queue("lots").is_err());
        assert_eq!(
            QueueSize::Bdp(0.5).resolve(500_000, 1500),
            (Some(250_000), None)
        );
        assert_eq!(QueueSize::Bdp(0.001).resolve(500_000, 1500).0, Some(1500));
    }
}
