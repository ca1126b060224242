//! Scaffolding for Daytona's real-link tests: network namespaces and veth
//! pairs that remove themselves on drop, the privilege check that turns a
//! missing capability into a `SKIPPED:` line (or a failure in CI), kernel
//! socket settings, and deterministic data with a streaming hash so that
//! 100 MB transfers are checked byte for byte without holding them.
//!
//! Everything a test creates here has a name unique to the process and the
//! call ([`unique_name`]), lives in a namespace of its own, and uses
//! addresses from 198.18.0.0/15 only (the caller chooses them).

mod sys;

use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

pub use sys::{is_root, kernel_total_retrans, reset_on_close, set_congestion_control};

/// Whether a privileged test may run. Needs root and the `ip` and `nft`
/// commands. When it may not, prints `SKIPPED: <what>: <reason>` and
/// returns false — unless `DAYTONA_REQUIRE_PRIV=1` is set (CI), where a
/// skip is a failure and this panics.
pub fn require_privileges(what: &str) -> bool {
    let reason = if !is_root() {
        Some("needs root (CAP_NET_ADMIN, CAP_NET_RAW)".to_string())
    } else {
        ["ip", "nft"]
            .into_iter()
            .find(|t| !have_command(t))
            .map(|t| format!("needs the `{t}` command (iproute2 / nftables)"))
    };
    match reason {
        None => true,
        Some(r) => {
            if std::env::var("DAYTONA_REQUIRE_PRIV").is_ok_and(|v| v == "1") {
                panic!("{what}: {r} (DAYTONA_REQUIRE_PRIV=1 makes a skip a failure)");
            }
            println!("SKIPPED: {what}: {r}");
            false
        }
    }
}

/// Whether `program` is on the PATH.
pub fn have_command(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// A name unique to this process and call, at most 15 bytes (the limit for
/// interface names): the first five bytes of `prefix`, the pid and a
/// counter, in hex. The counter takes all the room left (at least three
/// digits: pids have at most six), so names repeat only after thousands
/// of calls.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let p: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(5)
        .collect();
    let pid = format!("{:x}", std::process::id());
    let digits = 15usize.saturating_sub(p.len() + pid.len() + 1).clamp(1, 8);
    let counter = u64::from(n) % (1u64 << (4 * digits));
    format!("{p}{pid}x{counter:x}")
}

fn run_command(cmd: &mut Command, input: Option<&str>) -> io::Result<String> {
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("{cmd:?}: {e}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Runs `ip ARGS` in the caller's namespace.
pub fn ip(args: &[&str]) -> io::Result<String> {
    run_command(Command::new("ip").args(args), None)
}

/// A network namespace, deleted on drop. Processes started in it with
/// [`Netns::command`] must be ended by the test (by PID) before.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `<prefix><unique>` with its loopback up.
    pub fn new(prefix: &str) -> io::Result<Netns> {
        let name = unique_name(prefix);
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`,
    /// which execs in place: the child's PID is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs a command inside the namespace and returns its stdout; the
    /// error carries its stderr.
    pub fn exec(&self, argv: &[&str]) -> io::Result<String> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        run_command(self.command(program).args(args), None)
    }

    /// Loads an nftables script inside the namespace (`nft -f -`).
    pub fn nft(&self, script: &str) -> io::Result<String> {
        run_command(self.command("nft").args(["-f", "-"]), Some(script))
    }

    /// Sets a sysctl of this namespace (`key` like
    /// `net.ipv4.tcp_congestion_control`).
    pub fn sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        // Written from a process inside the namespace: a thread that only
        // setns'd is refused by /proc/sys.
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        run_command(
            self.command("sh")
                .args(["-c", "printf '%s' \"$1\" > \"$2\"", "sh", value, &path]),
            None,
        )
        .map(drop)
    }

    /// Runs `f` on a fresh thread that has entered the namespace (threads
    /// it spawns are in the namespace too), and returns its result. Panics
    /// of `f` propagate. Note that `/proc/net` follows the process's main
    /// thread: inside `f` read `/proc/thread-self/net/...` instead.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        match self.thread(f).join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// Like [`Netns::run`] without waiting.
    pub fn thread<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> JoinHandle<R> {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            if let Err(e) = sys::enter_netns(&path) {
                panic!("entering network namespace {path}: {e}");
            }
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: removing network namespace {}: {e}", self.name);
        }
    }
}

/// A veth pair with one end in each of two namespaces, both up; deleted on
/// drop (deleting either namespace deletes it too).
#[derive(Debug)]
pub struct Veth {
    ns_a: String,
    name_a: String,
}

impl Veth {
    pub fn new(ns_a: &Netns, name_a: &str, ns_b: &Netns, name_b: &str) -> io::Result<Veth> {
        ip(&[
            "-n", &ns_a.name, "link", "add", name_a, "type", "veth", "peer", "name", name_b,
            "netns", &ns_b.name,
        ])?;
        let v = Veth {
            ns_a: ns_a.name.clone(),
            name_a: name_a.to_string(),
        };
        ns_a.exec(&["ip", "link", "set", name_a, "up"])?;
        ns_b.exec(&["ip", "link", "set", name_b, "up"])?;
        Ok(v)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Already gone when its namespace was deleted first.
        let _ = ip(&["-n", &self.ns_a, "link", "del", &self.name_a]);
    }
}

/// Sets a kernel socket's congestion controller (TCP_CONGESTION): the
/// kernel here defaults to BBR; tests name theirs. (A namespace's default
/// cannot be switched to cubic here: the kernel allows only
/// `tcp_allowed_congestion_control` as a non-initial namespace's default,
/// so set it per socket, before `connect` or on the listener.)
pub fn set_cubic(sock: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    set_congestion_control(sock, "cubic")
}

/// The deterministic test byte at stream offset `off` for `seed`.
fn pattern_word(seed: u64, word: u64) -> u64 {
    // splitmix64 of (seed, word index): cheap, and no two offsets of a
    // stream look alike.
    let mut z = seed ^ word.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `buf` with the pattern bytes of `seed` at stream offset `off`.
pub fn fill_pattern(seed: u64, off: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let at = off + i as u64;
        *b = pattern_word(seed, at / 8).to_le_bytes()[(at % 8) as usize];
    }
}

/// `len` pattern bytes of `seed` from offset 0.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill_pattern(seed, 0, &mut v);
    v
}

/// A reader of `len` pattern bytes (for sending large transfers).
#[derive(Debug, Clone)]
pub struct PatternReader {
    seed: u64,
    off: u64,
    len: u64,
}

impl PatternReader {
    pub fn new(seed: u64, len: u64) -> Self {
        PatternReader { seed, off: 0, len }
    }

    pub fn remaining(&self) -> u64 {
        self.len - self.off
    }
}

impl Read for PatternReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.remaining().min(buf.len() as u64)) as usize;
        fill_pattern(self.seed, self.off, &mut buf[..n]);
        self.off += n as u64;
        Ok(n)
    }
}

/// A streaming 128-bit hash (SipHash-1-3) with a byte count: both ends of a
/// transfer feed what they sent / received and compare.
#[derive(Debug, Clone, Default)]
pub struct Digest {
    h: siphasher::sip128::SipHasher13,
    len: u64,
}

impl Digest {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        use std::hash::Hasher;
        self.h.write(data);
        self.len += data.len() as u64;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// (bytes, hash)
    pub fn finish(&self) -> (u64, u128) {
        use siphasher::sip128::Hasher128;
        (self.len, self.h.finish128().as_u128())
    }
}

/// The digest of `len` pattern bytes of `seed`, computed by streaming.
pub fn pattern_digest(seed: u64, len: u64) -> (u64, u128) {
    let mut r = PatternReader::new(seed, len);
    let mut d = Digest::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf).unwrap_or(0);
        if n == 0 {
            return d.finish();
        }
        d.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_fit_interface_names_and_differ() {
        let a = unique_name("daytona-tap");
        let b = unique_name("daytona-tap");
        assert!(a.len() <= 15, "{a}");
        assert_ne!(a, b);
        // A test binary makes hundreds of namespaces, TAPs and veths, some
        // alive at once: names do not repeat within a process that soon.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let n = unique_name("daytona-tap");
            assert!(n.len() <= 15, "{n}");
            assert!(seen.insert(n.clone()), "{n} came twice");
        }
    }

    #[test]
    fn pattern_is_position_dependent_and_streams() {
        let whole = pattern(7, 1000);
        let mut parts = vec![0u8; 1000];
        fill_pattern(7, 0, &mut parts[..333]);
        fill_pattern(7, 333, &mut parts[333..]);
        assert_eq!(whole, parts);
        assert_ne!(pattern(7, 16), pattern(8, 16));
        let mut d = Digest::new();
        d.update(&whole[..10]);
        d.update(&whole[10..]);
        assert_eq!(d.finish(), pattern_digest(7, 1000));
        let mut other = Digest::new();
        let mut bad = whole.clone();
        bad[500] ^= 1;
        other.update(&bad);
        assert_ne!(other.finish(), d.finish());
    }

    #[test]
    fn namespace_runs_closures_and_commands_inside_and_is_removed() {
        if !require_privileges("testnet namespace lifecycle") {
            return;
        }
        let ns = Netns::new("tn").expect("netns");
        let name = ns.name().to_string();
        let ns2 = Netns::new("tn").expect("netns");
        let _veth = Veth::new(&ns, "a0", &ns2, "b0").expect("veth");
        ns.exec(&["ip", "addr", "add", "198.18.200.1/24", "dev", "a0"])
            .expect("addr");
        // A closure run in the namespace sees its interfaces.
        let links =
            ns.run(|| std::fs::read_to_string("/proc/thread-self/net/dev").unwrap_or_default());
        assert!(links.contains("a0:"), "{links}");
        assert!(!links.contains("b0:"), "{links}");
        ns.sysctl("net.ipv4.tcp_ecn", "1").expect("sysctl");
        let ecn = ns.exec(&["cat", "/proc/sys/net/ipv4/tcp_ecn"]);
        assert_eq!(ecn.expect("cat").trim(), "1");
        ns.nft(
            "table ip t {\n chain c {\n type filter hook input priority 0; policy accept\n }\n}\n",
        )
        .expect("nft");
        assert!(ns
            .exec(&["nft", "list", "tables"])
            .expect("list")
            .contains("t"));
        drop(_veth);
        drop(ns);
        drop(ns2);
        assert!(!ip(&["netns", "list"]).expect("list").contains(&name));
    }
}
