//! The bench's result table: each Daytona figure next to the kernel↔kernel
//! figure of the same run, with their ratio.

use super::BenchArgs;
use crate::workload::Amount;

/// The 1-minute load average at the start: a busy machine shows here.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

pub struct Row {
    pub test: String,
    pub unit: &'static str,
    pub kernel: f64,
    pub daytona: Option<f64>,
    /// Whether a bigger number is better (goodput, rate) or worse (time).
    pub higher_is_better: bool,
}

impl Row {
    pub fn new(test: String, unit: &'static str, kernel: f64, higher_is_better: bool) -> Row {
        Row {
            test,
            unit,
            kernel,
            daytona: None,
            higher_is_better,
        }
    }

    /// Daytona / kernel.
    pub fn ratio(&self) -> Option<f64> {
        self.daytona
            .filter(|_| self.kernel > 0.0)
            .map(|d| d / self.kernel)
    }
}

pub struct Table {
    header: Vec<(String, String)>,
    pub rows: Vec<Row>,
}

impl Table {
    pub fn new(a: &BenchArgs, amount: Amount) -> Table {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        Table {
            header: vec![
                ("kernel".into(), kernel),
                ("cpus".into(), cpus.to_string()),
                ("kernel_cc".into(), a.kernel_cc.clone()),
                ("daytona_cc".into(), a.cc.clone()),
                (
                    "daytona_timer".into(),
                    format!("{:?}", a.timer).to_lowercase(),
                ),
                (
                    "daytona_busy_poll".into(),
                    a.busy_poll
                        .filter(|d| !d.is_zero())
                        .map_or("off".into(), |d| format!("{} us", d.as_micros())),
                ),
                ("bulk".into(), amount.describe()),
                (
                    "rr_cps_duration".into(),
                    format!("{:.1} s", a.duration.as_secs_f64()),
                ),
                ("repeat".into(), format!("{} (median)", a.repeat)),
                ("loadavg".into(), loadavg()),
            ],
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// The row named `test`, to fill in Daytona's figure.
    pub fn row(&mut self, test: &str) -> Option<&mut Row> {
        self.rows.iter_mut().find(|r| r.test == test)
    }

    pub fn print(&self, json: bool) {
        if json {
            let rows: Vec<serde_json::Value> = self
                .rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "test": r.test,
                        "unit": r.unit,
                        "kernel_kernel": r.kernel,
                        "daytona": r.daytona,
                        "ratio": r.ratio(),
                        "higher_is_better": r.higher_is_better,
                    })
                })
                .collect();
            let header: serde_json::Map<String, serde_json::Value> = self
                .header
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let out = serde_json::json!({ "setup": header, "results": rows });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            return;
        }
        let setup: Vec<String> = self
            .header
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("daytona bench: {}", setup.join(", "));
        println!();
        let w = self
            .rows
            .iter()
            .map(|r| r.test.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        println!(
            "{:<w$}  {:>15}  {:>15}  {:>7}",
            "test", "kernel↔kernel", "Daytona", "ratio"
        );
        for r in &self.rows {
            let num = |v: f64| match r.unit {
                "Gbit/s" => format!("{v:.2} {}", r.unit),
                "conn/s" => format!("{v:.0} {}", r.unit),
                _ => format!("{v:.1} {}", r.unit),
            };
            println!(
                "{:<w$}  {:>15}  {:>15}  {:>7}",
                r.test,
                num(r.kernel),
                r.daytona.map_or("-".into(), num),
                r.ratio().map_or("-".into(), |x| format!("{x:.2}")),
            );
        }
    }
}
