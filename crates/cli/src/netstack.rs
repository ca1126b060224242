//! Flags shared by `serve` and `connect`: which link Daytona runs on, its
//! address, controller, timer mode, buffers, and impairments applied with
//! [`Impaired`] on that link. Each setting can also come from the
//! `DAYTONA_*` variables the runtime reads (`StackBuilder::from_env`);
//! flags win.

use crate::units;
use daytona_core::time::Duration;
use daytona_link::{
    FaultModel, Impaired, Impairment, Link, PacketConfig, PacketLink, RawConfig, RawLink,
    TapConfig, TapMode,
};
use daytona_runtime::{Runtime, StackBuilder, TimerMode};
use std::io;
use std::net::Ipv4Addr;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// A timer at each exact deadline.
    Hires,
    /// The paper's 10 ms tick (RTT timestamps stay fine-grained).
    Jiffies,
}

/// Where Daytona's frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkSpec {
    /// A TAP (Ethernet) or TUN (IP) device Daytona creates.
    Tap { name: String, mode: TapMode },
    /// The paper's raw mode on an interface (default: the default route's).
    Raw { interface: Option<String> },
    /// AF_PACKET L2 mode on an interface.
    Packet { interface: String },
}

fn interface_name(kind: &str, name: &str) -> Result<String, String> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']) {
        return Err(format!(
            "{kind} interface name {name:?} must be 1 to 15 characters without '/', ':' or spaces"
        ));
    }
    Ok(name.to_string())
}

/// `tap:NAME`, `tun:NAME`, `raw`, `raw:IF`, `packet:IF`.
pub fn parse_link(s: &str) -> Result<LinkSpec, String> {
    let (kind, rest) = match s.split_once(':') {
        Some((k, r)) => (k, Some(r)),
        None => (s, None),
    };
    match (kind, rest) {
        ("tap", Some(n)) => Ok(LinkSpec::Tap {
            name: interface_name("tap", n)?,
            mode: TapMode::Tap,
        }),
        ("tun", Some(n)) => Ok(LinkSpec::Tap {
            name: interface_name("tun", n)?,
            mode: TapMode::Tun,
        }),
        ("raw", None) => Ok(LinkSpec::Raw { interface: None }),
        ("raw", Some(n)) => Ok(LinkSpec::Raw {
            interface: Some(interface_name("raw", n)?),
        }),
        ("packet", Some(n)) => Ok(LinkSpec::Packet {
            interface: interface_name("packet", n)?,
        }),
        _ => Err(format!(
            "link {s:?} is not one of tap:NAME, tun:NAME, raw, raw:IF, packet:IF"
        )),
    }
}

/// `a.b.c.d/prefix`.
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, prefix) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not of the form a.b.c.d/prefix"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("prefix {prefix:?} is not within 0..=32"))?;
    Ok((ip, prefix))
}

fn parse_mtu(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|m| (576..=65_535).contains(m))
        .ok_or_else(|| format!("MTU {s:?} is not within 576..=65535"))
}

/// Impairments applied by Daytona to the frames it sends (and, with
/// `--impair-rx`, to those it receives): this kernel has no netem.
#[derive(clap::Args, Debug, Clone)]
pub struct LinkImpairments {
    /// Added one-way delay (us, ms, s).
    #[arg(long, default_value = "0ms", value_parser = units::parse_duration)]
    pub delay: Duration,
    /// Uniform extra delay up to this (us, ms, s).
    #[arg(long, default_value = "0ms", value_parser = units::parse_duration)]
    pub jitter: Duration,
    /// Random loss (percent).
    #[arg(long, default_value = "0%", value_parser = units::parse_percent)]
    pub loss: f64,
    /// Frames held back by --reorder-delay (percent).
    #[arg(long, default_value = "0%", value_parser = units::parse_percent)]
    pub reorder: f64,
    /// How long a reordered frame is held back (us, ms, s).
    #[arg(long, default_value = "2ms", value_parser = units::parse_duration)]
    pub reorder_delay: Duration,
    /// Frames sent twice (percent).
    #[arg(long, default_value = "0%", value_parser = units::parse_percent)]
    pub duplicate: f64,
    /// Frames with one bit flipped (percent).
    #[arg(long, default_value = "0%", value_parser = units::parse_percent)]
    pub corrupt: f64,
    /// Rate limit (kbit, mbit, gbit).
    #[arg(long, value_parser = units::parse_rate)]
    pub rate: Option<u64>,
    /// Queue in front of --rate, in bytes.
    #[arg(long, value_parser = units::parse_size)]
    pub queue: Option<u64>,
    /// Impair received frames too (the same model, its own random stream).
    #[arg(long)]
    pub impair_rx: bool,
    /// Seed of the impairments' random choices.
    #[arg(long, default_value_t = 1)]
    pub impair_seed: u64,
}

impl LinkImpairments {
    /// `None` when nothing is impaired.
    pub fn impairment(&self) -> Result<Option<Impairment>, String> {
        let i = Impairment {
            delay: self.delay,
            jitter: self.jitter,
            loss: self.loss,
            reorder: self.reorder,
            reorder_delay: self.reorder_delay,
            duplicate: self.duplicate,
            corrupt: self.corrupt,
            rate_bps: self.rate,
            queue_bytes: self.queue.map(|q| q as usize),
            ..Impairment::default()
        };
        i.validate()?;
        if self.queue.is_some() && self.rate.is_none() {
            return Err("--queue needs --rate".into());
        }
        let none = Impairment {
            reorder_delay: i.reorder_delay,
            ..Impairment::default()
        };
        Ok((i != none).then_some(i))
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.delay.is_zero() {
            parts.push(format!("delay {:?}", self.delay));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter {:?}", self.jitter));
        }
        for (name, p) in [
            ("loss", self.loss),
            ("reorder", self.reorder),
            ("duplicate", self.duplicate),
            ("corrupt", self.corrupt),
        ] {
            if p > 0.0 {
                parts.push(format!("{name} {}%", p * 100.0));
            }
        }
        if let Some(r) = self.rate {
            parts.push(format!("rate {:.1} Mbit/s", r as f64 / 1e6));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct StackArgs {
    /// The link: tap:NAME or tun:NAME (a device Daytona creates), raw[:IF]
    /// (raw IP socket + AF_PACKET capture), packet:IF (AF_PACKET L2).
    /// Default: $DAYTONA_LINK.
    #[arg(long, value_parser = parse_link)]
    pub link: Option<LinkSpec>,
    /// TAP/TUN checksum and segmentation offloads (IFF_VNET_HDR).
    #[arg(long, value_enum, default_value = "on")]
    pub offload: OnOff,
    /// IP MTU of the link (576..=65535). Default: $DAYTONA_MTU, else 1500.
    #[arg(long, value_parser = parse_mtu)]
    pub mtu: Option<usize>,
    /// Daytona's address, a.b.c.d/prefix. Default: $DAYTONA_ADDR.
    #[arg(long, value_parser = parse_cidr)]
    pub addr: Option<(Ipv4Addr, u8)>,
    /// Next hop off the local network. Default: $DAYTONA_GATEWAY.
    #[arg(long)]
    pub gateway: Option<Ipv4Addr>,
    /// Give the kernel's end of the TAP/TUN device this address
    /// (a.b.c.d/prefix), so the kernel routes to Daytona.
    #[arg(long, value_parser = parse_cidr)]
    pub kernel_addr: Option<(Ipv4Addr, u8)>,
    /// Congestion controller (cubic, bbr, newreno, …). Default: $DAYTONA_CC, else cubic.
    #[arg(long)]
    pub cc: Option<String>,
    /// Timer mode. Default: $DAYTONA_TIMER, else hires.
    #[arg(long, value_enum)]
    pub timer: Option<Timer>,
    /// Busy-poll budget before sleeping (us, ms; 0us: off). Default: $DAYTONA_BUSY_POLL.
    #[arg(long, value_parser = units::parse_duration)]
    pub busy_poll: Option<Duration>,
    /// Fixed send buffer (SO_SNDBUF-like). Default: $DAYTONA_SNDBUF, else autotuned.
    #[arg(long, value_parser = crate::sim::parse_buffer)]
    pub sndbuf: Option<usize>,
    /// Fixed receive buffer (SO_RCVBUF-like). Default: $DAYTONA_RCVBUF, else autotuned.
    #[arg(long, value_parser = crate::sim::parse_buffer)]
    pub rcvbuf: Option<usize>,
    #[command(flatten)]
    pub impair: LinkImpairments,
}

/// A running Daytona stack and what it runs on.
pub struct Net {
    pub rt: Runtime,
    pub addr: Ipv4Addr,
    pub description: String,
}

fn with_context(what: String, caps: &'static str) -> impl Fn(io::Error) -> String {
    move |e| match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            format!("{what}: permission denied — needs root ({caps})")
        }
        _ => format!("{what}: {e}"),
    }
}

/// A locally administered MAC for Daytona on an AF_PACKET link.
fn own_mac() -> [u8; 6] {
    let p = std::process::id().to_be_bytes();
    [0x02, 0xda, p[0], p[1], p[2], p[3]]
}

/// Opens the link, applies impairments and starts the runtime.
/// `listen_port`: the TCP port a server will listen on (raw mode filters
/// and claims it from the kernel).
pub fn start(a: &StackArgs, listen_port: Option<u16>) -> Result<Net, String> {
    let mut b = StackBuilder::from_env().map_err(|e| e.to_string())?;
    let spec = match (&a.link, b.link_spec()) {
        (Some(l), _) => l.clone(),
        (None, Some(env)) => parse_link(env).map_err(|e| format!("DAYTONA_LINK: {e}"))?,
        (None, None) => {
            return Err(
                "no link: give --link tap:NAME|tun:NAME|raw[:IF]|packet:IF or set DAYTONA_LINK"
                    .into(),
            )
        }
    };
    let cc =
        a.cc.clone()
            .or_else(|| std::env::var("DAYTONA_CC").ok())
            .unwrap_or_else(|| "cubic".into());
    let registry = daytona_core::cc::CcRegistry::with_builtin();
    if !registry.contains(&cc) {
        return Err(format!(
            "unknown congestion controller {cc:?} (known: {})",
            registry.names().join(", ")
        ));
    }
    b = b.congestion_control(&cc);
    if let Some((ip, p)) = a.addr {
        b = b.addr(ip, p);
    }
    if let Some(g) = a.gateway {
        b = b.gateway(g);
    }
    if let Some(m) = a.mtu {
        b = b.mtu(m);
    }
    if let Some(t) = a.timer {
        b = b.timer_mode(match t {
            Timer::Hires => TimerMode::HighResolution,
            Timer::Jiffies => TimerMode::Jiffies,
        });
    }
    if let Some(bp) = a.busy_poll {
        b = b.busy_poll((!bp.is_zero()).then_some(bp));
    }
    if let Some(s) = a.sndbuf {
        b = b.send_buffer(s);
    }
    if let Some(r) = a.rcvbuf {
        b = b.recv_buffer(r);
    }
    let impairment = a.impair.impairment()?;
    let mtu = a
        .mtu
        .or_else(|| std::env::var("DAYTONA_MTU").ok()?.parse().ok())
        .unwrap_or(1500);
    let (link, mut description): (Box<dyn Link + Send>, String) = match &spec {
        LinkSpec::Tap { name, mode } => {
            let on = a.offload == OnOff::On;
            let tap = TapConfig::default()
                .name(name.clone())
                .mode(*mode)
                .mtu(mtu)
                .offloads(on)
                .open()
                .map_err(with_context(format!("opening {name}"), "CAP_NET_ADMIN"))?;
            if *mode == TapMode::Tap {
                b = b.mac(tap.mac());
            }
            let offloads = if tap.offloads() { "on" } else { "off" };
            if let Some((ip, p)) = a.kernel_addr {
                daytona_testnet::ip(&["addr", "add", &format!("{ip}/{p}"), "dev", name])
                    .map_err(|e| format!("giving {name} the kernel address {ip}/{p}: {e}"))?;
            }
            let kind = if *mode == TapMode::Tap { "tap" } else { "tun" };
            (
                wrap(
                    tap,
                    impairment.clone(),
                    a.impair.impair_rx,
                    a.impair.impair_seed,
                ),
                format!("{kind} {name}, offloads {offloads}, MTU {mtu}"),
            )
        }
        LinkSpec::Raw { interface } => {
            if a.kernel_addr.is_some() {
                return Err("--kernel-addr is for TAP/TUN links".into());
            }
            let mut cfg = RawConfig::new();
            if let Some(port) = listen_port {
                cfg = cfg.tcp_port(port);
            }
            if let Some(i) = interface {
                cfg = cfg.interface(i);
            }
            if let Some((ip, _)) = a.addr {
                cfg = cfg.addr(ip);
            }
            let raw = RawLink::open(cfg).map_err(|e| format!("opening raw mode: {e}"))?;
            if let Some(t) = raw.table_name() {
                crate::cleanup::register_nft_table(t);
            }
            if a.addr.is_none() {
                // The address the link shares with the kernel.
                b = b.addr(raw.addr(), raw.prefix_len());
            }
            // Outgoing connections use the ports the link claimed from the
            // kernel (above its ip_local_port_range).
            b = b.ephemeral_ports(raw.ephemeral_ports());
            let d = format!(
                "raw on {} (nftables table {}), MTU {}",
                raw.interface(),
                raw.table_name().unwrap_or("-"),
                raw.mtu()
            );
            (
                wrap(
                    raw,
                    impairment.clone(),
                    a.impair.impair_rx,
                    a.impair.impair_seed,
                ),
                d,
            )
        }
        LinkSpec::Packet { interface } => {
            if a.kernel_addr.is_some() {
                return Err("--kernel-addr is for TAP/TUN links".into());
            }
            let mac = own_mac();
            let link = PacketLink::open(PacketConfig::new(interface, mac))
                .map_err(|e| format!("opening AF_PACKET on {interface}: {e}"))?;
            b = b.mac(daytona_core::stack::EthernetAddress(mac));
            let d = format!("packet on {interface}, MTU {}", link.mtu());
            (
                wrap(
                    link,
                    impairment.clone(),
                    a.impair.impair_rx,
                    a.impair.impair_seed,
                ),
                d,
            )
        }
    };
    description.push_str(&format!(", cc {cc}, impairments: {}", a.impair.describe()));
    let rt = b
        .boxed_link(link)
        .build()
        .map_err(|e| format!("starting the stack: {e}"))?;
    let addr = rt.addr();
    Ok(Net {
        rt,
        addr,
        description,
    })
}

fn wrap<L: Link + Send + 'static>(
    link: L,
    impairment: Option<Impairment>,
    rx: bool,
    seed: u64,
) -> Box<dyn Link + Send> {
    match impairment {
        None => Box::new(link),
        Some(i) => {
            let tx = FaultModel::new(i.clone(), seed);
            let l = Impaired::new(link, tx);
            if rx {
                Box::new(l.with_rx(FaultModel::new(i, seed ^ 0x5eed)))
            } else {
                Box::new(l)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_specs_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_link("tap:dt0"),
            Ok(LinkSpec::Tap {
                name: "dt0".into(),
                mode: TapMode::Tap
            })
        );
        assert_eq!(parse_link("raw"), Ok(LinkSpec::Raw { interface: None }));
        assert_eq!(
            parse_link("packet:veth0"),
            Ok(LinkSpec::Packet {
                interface: "veth0".into()
            })
        );
        assert!(parse_link("tap").is_err());
        assert!(parse_link("tap:averyveryverylongname").is_err());
        assert!(parse_link("wifi:x").unwrap_err().contains("tap:NAME"));
        assert_eq!(
            parse_cidr("198.18.0.2/24"),
            Ok((Ipv4Addr::new(198, 18, 0, 2), 24))
        );
        assert!(parse_cidr("198.18.0.2/33").is_err());
        assert!(parse_cidr("198.18.0.2").is_err());
    }
}
