//! The nftables table of raw mode. The stack shares the interface's IPv4
//! address with the kernel, so the kernel also receives every packet meant
//! for the stack and, finding no socket of its own, would answer a TCP
//! segment with RST (RFC 9293 §3.10.7.1) and a UDP datagram with ICMP port
//! unreachable. The table drops the kernel's copy at the input hook; the
//! packet socket has already seen the packet by then (AF_PACKET taps run
//! before netfilter).
//!
//! The table's name is a function of interface and address, so a run that
//! crashed leaves a table the next run finds and replaces (saying so).
//! Commands run with the `nft` program in the calling thread's network
//! namespace; the table remembers the namespace it was installed in and
//! is removed there, whichever thread drops it.
#![allow(unsafe_code)]

use crate::bpf::PortSet;
use crate::netif;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

/// The table's name for `interface` and `addr`:
/// `daytona_<interface>_<a>_<b>_<c>_<d>`, with characters nftables does
/// not take in a name replaced by `_`.
pub fn table_name(interface: &str, addr: Ipv4Addr) -> String {
    let iface: String = interface
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let o = addr.octets();
    format!("daytona_{iface}_{}_{}_{}_{}", o[0], o[1], o[2], o[3])
}

/// The ruleset text: a table in family `ip` with one input chain.
pub fn script(name: &str, addr: Ipv4Addr, tcp: &PortSet, udp: &PortSet) -> String {
    let set = |p: &PortSet| {
        let mut items: Vec<String> = p.ports.iter().map(|p| p.to_string()).collect();
        if let Some(r) = p.range.as_ref().filter(|r| !r.is_empty()) {
            items.push(format!("{}-{}", r.start(), r.end()));
        }
        items
    };
    let mut s = String::new();
    // Declaring then deleting the table makes the load replace any older
    // copy atomically (the usual nft idiom).
    s.push_str(&format!("table ip {name} {{}}\ndelete table ip {name}\n"));
    s.push_str(&format!("table ip {name} {{\n  chain input {{\n"));
    s.push_str("    type filter hook input priority -300; policy accept;\n");
    for (proto, p) in [("tcp", tcp), ("udp", udp)] {
        let items = set(p);
        if !items.is_empty() {
            s.push_str(&format!(
                "    ip daddr {addr} {proto} dport {{ {} }} counter drop\n",
                items.join(", ")
            ));
        }
    }
    s.push_str("  }\n}\n");
    s
}

fn nft(args: &[&str], stdin: Option<&str>) -> io::Result<String> {
    let mut cmd = Command::new("nft");
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            io::Error::new(
                io::ErrorKind::NotFound,
                "raw mode needs the `nft` program (package nftables) to keep the kernel \
                 from answering the stack's packets",
            )
        } else {
            io::Error::new(e.kind(), format!("running nft: {e}"))
        }
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if err.contains("Operation not permitted") || err.contains("Permission denied") {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "installing the raw-mode nftables table needs CAP_NET_ADMIN: run as root or \
                 grant it (nft: {err})"
            ),
        ));
    }
    Err(io::Error::other(format!("nft {}: {err}", args.join(" "))))
}

/// Whether table `ip <name>` exists in the calling thread's namespace.
pub fn exists(name: &str) -> io::Result<bool> {
    match nft(&["list", "table", "ip", name], None) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::Other => Ok(false),
        Err(e) => Err(e),
    }
}

/// An installed table; deleted on drop.
#[derive(Debug)]
pub struct NftTable {
    name: String,
    installed: bool,
    /// The network namespace it lives in (`/proc/thread-self/ns/net`).
    netns: Option<OwnedFd>,
}

/// The calling thread's network namespace, as an open file.
fn current_netns() -> Option<OwnedFd> {
    std::fs::File::open("/proc/thread-self/ns/net")
        .ok()
        .map(OwnedFd::from)
}

/// Runs `f` in the namespace `ns`: here if the calling thread is already
/// in it, else on a helper thread that enters it (programs it starts run
/// there too).
fn in_netns<R: Send>(ns: &OwnedFd, f: impl FnOnce() -> R + Send) -> io::Result<R> {
    let inode = |file: std::fs::File| file.metadata().map(|m| (m.dev(), m.ino()));
    let here = inode(std::fs::File::open("/proc/thread-self/ns/net")?)?;
    let there = inode(std::fs::File::from(ns.try_clone()?))?;
    if here == there {
        return Ok(f());
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a namespace fd we own; affects only this
            // helper thread, which ends after `f`.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("nft helper thread panicked")))
    })
}

impl NftTable {
    /// Installs the table, first replacing (and reporting on stderr) a
    /// stale one of the same name left by a run that did not clean up.
    pub fn install(name: &str, addr: Ipv4Addr, tcp: &PortSet, udp: &PortSet) -> io::Result<Self> {
        if !netif::has_capability(netif::CAP_NET_ADMIN) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "installing the raw-mode nftables table needs CAP_NET_ADMIN: run as root or \
                 grant it (e.g. `setcap cap_net_raw,cap_net_admin+ep <program>`)",
            ));
        }
        if exists(name)? {
            eprintln!(
                "daytona: removing stale nftables table `ip {name}` left by an earlier run \
                 that did not exit cleanly"
            );
        }
        let mut t = NftTable {
            name: name.to_string(),
            installed: false,
            netns: current_netns(),
        };
        t.update(addr, tcp, udp)?;
        Ok(t)
    }

    /// Replaces the rules (atomically) for new port sets.
    pub fn update(&mut self, addr: Ipv4Addr, tcp: &PortSet, udp: &PortSet) -> io::Result<()> {
        let text = script(&self.name, addr, tcp, udp);
        self.run(&["-f", "-"], Some(&text))?;
        self.installed = true;
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the table now (also done on drop).
    pub fn remove(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.installed) {
            let name = self.name.clone();
            self.run(&["delete", "table", "ip", &name], None)?;
        }
        Ok(())
    }

    /// Runs `nft` in the table's namespace.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> io::Result<String> {
        match &self.netns {
            Some(ns) => in_netns(ns, || nft(args, stdin))?,
            None => nft(args, stdin),
        }
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!(
                "daytona: could not remove nftables table `ip {}`: {e}",
                self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_valid_identifiers() {
        let a = Ipv4Addr::new(198, 18, 3, 2);
        assert_eq!(table_name("eth0", a), "daytona_eth0_198_18_3_2");
        assert_eq!(table_name("veth-a.10", a), "daytona_veth_a_10_198_18_3_2");
    }

    #[test]
    fn script_drops_the_stacks_ports_only() {
        let tcp = PortSet {
            ports: vec![80, 443],
            range: Some(61_000..=65_535),
        };
        let udp = PortSet {
            ports: vec![],
            range: None,
        };
        let s = script("daytona_t", Ipv4Addr::new(198, 18, 0, 2), &tcp, &udp);
        assert!(s.contains("hook input priority -300"), "{s}");
        assert!(
            s.contains("ip daddr 198.18.0.2 tcp dport { 80, 443, 61000-65535 } counter drop"),
            "{s}"
        );
        assert!(!s.contains("udp"), "{s}");
        assert!(s.starts_with("table ip daytona_t {}\ndelete table ip daytona_t\n"));
    }
}
