//! Scenarios end to end: topologies, workloads, TOML files and
//! determinism.

use daytona_core::cc::CcRegistry;
use daytona_core::time::Duration;
use daytona_sim::scenario::{FlowDef, Scenario, Topology};
use daytona_sim::workload::Workload;
use daytona_sim::{LogEntry, SimError};
use std::path::Path;

fn run(s: &Scenario) -> daytona_sim::scenario::ScenarioReport {
    let r = s
        .run(&CcRegistry::with_builtin(), &mut |_| {})
        .expect("scenario runs");
    for f in &r.flows {
        assert!(f.byte_exact, "{} not byte-exact", f.name);
        assert!(f.completion.is_some(), "{} unfinished", f.name);
        for (tx, rx) in f.hashes {
            assert_eq!(tx, rx, "{}: hashes differ", f.name);
        }
    }
    r
}

const MIXED: &str = r#"
seed = 7
sample_interval = "5ms"
[link]
rate = "20mbit"
rtt = "20ms"
queue = "1bdp"
loss = "0.5%"
reorder = "1%"
[reverse]
loss = "0.2%"
[[flow]]
bytes = "400KB"
[[flow]]
cc = "reno"
start = "50ms"
rtt = "60ms"
workload = "rr"
request = "300B"
response = "20KB"
count = 8
[[flow]]
start = "10ms"
workload = "onoff"
bytes = "60KB"
off = "100ms"
count = 3
"#;

#[test]
fn dumbbell_with_every_workload_completes_exactly() {
    let mut s = Scenario::from_toml(MIXED, Path::new(".")).unwrap();
    s.record_events = true;
    s.capture = true;
    assert_eq!(s.flows.len(), 3);
    assert_eq!(s.forward.queue_bytes, Some(50_000));
    let r = run(&s);
    assert!(r.flows[0].retransmissions > 0 || r.forward.lost == 0);
    // The on/off flow idled between its bursts: at least 2 × 100 ms.
    let onoff = &r.flows[2];
    assert!(onoff.completion.unwrap() >= Duration::from_millis(200));
    // The request/response flow's RTT includes its longer access path.
    let rr = &r.flows[1];
    assert!(rr.rtt_quantile(0.0).unwrap() >= Duration::from_millis(60));
    assert!(r.flows[0].rtt_quantile(0.0).unwrap() < Duration::from_millis(60));
    assert!(!r.flows[0].samples.is_empty());
    assert!(r.log.iter().any(|e| matches!(e, LogEntry::Link { .. })));
    assert_eq!(r.events_dropped, 0, "the event log is complete");
    assert!(!r.capture.is_empty());
}

#[test]
fn same_seed_same_scenario_same_everything() {
    let mut s = Scenario::from_toml(MIXED, Path::new(".")).unwrap();
    s.record_events = true;
    let a = run(&s);
    let b = run(&s);
    assert!(a.log.len() > 300, "{}", a.log.len());
    assert_eq!(format!("{:?}", a.log), format!("{:?}", b.log));
    for (x, y) in a.flows.iter().zip(&b.flows) {
        assert_eq!(x.completion, y.completion);
        assert_eq!(x.samples, y.samples);
        assert_eq!(x.rtt_samples, y.rtt_samples);
    }
    assert_eq!(a.forward, b.forward);
    s.seed = 8;
    let c = run(&s);
    assert_ne!(format!("{:?}", a.log), format!("{:?}", c.log));
}

#[test]
fn point_to_point_runs_several_flows_between_two_hosts() {
    let s = Scenario {
        topology: Topology::PointToPoint,
        flows: vec![
            FlowDef {
                workload: Workload::Bulk { bytes: 200_000 },
                ..FlowDef::default()
            };
            3
        ],
        ..Scenario::default()
    };
    let r = run(&s);
    assert_eq!(r.flows.len(), 3);
    assert_eq!(r.host_names, ["client", "server"]);
}

#[test]
fn trace_driven_bottleneck_sets_the_pace() {
    let dir = std::env::temp_dir().join(format!("daytona-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // One 1504-byte opportunity per ms: 12.032 Mbit/s.
    let trace: String = (1..=100).map(|ms| format!("{ms}\n")).collect();
    std::fs::write(dir.join("12mbit.trace"), trace).unwrap();
    let toml = r#"
[link]
trace = "12mbit.trace"
rtt = "20ms"
[[flow]]
bytes = "3MB"
buffer = "256KB"
"#;
    let s = Scenario::from_toml(toml, &dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(s.forward.capacity_bps(), Some(12_032_000));
    let r = run(&s);
    let g = r.flows[0].goodput_bps();
    assert!(g < 12.1e6 && g > 9e6, "goodput {g}");
}

#[test]
fn malformed_scenarios_name_the_problem() {
    let err = |t: &str| match Scenario::from_toml(t, Path::new(".")) {
        Err(SimError::BadScenario(e)) => e,
        other => panic!("{t:?} gave {other:?}"),
    };
    assert!(err("[link]\nloss = \"140%\"").contains("loss"));
    assert!(err("[link]\nrate = \"fast\"").contains("rate"));
    assert!(err("[[flow]]\nworkload = \"dance\"").contains("dance"));
    assert!(err("colour = 3").contains("colour"));
    assert!(err("[link\n").contains("line"));
    assert!(!err("[link]\nloss = \"140%\"").contains('\n'));
    let s = Scenario::from_toml("[[flow]]\ncc = \"nonesuch\"", Path::new(".")).unwrap();
    let e = s
        .validate(&CcRegistry::with_builtin())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nonesuch") && e.contains("newreno"), "{e}");
}

#[test]
fn shipped_example_scenarios_load_and_run() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("scenarios directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let r = run(&s);
            assert!(!r.flows.is_empty(), "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 3, "{n} scenarios");
}
