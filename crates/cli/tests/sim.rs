//! `daytona sim` end to end: the summary, the output directory, bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn daytona(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_daytona"))
        .args(args)
        .output()
        .expect("daytona runs")
}

/// A fresh directory for this test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("daytona-sim-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn defaults_run_and_print_the_summary() {
    let out = daytona(&["sim"]);
    let stdout = ok(&out);
    for want in [
        "flow1",
        "goodput",
        "retrans",
        "RTOs",
        "p99",
        "completion",
        "yes",
    ] {
        assert!(stdout.contains(want), "{want} missing:\n{stdout}");
    }
    // Not a terminal: no progress bar.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn several_flows_get_fairness_and_utilisation() {
    let stdout = ok(&daytona(&[
        "sim", "--flows", "2", "--bytes", "2MB", "--rate", "20mbit", "--rtt", "20ms",
    ]));
    assert!(stdout.contains("flow2"), "{stdout}");
    assert!(stdout.contains("Jain's fairness index"), "{stdout}");
    assert!(stdout.contains("link utilisation"), "{stdout}");
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn out_dir_holds_events_series_capture_and_plots() {
    let dir = TempDir::new("out");
    let d = dir.0.to_str().expect("utf-8 path");
    ok(&daytona(&[
        "sim", "--bytes", "1MB", "--loss", "1%", "--rtt", "20ms", "--seed", "3", "--out", d,
    ]));
    let events = read(&dir.0.join("events.jsonl"));
    let mut kinds = std::collections::BTreeSet::new();
    for line in events.lines() {
        assert!(
            line.starts_with('{') && line.contains("\"time_us\":"),
            "{line}"
        );
        if let Some(k) = line.split("\"event\":\"").nth(1) {
            kinds.insert(k.split('"').next().unwrap_or_default().to_string());
        }
    }
    for k in [
        "connection_created",
        "rtt_sample",
        "cwnd_change",
        "retransmit",
        "lost",
    ] {
        assert!(kinds.contains(k), "no {k} event in {kinds:?}");
    }
    let csv = read(&dir.0.join("flow1.csv"));
    let header = csv.lines().next().unwrap_or_default();
    for col in [
        "cwnd",
        "ssthresh",
        "srtt_us",
        "rttvar_us",
        "bytes_in_flight",
        "delivery_rate_bps",
        "pacing_rate_bps",
    ] {
        assert!(header.contains(col), "{header}");
    }
    assert!(csv.lines().count() > 10);
    for svg in ["flow1-tseq.svg", "cwnd.svg", "rtt.svg", "throughput.svg"] {
        let s = read(&dir.0.join(svg));
        assert!(s.contains("<svg") && s.contains("</svg>"), "{svg}");
    }
    let tseq = read(&dir.0.join("flow1-tseq.svg"));
    assert!(tseq.contains("retransmission") && tseq.contains("SACKed range"));
    let pcap = std::fs::read(dir.0.join("bottleneck.pcapng")).expect("pcapng");
    // Section header block magic.
    assert_eq!(&pcap[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
    tshark_reads(&dir.0.join("bottleneck.pcapng"));
}

/// tshark must parse the capture as TCP between the simulated hosts.
fn tshark_reads(pcap: &Path) {
    let Ok(out) = Command::new("tshark")
        .args(["-r"])
        .arg(pcap)
        .args([
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.len",
        ])
        .output()
    else {
        if std::env::var("DAYTONA_REQUIRE_PRIV").as_deref() == Ok("1") {
            panic!("tshark is required (DAYTONA_REQUIRE_PRIV=1) but not installed");
        }
        println!("SKIPPED: tshark not installed; the pcapng was not checked with it");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let data: u64 = text
        .lines()
        .filter(|l| l.starts_with("198.18.1.1\t"))
        .filter_map(|l| l.split('\t').nth(2)?.parse::<u64>().ok())
        .sum();
    // Every byte crossed the bottleneck at least once.
    assert!(data >= 1_000_000, "tshark saw {data} data bytes");
}

#[test]
fn scenario_file_runs_and_seed_overrides() {
    let dir = TempDir::new("scenario");
    let path = dir.0.join("s.toml");
    std::fs::write(
        &path,
        "topology = \"p2p\"\n[link]\nrate = \"10mbit\"\nrtt = \"10ms\"\naqm = \"codel\"\n\
         [[flow]]\nbytes = \"300KB\"\n[[flow]]\nworkload = \"rr\"\ncount = 3\n",
    )
    .expect("write scenario");
    let p = path.to_str().expect("utf-8");
    let a = ok(&daytona(&["sim", "--scenario", p, "--seed", "9"]));
    assert!(
        a.contains("point-to-point") && a.contains("CoDel") && a.contains("seed 9"),
        "{a}"
    );
    assert!(a.contains("3x request"), "{a}");
}

#[test]
fn bad_input_gets_one_line_and_exit_code_2() {
    let dir = TempDir::new("bad");
    let bad_toml = dir.0.join("bad.toml");
    std::fs::write(&bad_toml, "[link]\nrate = 100\n").expect("write");
    let unknown = dir.0.join("unknown.toml");
    std::fs::write(&unknown, "[[flow]]\ncc = \"nonesuch\"\n").expect("write");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["sim", "--cc", "nonesuch"], "nonesuch"),
        (vec!["sim", "--loss", "140%"], "140%"),
        (vec!["sim", "--queue", "lots"], "lots"),
        (vec!["sim", "--aqm", "red"], "red"),
        (vec!["sim", "--flows", "0"], "flows"),
        (
            vec!["sim", "--scenario", bad_toml.to_str().unwrap_or_default()],
            "rate",
        ),
        (
            vec!["sim", "--scenario", unknown.to_str().unwrap_or_default()],
            "nonesuch",
        ),
        (
            vec!["sim", "--scenario", "/nonexistent/s.toml"],
            "nonexistent",
        ),
    ];
    for (args, needle) in cases {
        let out = daytona(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
