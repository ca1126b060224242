//! Whether this process holds the capabilities a command needs, read from
//! the effective set in `/proc/self/status`, so that a missing privilege
//! is one clear line instead of an `EPERM` deep inside `ip` or `ioctl`.

use std::fs;

/// Linux capability numbers (`linux/capability.h`).
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_SYS_ADMIN: u32 = 21;

fn cap_name(cap: u32) -> &'static str {
    match cap {
        CAP_NET_ADMIN => "CAP_NET_ADMIN",
        CAP_NET_RAW => "CAP_NET_RAW",
        CAP_SYS_ADMIN => "CAP_SYS_ADMIN",
        _ => "a capability",
    }
}

/// The effective capability set, `None` when it cannot be read.
fn effective() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// `Ok` when every capability in `caps` is effective; else the one-line
/// message: `<command> needs root (<caps>) to <purpose>; …`.
pub fn require(command: &str, caps: &[u32], purpose: &str) -> Result<(), String> {
    let have = effective().unwrap_or(0);
    let missing: Vec<&str> = caps
        .iter()
        .filter(|&&c| have & (1u64 << c) == 0)
        .map(|&c| cap_name(c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<&str> = caps.iter().map(|&c| cap_name(c)).collect();
    Err(format!(
        "{command} needs root ({}) to {purpose}; missing {} — run it as root, e.g. with sudo",
        all.join(" and "),
        missing.join(", ")
    ))
}
