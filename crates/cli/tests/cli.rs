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

/// Runs `daytona ARGS` without privileges: as uid 65534 when we are root
/// (`setpriv`), else as we are. Returns `None` when root but setpriv is
/// missing.
fn daytona_unprivileged(args: &[&str]) -> Option<std::process::Output> {
    let root = daytona_testnet::is_root();
    let mut c = if root {
        if !daytona_testnet::have_command("setpriv") {
            return None;
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_daytona"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_daytona"))
    };
    let out = c
        .args(args)
        .env_remove("DAYTONA_LINK")
        .output()
        .expect("runs");
    // uid 65534 may not reach a binary under a private directory (a CI
    // checkout under /root): setpriv then cannot exec it at all.
    let stderr = String::from_utf8_lossy(&out.stderr);
    if root && matches!(out.status.code(), Some(126 | 127)) && stderr.contains("setpriv") {
        println!(
            "note: uid 65534 cannot execute the binary here: {}",
            stderr.trim()
        );
        return None;
    }
    Some(out)
}

/// Like [`daytona_unprivileged`], but root with every capability dropped
/// (bounding set cleared before exec).
fn daytona_without_capabilities(args: &[&str]) -> Option<std::process::Output> {
    if !daytona_testnet::is_root() || !daytona_testnet::have_command("setpriv") {
        return None;
    }
    let out = Command::new("setpriv")
        .args(["--bounding-set=-all", "--inh-caps=-all"])
        .arg(env!("CARGO_BIN_EXE_daytona"))
        .args(args)
        .output()
        .expect("runs");
    Some(out)
}

#[test]
fn without_privileges_demo_bench_and_serve_say_what_they_need() {
    let cases: [(&[&str], &str); 3] = [
        (&["demo"], "CAP_SYS_ADMIN"),
        (&["bench", "--duration", "1s"], "CAP_SYS_ADMIN"),
        (
            &[
                "serve",
                "--link",
                "tap:dtnopriv0",
                "--addr",
                "198.18.9.2/24",
            ],
            "CAP_NET_ADMIN",
        ),
    ];
    let mut ran = 0;
    for (args, cap) in cases {
        for out in [
            daytona_unprivileged(args),
            daytona_without_capabilities(args),
        ]
        .into_iter()
        .flatten()
        {
            ran += 1;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
            assert!(stderr.contains("root"), "{args:?}: {stderr}");
            assert!(stderr.contains("CAP_NET_ADMIN"), "{args:?}: {stderr}");
            assert!(stderr.contains(cap), "{args:?}: {stderr}");
            assert!(out.stdout.is_empty() || args[0] == "serve", "{args:?}");
        }
    }
    if ran == 0 {
        println!("SKIPPED: unprivileged runs: root without setpriv");
    }
}

#[test]
fn bad_flags_of_the_real_link_commands_get_one_line_and_exit_code_2() {
    let cases: [(&[&str], &str); 12] = [
        (&["serve", "--link", "wifi:x"], "tap:NAME"),
        (
            &["serve", "--link", "tap:averyveryverylongname"],
            "15 characters",
        ),
        (
            &["serve", "--link", "tap:dt0", "--addr", "198.18.0.2"],
            "a.b.c.d/prefix",
        ),
        (
            &["serve", "--link", "tap:dt0", "--addr", "198.18.0.2/40"],
            "0..=32",
        ),
        (&["serve", "--link", "tap:dt0", "--loss", "140%"], "140%"),
        (&["serve", "--link", "tap:dt0", "--mtu", "100"], "MTU"),
        (
            &[
                "serve",
                "--link",
                "tap:dt0",
                "--addr",
                "198.18.0.2/24",
                "--cc",
                "nonesuch",
            ],
            "nonesuch",
        ),
        (&["serve", "--addr", "198.18.0.2/24"], "no link"),
        (&["connect", "nowhere", "--link", "tap:dt0"], "nowhere"),
        (
            &[
                "connect",
                "198.18.0.1:80",
                "--link",
                "tap:dt0",
                "--mode",
                "http",
            ],
            "http",
        ),
        (&["bench", "--tests", "bulk,nonesuch"], "nonesuch"),
        (&["demo", "--bytes", "ten"], "ten"),
    ];
    for (args, needle) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_daytona"))
            .args(args)
            .env_remove("DAYTONA_LINK")
            .env_remove("DAYTONA_ADDR")
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    // A bad DAYTONA_* variable is named; the flag would have won.
    let out = Command::new(env!("CARGO_BIN_EXE_daytona"))
        .args(["serve", "--link", "tap:dt0"])
        .env("DAYTONA_ADDR", "not-an-address")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("DAYTONA_ADDR"), "{stderr}");
}
