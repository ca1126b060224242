//! `daytona demo`, `serve` and `connect` against the kernel's TCP and
//! unmodified programs (curl, nc), on TAP devices in namespaces these
//! tests create and remove; addresses in 198.18.0.0/15 only. Privileged:
//! without root they print `SKIPPED:` (a failure with
//! `DAYTONA_REQUIRE_PRIV=1`).

use daytona_testnet::{have_command, pattern, require_privileges, Digest, Netns};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_daytona");

/// The digest of the first `len` bytes of what `daytona` sends with
/// `--seed seed`: the 1 MiB testnet pattern of the seed, repeated.
fn stream_digest(seed: u64, len: u64) -> (u64, u128) {
    let block = pattern(seed, 1 << 20);
    let mut d = Digest::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        d.update(&block[..n]);
        left -= n as u64;
    }
    d.finish()
}

fn digest(bytes: &[u8]) -> (u64, u128) {
    let mut d = Digest::new();
    d.update(bytes);
    d.finish()
}

/// A child process killed (by its PID) and reaped if the test ends early.
struct Reaped(Option<Child>);

impl Reaped {
    fn wait(mut self) -> Output {
        let child = self.0.take().expect("child");
        child.wait_with_output().expect("wait")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn demo_moves_bytes_both_ways_and_removes_its_namespace() {
    if !require_privileges("daytona demo end to end") {
        return;
    }
    let out = Command::new(BIN)
        .args(["demo", "--bytes", "20MB"])
        .output()
        .expect("daytona runs");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for dir in ["Daytona→kernel", "kernel→Daytona"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{dir}: ")))
            .unwrap_or_else(|| panic!("no {dir} line in\n{stdout}"));
        assert!(line.contains("20000000 bytes"), "{line}");
        assert!(line.ends_with("byte-exact yes"), "{line}");
    }
    assert!(stdout.contains("congestion_control"), "{stdout}");
    let ns = stdout
        .lines()
        .find_map(|l| l.strip_prefix("removed namespace "))
        .and_then(|l| l.split_whitespace().next())
        .expect("names the namespace it removed")
        .to_string();
    let list = daytona_testnet::ip(&["netns", "list"]).expect("ip netns list");
    assert!(!list.contains(&ns), "{ns} is still there: {list}");
}

/// Starts `daytona serve` inside `ns` and waits for its "listening" line.
fn start_serve(ns: &Netns, args: &[&str]) -> (Reaped, BufReader<std::process::ChildStdout>) {
    let (r, out, _) = start_serve_env(ns, args, &[]);
    (r, out)
}

/// [`start_serve`] with environment variables; also returns the
/// "listening" line.
fn start_serve_env(
    ns: &Netns,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Reaped, BufReader<std::process::ChildStdout>, String) {
    let mut child = ns
        .command(BIN)
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daytona serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read");
    let reaped = Reaped(Some(child));
    assert!(first.contains("listening on"), "serve said {first:?}");
    (reaped, stdout, first)
}

#[test]
fn serve_answers_curl_with_the_exact_bytes() {
    if !require_privileges("daytona serve with curl") {
        return;
    }
    assert!(have_command("curl"), "curl is installed by .ci/run");
    let ns = Netns::new("dtcurl").expect("netns");
    let (serve, mut rest) = start_serve(
        &ns,
        &[
            "--link",
            "tap:dts0",
            "--addr",
            "198.18.3.2/24",
            "--kernel-addr",
            "198.18.3.1/24",
            "--mode",
            "http",
            "--bytes",
            "5MB",
            "--seed",
            "3",
            "--timer",
            "jiffies",
            "--quiet",
        ],
    );
    let curl = ns
        .command("curl")
        .args(["-sS", "--max-time", "30", "http://198.18.3.2:5001/"])
        .output()
        .expect("curl runs");
    assert!(curl.status.success(), "curl: {}", text(&curl.stderr));
    assert_eq!(curl.stdout.len(), 5_000_000);
    assert_eq!(digest(&curl.stdout), stream_digest(3, 5_000_000));
    let mut report = String::new();
    rest.read_to_string(&mut report).expect("read");
    let out = serve.wait();
    assert!(out.status.success(), "{report}\n{}", text(&out.stderr));
    assert!(
        report.contains("request           GET / HTTP/1.1"),
        "{report}"
    );
    assert!(
        report.contains("sent              5000000 bytes"),
        "{report}"
    );
    assert!(report.contains("bytes_sent / acked"), "{report}");
}

#[test]
fn serve_sends_to_nc_and_receives_from_nc() {
    if !require_privileges("daytona serve with nc") {
        return;
    }
    assert!(have_command("nc"), "netcat-openbsd is installed by .ci/run");
    let ns = Netns::new("dtnc").expect("netns");
    // nc as the receiving client: reads until daytona closes.
    let (serve, _rest) = start_serve(
        &ns,
        &[
            "--link",
            "tap:dtn0",
            "--addr",
            "198.18.5.2/24",
            "--kernel-addr",
            "198.18.5.1/24",
            "--mode",
            "send",
            "--bytes",
            "3MB",
            "--seed",
            "4",
            "--quiet",
        ],
    );
    let nc = ns
        .command("nc")
        .args(["-d", "-w", "30", "198.18.5.2", "5001"])
        .stdin(Stdio::null())
        .output()
        .expect("nc runs");
    assert_eq!(nc.stdout.len(), 3_000_000, "{}", text(&nc.stderr));
    assert_eq!(digest(&nc.stdout), stream_digest(4, 3_000_000));
    assert!(serve.wait().status.success());
    drop(ns);

    // nc as the sending client: daytona checks what arrives. The link,
    // address and controller come from the runtime's variables this time.
    let ns = Netns::new("dtnc").expect("netns");
    let (serve, mut rest, first) = start_serve_env(
        &ns,
        &[
            "--kernel-addr",
            "198.18.5.1/24",
            "--mode",
            "recv",
            "--verify",
            "--seed",
            "9",
            "--quiet",
        ],
        &[
            ("DAYTONA_LINK", "tap:dtn1"),
            ("DAYTONA_ADDR", "198.18.5.2/24"),
            ("DAYTONA_CC", "newreno"),
        ],
    );
    assert!(first.contains("198.18.5.2:5001 (tap dtn1"), "{first}");
    assert!(first.contains("cc newreno"), "{first}");
    let input = std::env::temp_dir().join(format!("daytona-nc-{}", std::process::id()));
    let mut data = Vec::new();
    let block = pattern(9, 1 << 20);
    while data.len() < 2_500_000 {
        data.extend_from_slice(&block);
    }
    data.truncate(2_500_000);
    std::fs::write(&input, &data).expect("write input");
    let nc = ns
        .command("nc")
        .args(["-N", "-w", "30", "198.18.5.2", "5001"])
        .stdin(std::fs::File::open(&input).expect("open input"))
        .output()
        .expect("nc runs");
    let _ = std::fs::remove_file(&input);
    assert!(nc.status.success(), "nc: {}", text(&nc.stderr));
    let mut report = String::new();
    rest.read_to_string(&mut report).expect("read");
    let out = serve.wait();
    assert!(out.status.success(), "{report}\n{}", text(&out.stderr));
    assert!(
        report.contains("received          2500000 bytes"),
        "{report}"
    );
    assert!(report.contains("byte-exact        yes"), "{report}");
    drop(ns);

    // Echo, with a busy-polling stack: nc gets back what it sent.
    let ns = Netns::new("dtnc").expect("netns");
    let (serve, mut rest) = start_serve(
        &ns,
        &[
            "--link",
            "tap:dtn2",
            "--addr",
            "198.18.5.2/24",
            "--kernel-addr",
            "198.18.5.1/24",
            "--mode",
            "echo",
            "--busy-poll",
            "50us",
            "--quiet",
        ],
    );
    let input = std::env::temp_dir().join(format!("daytona-nc-echo-{}", std::process::id()));
    std::fs::write(&input, &data[..1_000_000]).expect("write input");
    let nc = ns
        .command("nc")
        .args(["-N", "-w", "30", "198.18.5.2", "5001"])
        .stdin(std::fs::File::open(&input).expect("open input"))
        .output()
        .expect("nc runs");
    let _ = std::fs::remove_file(&input);
    assert!(nc.status.success(), "nc: {}", text(&nc.stderr));
    assert_eq!(digest(&nc.stdout), digest(&data[..1_000_000]));
    let mut report = String::new();
    rest.read_to_string(&mut report).expect("read");
    assert!(serve.wait().status.success(), "{report}");
    assert!(
        report.contains("echoed            1000000 bytes"),
        "{report}"
    );
}

#[test]
fn connect_sends_to_a_kernel_listener_through_an_impaired_tap() {
    if !require_privileges("daytona connect to a kernel listener") {
        return;
    }
    let ns = Netns::new("dtconn").expect("netns");
    // A kernel socket with CUBIC (the kernel's default here is BBR),
    // listening before the TAP and its address exist.
    let listener = ns.run(|| {
        let l = TcpListener::bind("0.0.0.0:5001").expect("bind");
        daytona_testnet::set_cubic(&l).expect("cubic");
        l
    });
    let receiver = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().expect("accept");
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("read");
        (peer, got)
    });
    let out = ns
        .command(BIN)
        .args([
            "connect",
            "198.18.4.1:5001",
            "--link",
            "tap:dtc0",
            "--addr",
            "198.18.4.2/24",
            "--kernel-addr",
            "198.18.4.1/24",
            "--bytes",
            "4MB",
            "--seed",
            "5",
            "--loss",
            "1%",
            "--cc",
            "newreno",
            "--quiet",
        ])
        .output()
        .expect("daytona runs");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let (peer, got) = receiver.join().expect("receiver");
    assert_eq!(peer.ip().to_string(), "198.18.4.2");
    assert_eq!(got.len(), 4_000_000);
    assert_eq!(digest(&got), stream_digest(5, 4_000_000));
    assert!(
        stdout.contains("sent              4000000 bytes"),
        "{stdout}"
    );
    assert!(stdout.contains("impairments: loss 1%"), "{stdout}");
    assert!(stdout.contains("newreno"), "{stdout}");
    // 1% loss over ~2,800 segments: the TcpInfo shows retransmissions.
    let retrans: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("total_retrans"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_retrans line");
    assert!(retrans > 0, "{stdout}");
}

#[test]
fn raw_and_packet_modes_serve_and_connect_over_a_veth() {
    if !require_privileges("daytona serve/connect in raw and AF_PACKET mode") {
        return;
    }
    let a = Netns::new("dtrawa").expect("netns");
    let b = Netns::new("dtrawb").expect("netns");
    let _veth = daytona_testnet::Veth::new(&a, "veth0", &b, "veth1").expect("veth");
    a.exec(&["ip", "addr", "add", "198.18.6.2/24", "dev", "veth0"])
        .expect("addr");
    b.exec(&["ip", "addr", "add", "198.18.6.1/24", "dev", "veth1"])
        .expect("addr");

    // Raw mode: Daytona shares veth0's address with the kernel; curl in
    // the other namespace fetches from it.
    let (serve, mut rest) = start_serve(
        &a,
        &[
            "--link",
            "raw:veth0",
            "--mode",
            "http",
            "--bytes",
            "2MB",
            "--seed",
            "6",
            "--quiet",
        ],
    );
    let tables = a.exec(&["nft", "list", "tables"]).expect("nft");
    assert!(tables.contains("daytona_"), "no nftables table: {tables}");
    let curl = b
        .command("curl")
        .args(["-sS", "--max-time", "30", "http://198.18.6.2:5001/"])
        .output()
        .expect("curl runs");
    assert!(curl.status.success(), "curl: {}", text(&curl.stderr));
    assert_eq!(digest(&curl.stdout), stream_digest(6, 2_000_000));
    let mut report = String::new();
    rest.read_to_string(&mut report).expect("read");
    assert!(serve.wait().status.success(), "{report}");
    // The table that kept the kernel quiet is gone with the process.
    let tables = a.exec(&["nft", "list", "tables"]).expect("nft");
    assert!(!tables.contains("daytona_"), "{tables}");

    // AF_PACKET L2 mode: Daytona has its own MAC and address on veth0 and
    // connects to a kernel listener (CUBIC) behind veth1.
    let listener = b.run(|| {
        let l = TcpListener::bind("198.18.6.1:5002").expect("bind");
        daytona_testnet::set_cubic(&l).expect("cubic");
        l
    });
    let receiver = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().expect("accept");
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("read");
        (peer, got)
    });
    let out = a
        .command(BIN)
        .args([
            "connect",
            "198.18.6.1:5002",
            "--link",
            "packet:veth0",
            "--addr",
            "198.18.6.3/24",
            "--bytes",
            "2MB",
            "--seed",
            "8",
            "--quiet",
        ])
        .output()
        .expect("daytona runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let (peer, got) = receiver.join().expect("receiver");
    assert_eq!(peer.ip().to_string(), "198.18.6.3");
    assert_eq!(digest(&got), stream_digest(8, 2_000_000));
    // Raw mode as a client: ephemeral ports above the kernel's range, the
    // kernel's address.
    let listener = b.run(|| {
        let l = TcpListener::bind("198.18.6.1:5003").expect("bind");
        daytona_testnet::set_cubic(&l).expect("cubic");
        l
    });
    let receiver = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().expect("accept");
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("read");
        (peer, got)
    });
    let out = a
        .command(BIN)
        .args([
            "connect",
            "198.18.6.1:5003",
            "--link",
            "raw:veth0",
            "--bytes",
            "2MB",
            "--seed",
            "10",
            "--quiet",
        ])
        .output()
        .expect("daytona runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let (peer, got) = receiver.join().expect("receiver");
    assert_eq!(peer.ip().to_string(), "198.18.6.2");
    let kernel_range = a
        .exec(&["cat", "/proc/sys/net/ipv4/ip_local_port_range"])
        .expect("port range");
    let kernel_max: u16 = kernel_range
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("range");
    assert!(peer.port() > kernel_max, "{peer} inside the kernel's range");
    assert_eq!(digest(&got), stream_digest(10, 2_000_000));
    let tables = a.exec(&["nft", "list", "tables"]).expect("nft");
    assert!(!tables.contains("daytona_"), "{tables}");

    // Interrupted, raw mode still removes its table.
    let (serve, _rest) = start_serve(&a, &["--link", "raw:veth0", "--quiet"]);
    let tables = a.exec(&["nft", "list", "tables"]).expect("nft");
    assert!(tables.contains("daytona_"), "no nftables table: {tables}");
    let pid = serve.0.as_ref().expect("child").id();
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let out = serve.wait();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let tables = a.exec(&["nft", "list", "tables"]).expect("nft");
    assert!(!tables.contains("daytona_"), "{tables}");
}

/// Namespaces whose names carry `pid` (testnet's `unique_name`: a
/// five-character prefix, the pid in hex, `x`, a counter).
fn namespaces_of(pid: u32) -> Vec<String> {
    let list = daytona_testnet::ip(&["netns", "list"]).expect("ip netns list");
    let tag = format!("{pid:x}x");
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("dtb") && n.get(5..).is_some_and(|r| r.starts_with(&tag)))
        .map(str::to_string)
        .collect()
}

#[test]
fn bench_measures_both_columns_and_removes_its_namespaces() {
    if !require_privileges("daytona bench smoke run") {
        return;
    }
    // Short runs: this checks that every figure is produced, not its value.
    let child = Command::new(BIN)
        .args([
            "bench",
            "--duration",
            "200ms",
            "--offload",
            "on,off",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daytona bench starts");
    let pid = child.id();
    let out = Reaped(Some(child)).wait();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = v["results"].as_array().expect("results");
    assert_eq!(rows.len(), 10, "{v}");
    for r in rows {
        let kernel = r["kernel_kernel"].as_f64().expect("kernel figure");
        let daytona = r["daytona"].as_f64().expect("Daytona figure");
        assert!(kernel > 0.0 && daytona > 0.0, "{r}");
        assert!(r["ratio"].as_f64().is_some(), "{r}");
    }
    assert_eq!(v["setup"]["kernel_cc"], "cubic");
    assert!(namespaces_of(pid).is_empty(), "{:?}", namespaces_of(pid));
}

#[test]
fn bench_interrupted_removes_its_namespaces() {
    if !require_privileges("daytona bench Ctrl-C cleanup") {
        return;
    }
    let mut child = Command::new(BIN)
        .args([
            "bench",
            "--bytes",
            "20MB",
            "--duration",
            "60s",
            "--tests",
            "bulk,rr",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daytona bench starts");
    let pid = child.id();
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let child = Reaped(Some(child));
    // After the short kernel↔kernel bulk test its namespaces stay for the
    // minute-long round-trip test that follows: interrupt that one.
    let mut line = String::new();
    err.read_line(&mut line).expect("read");
    assert!(line.starts_with("bench: bulk kernel→kernel"), "{line:?}");
    assert_eq!(namespaces_of(pid).len(), 2, "{:?}", namespaces_of(pid));
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let out = child.wait();
    assert_eq!(out.status.code(), Some(130));
    assert!(namespaces_of(pid).is_empty(), "{:?}", namespaces_of(pid));
}
