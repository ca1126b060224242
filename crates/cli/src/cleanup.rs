//! Scratch network namespaces that are removed however the command ends:
//! on drop (normal return, error, panic) and from the Ctrl-C handler,
//! which deletes every namespace still registered before exiting. Deleting
//! a namespace removes the veth and TAP devices inside it too.

use daytona_testnet::Netns;
use std::io;
use std::ops::Deref;
use std::sync::{Mutex, Once};

static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// nftables tables (family `ip`) of raw-mode links, removed on interrupt
/// (the link removes its table on drop, which an interrupt skips).
static NFT_TABLES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn snapshot(m: &Mutex<Vec<String>>) -> Vec<String> {
    match m.lock() {
        Ok(l) => l.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// Has the interrupt handler remove the raw-mode table `ip <name>`.
pub fn register_nft_table(name: &str) {
    install_interrupt_handler();
    if let Ok(mut l) = NFT_TABLES.lock() {
        l.push(name.to_string());
    }
}

/// Installs the SIGINT/SIGTERM handler once: removes the registered
/// nftables tables and namespaces and exits with 130.
pub fn install_interrupt_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            let tables = snapshot(&NFT_TABLES);
            for t in &tables {
                let _ = std::process::Command::new("nft")
                    .args(["delete", "table", "ip", t])
                    .status();
            }
            let names = snapshot(&LIVE);
            for name in &names {
                let _ = daytona_testnet::ip(&["netns", "del", name]);
            }
            eprintln!(
                "daytona: interrupted; removed {} namespace(s) and {} nftables table(s)",
                names.len(),
                tables.len()
            );
            std::process::exit(130);
        });
        if let Err(e) = installed {
            eprintln!("daytona: warning: no Ctrl-C cleanup ({e})");
        }
    });
}

/// A namespace this command created, registered for the interrupt handler.
#[derive(Debug)]
pub struct Scratch {
    // Fields drop in order: the namespace is deleted before it leaves the
    // registry, so an interrupt in between still removes it.
    ns: Netns,
    _registered: Registered,
}

#[derive(Debug)]
struct Registered(String);

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut l) = LIVE.lock() {
            l.retain(|n| *n != self.0);
        }
    }
}

impl Scratch {
    pub fn new(prefix: &str) -> io::Result<Scratch> {
        install_interrupt_handler();
        let ns = Netns::new(prefix)?;
        if let Ok(mut l) = LIVE.lock() {
            l.push(ns.name().to_string());
        }
        let name = ns.name().to_string();
        Ok(Scratch {
            ns,
            _registered: Registered(name),
        })
    }
}

impl Deref for Scratch {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.ns
    }
}

/// Restores SIGPIPE's default action (Rust ignores it), so `daytona … |
/// head` ends quietly when the reader goes away instead of panicking in
/// `println!`.
pub fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL at startup, before
    // any thread is spawned, has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
