//! What serve, connect and demo print: progress while bytes move, and
//! the connection's final `TcpInfo`.

use daytona_core::observe::TcpInfo;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `1.23 Gbit/s` / `456.7 Mbit/s`.
pub fn rate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2} Gbit/s", bps / 1e9)
    } else {
        format!("{:.1} Mbit/s", bps / 1e6)
    }
}

/// Prints the bytes counted by `meter` once a second to stderr until
/// dropped.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    pub fn start(label: String, meter: Arc<AtomicU64>, quiet: bool) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = (!quiet).then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut last = 0u64;
                let mut next = Duration::from_secs(1);
                while !stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(next.saturating_sub(start.elapsed()));
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    if start.elapsed() < next {
                        continue;
                    }
                    let now = meter.load(Ordering::Relaxed);
                    eprintln!(
                        "{label} {:>6.1} s  {:>10.1} MB  {}",
                        next.as_secs_f64(),
                        now as f64 / 1e6,
                        rate((now - last) as f64 * 8.0)
                    );
                    last = now;
                    next += Duration::from_secs(1);
                }
            })
        });
        Ticker { stop, handle }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

pub fn print_info(i: &TcpInfo) {
    let rows: Vec<(&str, String)> = vec![
        ("state", i.state.to_string()),
        ("ca_state", format!("{:?}", i.ca_state)),
        ("congestion_control", i.congestion_control.to_string()),
        (
            "snd_mss / rcv_mss",
            format!("{} / {}", i.snd_mss, i.rcv_mss),
        ),
        ("snd_cwnd", i.snd_cwnd.to_string()),
        (
            "snd_ssthresh",
            if i.snd_ssthresh == u32::MAX {
                "inf".into()
            } else {
                i.snd_ssthresh.to_string()
            },
        ),
        ("rtt / rttvar", format!("{:?} / {:?}", i.rtt, i.rttvar)),
        ("min_rtt", format!("{:?}", i.min_rtt)),
        ("rto", format!("{:?}", i.rto)),
        (
            "options",
            format!(
                "ts={} sack={} wscale={} ({}/{})",
                i.options.timestamps,
                i.options.sack,
                i.options.window_scale,
                i.snd_wscale,
                i.rcv_wscale
            ),
        ),
        (
            "bytes_sent / acked",
            format!("{} / {}", i.bytes_sent, i.bytes_acked),
        ),
        ("bytes_retrans", i.bytes_retrans.to_string()),
        (
            "segs_out / segs_in",
            format!("{} / {}", i.segs_out, i.segs_in),
        ),
        ("total_retrans", i.total_retrans.to_string()),
        (
            "rto_count / fast_retransmits",
            format!("{} / {}", i.rto_count, i.fast_retransmits),
        ),
        (
            "delivery_rate",
            i.delivery_rate.map_or("-".into(), |r| {
                format!("{:.2} Mbit/s", r as f64 * 8.0 / 1e6)
            }),
        ),
        (
            "busy / rwnd_limited / sndbuf_limited",
            format!(
                "{:?} / {:?} / {:?}",
                i.busy_time, i.rwnd_limited, i.sndbuf_limited
            ),
        ),
    ];
    for (k, v) in rows {
        println!("  {k:<38} {v}");
    }
}
