//! The `daytona` binary end to end.

use std::process::Command;

fn daytona(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_daytona"))
        .args(args)
        .output()
        .expect("daytona runs")
}

#[test]
fn transfer_reports_a_byte_exact_run() {
    let out = daytona(&[
        "transfer", "--bytes", "300KB", "--loss", "1%", "--delay", "5ms", "--seed", "3",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("byte-exact        yes"), "{stdout}");
    assert!(stdout.contains("snd_cwnd"), "{stdout}");
}

#[test]
fn bad_input_gets_one_line_and_exit_code_2() {
    for args in [
        &["transfer", "--loss", "140%"][..],
        &["transfer", "--cc", "nonesuch"][..],
        &["transfer", "--bytes", "ten"][..],
    ] {
        let out = daytona(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.trim().is_empty());
    }
    let out = daytona(&["transfer", "--cc", "nonesuch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nonesuch") && stderr.contains("newreno"));
}
