//! The output directory: the event log, per-flow time series and the
//! summary as CSV, then the capture and the plots.

use super::{pcap, plots};
use daytona_sim::scenario::ScenarioReport;
use daytona_sim::workload::FlowReport;
use daytona_sim::LogEntry;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Writes every file; returns their names.
pub fn write_all(dir: &Path, r: &ScenarioReport) -> io::Result<Vec<String>> {
    let mut files = vec![events(dir, r)?];
    for f in &r.flows {
        files.push(series(dir, f)?);
    }
    files.push(summary(dir, r)?);
    files.push(pcap::write(dir, r)?);
    files.extend(plots::write_all(dir, r)?);
    Ok(files)
}

fn create(dir: &Path, name: &str) -> io::Result<BufWriter<File>> {
    Ok(BufWriter::new(File::create(dir.join(name))?))
}

/// `events.jsonl`: every stack and link event, one JSON object a line,
/// in virtual-time order (`time_us`; the run starts at 1 000 000).
fn events(dir: &Path, r: &ScenarioReport) -> io::Result<String> {
    let name = "events.jsonl";
    let mut lines: Vec<(u64, serde_json::Value)> = Vec::with_capacity(r.log.len());
    for e in &r.log {
        match e {
            LogEntry::Stack { host, event } => {
                let mut v = serde_json::to_value(event).map_err(io::Error::other)?;
                if let Some(o) = v.as_object_mut() {
                    let host = r.host_names.get(host.0).cloned().unwrap_or_default();
                    o.insert("host".into(), host.into());
                }
                lines.push((event.time.total_micros(), v));
            }
            LogEntry::Link { link, event } => {
                let v = serde_json::json!({
                    "time_us": event.time.total_micros(),
                    "link": r.link_names.get(link.0).cloned().unwrap_or_default(),
                    "event": event.kind.name(),
                    "len": event.len,
                });
                lines.push((event.time.total_micros(), v));
            }
        }
    }
    // Stable: events of the same instant keep the order they happened in.
    lines.sort_by_key(|(t, _)| *t);
    let mut w = create(dir, name)?;
    for (_, v) in lines {
        serde_json::to_writer(&mut w, &v).map_err(io::Error::other)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(name.into())
}

fn opt(v: Option<u64>) -> String {
    v.map_or(String::new(), |x| x.to_string())
}

/// `flowN.csv`: the sender's state on the sampling grid.
fn series(dir: &Path, f: &FlowReport) -> io::Result<String> {
    let name = format!("{}.csv", f.name);
    let mut w = create(dir, &name)?;
    writeln!(
        w,
        "time_s,cwnd,ssthresh,srtt_us,rttvar_us,bytes_in_flight,delivery_rate_bps,pacing_rate_bps,bytes_acked,total_retrans,throughput_bps"
    )?;
    let mut prev: Option<(f64, u64)> = None;
    for s in &f.samples {
        let t = s.time.as_secs_f64();
        let throughput = match prev {
            Some((pt, pa)) if t > pt => {
                Some(((s.bytes_acked.saturating_sub(pa)) as f64 * 8.0 / (t - pt)) as u64)
            }
            _ => None,
        };
        prev = Some((t, s.bytes_acked));
        let ssthresh = (s.ssthresh != u32::MAX).then_some(u64::from(s.ssthresh));
        writeln!(
            w,
            "{t:.6},{},{},{},{},{},{},{},{},{},{}",
            s.cwnd,
            opt(ssthresh),
            s.srtt.as_micros(),
            s.rttvar.as_micros(),
            s.bytes_in_flight,
            opt(s.delivery_rate.map(|r| r * 8)),
            opt(s.pacing_rate.map(|r| r * 8)),
            s.bytes_acked,
            s.total_retrans,
            opt(throughput),
        )?;
    }
    w.flush()?;
    Ok(name)
}

/// `summary.csv`: the table the command printed, one row per flow.
fn summary(dir: &Path, r: &ScenarioReport) -> io::Result<String> {
    let name = "summary.csv";
    let mut w = create(dir, name)?;
    writeln!(
        w,
        "flow,cc,start_s,bytes,goodput_bps,retransmissions,rtos,recoveries,rtt_min_us,rtt_median_us,rtt_p99_us,completion_s,byte_exact"
    )?;
    let us = |d: Option<daytona_core::time::Duration>| opt(d.map(|d| d.as_micros() as u64));
    for f in &r.flows {
        writeln!(
            w,
            "{},{},{:.6},{},{:.0},{},{},{},{},{},{},{},{}",
            f.name,
            f.cc,
            f.start.as_secs_f64(),
            f.bytes,
            f.goodput_bps(),
            f.retransmissions,
            f.rtos,
            f.recoveries,
            us(f.rtt_quantile(0.0)),
            us(f.rtt_quantile(0.5)),
            us(f.rtt_quantile(0.99)),
            f.completion
                .map_or(String::new(), |c| format!("{:.6}", c.as_secs_f64())),
            f.byte_exact
        )?;
    }
    w.flush()?;
    Ok(name.into())
}
