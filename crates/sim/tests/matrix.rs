//! The impairment matrix: loss {0, 1%, 10%, 30%} × reordering ×
//! duplication × corruption × tiny buffers × zero windows. Every transfer
//! must complete, byte-exact, with equal hashes at both ends. Harsher
//! cells move fewer bytes so the whole matrix stays fast on virtual time.

use daytona_core::cc::CcRegistry;
use daytona_core::time::Duration;
use daytona_link::Impairment;
use daytona_sim::scenario::{FlowDef, Scenario, Topology};
use daytona_sim::workload::Workload;

#[derive(Debug, Clone, Copy)]
struct Cell {
    loss: f64,
    reorder: bool,
    duplicate: bool,
    corrupt: bool,
    tiny_buffers: bool,
    zero_windows: bool,
}

fn path(c: &Cell, loss: f64) -> Impairment {
    Impairment {
        rate_bps: Some(20_000_000),
        // Tiny buffers: a three-packet bottleneck queue.
        queue_packets: Some(if c.tiny_buffers { 3 } else { 100 }),
        loss,
        reorder: if c.reorder { 0.05 } else { 0.0 },
        reorder_delay: Duration::from_millis(3),
        duplicate: if c.duplicate { 0.05 } else { 0.0 },
        corrupt: if c.corrupt { 0.02 } else { 0.0 },
        ..Impairment::default()
    }
}

fn run_cell(c: Cell, seed: u64) -> Result<(), String> {
    let bytes = match c.loss {
        0.0 => 1_000_000,
        l if l <= 0.01 => 300_000,
        l if l <= 0.1 => 100_000,
        // A slow reader needs enough data to fill its buffer between
        // reads even when most segments are lost.
        _ if c.zero_windows => 40_000,
        _ => 20_000,
    };
    let buffer = match (c.tiny_buffers, c.zero_windows) {
        // Four full segments (MSS 1448 with timestamps): a slow reader's
        // buffer fills exactly and the window closes to zero.
        (_, true) => Some(4 * 1448),
        (true, false) => Some(8192),
        (false, false) => None,
    };
    let s = Scenario {
        seed,
        topology: Topology::PointToPoint,
        rtt: Duration::from_millis(10),
        // Loss on the data path, half as much on the ACK path.
        forward: path(&c, c.loss),
        reverse: path(&c, c.loss / 2.0),
        flows: vec![FlowDef {
            workload: Workload::Bulk { bytes },
            buffer,
            read_interval: c.zero_windows.then_some(Duration::from_millis(100)),
            ..FlowDef::default()
        }],
        time_limit: Duration::from_secs(3600),
        sample_interval: None,
        ..Scenario::default()
    };
    let r = s
        .run(&CcRegistry::with_builtin(), &mut |_| {})
        .map_err(|e| format!("{c:?}: {e}"))?;
    let f = &r.flows[0];
    if !f.byte_exact || f.bytes != bytes || f.hashes[0].0 != f.hashes[0].1 {
        return Err(format!(
            "{c:?}: got {} of {bytes} bytes, exact {}",
            f.bytes, f.byte_exact
        ));
    }
    // Each impairment of the cell really happened, wherever it was
    // expected at least ten times (missing it then has odds below e^-10).
    let (fw, rv) = (&r.forward, &r.reverse);
    let survivors = (fw.frames_out - fw.lost + rv.frames_out - rv.lost) as f64;
    let p = path(&c, 0.0);
    for (expected, count, what) in [
        (c.loss * fw.frames_out as f64, fw.lost, "loss"),
        (
            p.reorder * survivors,
            fw.reordered + rv.reordered,
            "reordering",
        ),
        (
            p.duplicate * survivors,
            fw.duplicated + rv.duplicated,
            "duplication",
        ),
        (
            p.corrupt * survivors,
            fw.corrupted + rv.corrupted,
            "corruption",
        ),
    ] {
        if expected >= 10.0 && count == 0 {
            return Err(format!("{c:?}: no {what} happened"));
        }
    }
    if c.zero_windows && f.zero_windows_sent == 0 {
        return Err(format!("{c:?}: the slow reader never closed the window"));
    }
    Ok(())
}

/// Every combination at one loss rate.
fn matrix(loss: f64) {
    let mut failures = Vec::new();
    let mut cells = 0;
    for bits in 0..32u32 {
        let bit = |i: u32| bits & (1 << i) != 0;
        let c = Cell {
            loss,
            reorder: bit(0),
            duplicate: bit(1),
            corrupt: bit(2),
            tiny_buffers: bit(3),
            zero_windows: bit(4),
        };
        cells += 1;
        if let Err(e) = run_cell(c, 1000 + u64::from(bits)) {
            failures.push(e);
        }
    }
    assert_eq!(cells, 32);
    assert!(
        failures.is_empty(),
        "{} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn matrix_without_loss() {
    matrix(0.0);
}

#[test]
fn matrix_one_percent_loss() {
    matrix(0.01);
}

#[test]
fn matrix_ten_percent_loss() {
    matrix(0.10);
}

#[test]
fn matrix_thirty_percent_loss() {
    matrix(0.30);
}
