//! Compiles `tests/c/two_stacks.c` against `include/daytona.h` and the
//! static library, runs it, and so checks the ABI from the C side: that the
//! header's struct layouts match Rust's and that a C host can drive two
//! stacks to a byte-exact transfer.

use daytona::{DtStackConfig, DtTcpInfo};
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>`, where cargo put `libdaytona.a` next to this test's
/// `deps/` directory.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

#[test]
fn c_host_drives_two_stacks_through_the_header() {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    if Command::new(&cc).arg("--version").output().is_err() {
        if std::env::var_os("DAYTONA_REQUIRE_PRIV").is_some() {
            panic!("no C compiler ({cc}) but DAYTONA_REQUIRE_PRIV is set");
        }
        println!("SKIPPED: no C compiler ({cc})");
        return;
    }
    // `cargo test` builds only the rlib; build the static library the way
    // a C user would.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let release = profile_dir().ends_with("release");
    let built = Command::new(cargo)
        .args(["build", "--quiet", "--lib", "-p", "daytona-capi"])
        .args(release.then_some("--release"))
        .status()
        .expect("run cargo build");
    assert!(built.success(), "cargo build -p daytona-capi failed");
    let lib = profile_dir().join("libdaytona.a");
    assert!(lib.exists(), "{} was not built", lib.display());
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("two_stacks");
    let defines = [
        ("EXPECT_INFO_SIZE", size_of::<DtTcpInfo>()),
        ("EXPECT_INFO_LAST", offset_of!(DtTcpInfo, sndbuf_limited_us)),
        ("EXPECT_CONFIG_SIZE", size_of::<DtStackConfig>()),
        (
            "EXPECT_CONFIG_CC",
            offset_of!(DtStackConfig, congestion_control),
        ),
    ];
    let status = Command::new(&cc)
        .args([
            "-std=c11",
            "-D_GNU_SOURCE",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O1",
        ])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .args(defines.iter().map(|(k, v)| format!("-D{k}={v}")))
        .arg(crate_dir.join("tests/c/two_stacks.c"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&out)
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "compiling two_stacks.c failed");
    let run = Command::new(&out).output().expect("run two_stacks");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "two_stacks failed:\n{stdout}{stderr}");
    assert!(stdout.contains("byte-exact"), "{stdout}");
}
