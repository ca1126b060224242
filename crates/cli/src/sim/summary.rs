//! The summary table printed after a run.

use daytona_core::time::Duration;
use daytona_link::Aqm;
use daytona_sim::scenario::{bdp_bytes, Scenario, ScenarioReport, Topology};
use std::fmt::Write;

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
}

fn rate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.3} Gbit/s", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.2} Mbit/s", bps / 1e6)
    } else {
        format!("{:.1} kbit/s", bps / 1e3)
    }
}

/// One line describing the path.
fn describe(s: &Scenario) -> String {
    let f = &s.forward;
    let cap = f.capacity_bps().unwrap_or(0);
    let capacity = match (&f.trace, f.rate_bps) {
        (Some(_), _) => format!("trace ≈ {}", rate(cap as f64)),
        (None, Some(r)) => rate(r as f64),
        (None, None) => "unlimited".into(),
    };
    let bdp = bdp_bytes(cap, s.rtt);
    let queue = match (f.queue_bytes, f.queue_packets) {
        (Some(b), _) if bdp > 0 => format!("{b} B ({:.2} BDP)", b as f64 / bdp as f64),
        (Some(b), _) => format!("{b} B"),
        (None, Some(p)) => format!("{p} packets"),
        (None, None) => "unlimited".into(),
    };
    let aqm = match f.aqm {
        Aqm::DropTail => "drop-tail",
        Aqm::CoDel(_) => "CoDel",
    };
    let topo = match s.topology {
        Topology::Dumbbell => "dumbbell",
        Topology::PointToPoint => "point-to-point",
    };
    let mut extra = String::new();
    for (name, p) in [
        ("loss", f.loss),
        ("ack loss", s.reverse.loss),
        ("reorder", f.reorder),
        ("duplicate", f.duplicate),
        ("corrupt", f.corrupt),
    ] {
        if p > 0.0 {
            extra += &format!(", {name} {}%", p * 100.0);
        }
    }
    if f.burst.is_some() {
        extra += ", bursty loss";
    }
    let back = s.reverse.capacity_bps();
    if back != f.capacity_bps() {
        extra += &format!(
            ", ACK path {}",
            back.map_or("unlimited".into(), |b| rate(b as f64))
        );
    }
    format!(
        "{topo}, {capacity}, RTT {} ms, queue {queue} {aqm}{extra}, seed {}",
        s.rtt.as_millis(),
        s.seed
    )
}

/// The summary as text.
pub fn render(s: &Scenario, r: &ScenarioReport, wall: std::time::Duration) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail.
    macro_rules! println {
        () => { o.push('\n') };
        ($($t:tt)*) => {{ let _ = writeln!(o, $($t)*); }};
    }
    println!("daytona sim: {}", describe(s));
    println!();
    let header = [
        "flow",
        "cc",
        "workload",
        "goodput",
        "retrans",
        "RTOs",
        "rtt min",
        "median",
        "p99 ms",
        "completion",
        "exact",
    ];
    let rows: Vec<[String; 11]> = r
        .flows
        .iter()
        .map(|f| {
            [
                f.name.clone(),
                f.cc.clone(),
                f.workload.describe(),
                rate(f.goodput_bps()),
                f.retransmissions.to_string(),
                f.rtos.to_string(),
                ms(f.rtt_quantile(0.0)),
                ms(f.rtt_quantile(0.5)),
                ms(f.rtt_quantile(0.99)),
                f.completion
                    .map_or("unfinished".into(), |c| format!("{:.3} s", c.as_secs_f64())),
                if f.byte_exact { "yes" } else { "NO" }.into(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("  {}", parts.join("  ").trim_end())
    };
    println!("{}", line(header.to_vec()));
    for row in &rows {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
    println!();
    if r.flows.len() > 1 {
        if let Some(j) = r.jain_index() {
            println!(
                "  Jain's fairness index   {j:.3} over {} flows",
                r.flows.len()
            );
        }
    }
    if let Some(u) = r.utilisation() {
        println!("  link utilisation        {:.1} %", u * 100.0);
    }
    let b = &r.forward;
    println!(
        "  bottleneck              {} frames, {} queue drops, {} AQM drops, {} lost, {} corrupted, max queue {} B",
        b.frames, b.queue_drops, b.aqm_drops, b.lost, b.corrupted, b.max_queue_bytes
    );
    if r.events_dropped > 0 {
        println!(
            "  WARNING                 {} stack events were dropped (event queues full)",
            r.events_dropped
        );
    }
    let virt = r.elapsed.as_secs_f64();
    println!(
        "  virtual time            {virt:.3} s in {:.3} s wall ({:.1}x real time, {} steps)",
        wall.as_secs_f64(),
        virt / wall.as_secs_f64().max(1e-9),
        r.steps
    );
    o
}
