//! [`StackBuilder`]: how a runtime is configured, from code or from the
//! `DAYTONA_*` environment variables.

use crate::rt::{Options, Runtime};
use daytona_core::cc::CcRegistry;
use daytona_core::stack::{EthernetAddress, Stack, StackConfig};
use daytona_core::tcp::TcpConfig;
use daytona_core::time::Duration;
use daytona_link::Link;
use std::io;
use std::net::Ipv4Addr;

/// How the runtime fires the stack's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimerMode {
    /// A timerfd armed at each exact deadline (default).
    #[default]
    HighResolution,
    /// The paper's 10 ms tick: timers fire on tick boundaries only, while
    /// the timestamps used for RTT measurement stay fine-grained.
    Jiffies,
}

/// What happens to open connections when the runtime shuts down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownPolicy {
    /// Send FIN after the queued data and wait up to `linger` for the peer
    /// to acknowledge it; connections still unacknowledged then are reset.
    Graceful { linger: Duration },
    /// Reset every open connection at once.
    Reset,
}

impl Default for ShutdownPolicy {
    fn default() -> Self {
        ShutdownPolicy::Graceful {
            linger: Duration::from_secs(2),
        }
    }
}

/// Configures and starts a [`Runtime`].
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use daytona_runtime::{StackBuilder, TimerMode};
/// use daytona_link::SocketPairLink;
/// let (link, _other_end) = SocketPairLink::pair(1500)?;
/// let rt = StackBuilder::new()
///     .addr("198.18.0.1".parse().unwrap(), 24)
///     .congestion_control("cubic")
///     .timer_mode(TimerMode::HighResolution)
///     .link(link)
///     .build()?;
/// # Ok(()) }
/// ```
pub struct StackBuilder {
    addr: Option<(Ipv4Addr, u8)>,
    gateway: Option<Ipv4Addr>,
    mtu: Option<usize>,
    mac: Option<EthernetAddress>,
    send_buffer: Option<usize>,
    recv_buffer: Option<usize>,
    cc: Option<String>,
    tcp: Option<TcpConfig>,
    registry: Option<CcRegistry>,
    timer_mode: TimerMode,
    busy_poll: Option<Duration>,
    shutdown: ShutdownPolicy,
    link: Option<Box<dyn Link + Send>>,
    link_spec: Option<String>,
    secret: Option<[u8; 32]>,
    ephemeral_ports: Option<std::ops::RangeInclusive<u16>>,
    tso: bool,
}

impl std::fmt::Debug for StackBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackBuilder")
            .field("addr", &self.addr)
            .field("gateway", &self.gateway)
            .field("mtu", &self.mtu)
            .field("cc", &self.cc)
            .field("timer_mode", &self.timer_mode)
            .field("busy_poll", &self.busy_poll)
            .field("shutdown", &self.shutdown)
            .field("link", &self.link.is_some())
            .field("link_spec", &self.link_spec)
            .finish_non_exhaustive()
    }
}

impl Default for StackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl StackBuilder {
    pub fn new() -> StackBuilder {
        StackBuilder {
            addr: None,
            gateway: None,
            mtu: None,
            mac: None,
            send_buffer: None,
            recv_buffer: None,
            cc: None,
            tcp: None,
            registry: None,
            timer_mode: TimerMode::default(),
            busy_poll: None,
            shutdown: ShutdownPolicy::default(),
            link: None,
            link_spec: None,
            secret: None,
            ephemeral_ports: None,
            tso: true,
        }
    }

    /// Reads the `DAYTONA_*` environment variables (see
    /// [`from_vars`](Self::from_vars)).
    pub fn from_env() -> io::Result<StackBuilder> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Settings from variables looked up by `get`:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `DAYTONA_ADDR` | `a.b.c.d/prefix`, the stack's address |
    /// | `DAYTONA_GATEWAY` | `a.b.c.d`, next hop off the local network |
    /// | `DAYTONA_MTU` | IP MTU, 68..=65535 (default: the link's) |
    /// | `DAYTONA_CC` | congestion controller name (`cubic`, `newreno`, `bbr` …) |
    /// | `DAYTONA_TIMER` | `hires` or `jiffies` |
    /// | `DAYTONA_BUSY_POLL` | busy-poll budget in µs (0: off) |
    /// | `DAYTONA_SNDBUF` / `DAYTONA_RCVBUF` | fixed buffer sizes, bytes |
    /// | `DAYTONA_LINK` | kept as [`link_spec`](Self::link_spec) for whoever builds links |
    ///
    /// Unset variables keep the defaults; an invalid value is an
    /// `InvalidInput` error naming the variable.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> io::Result<StackBuilder> {
        let mut b = StackBuilder::new();
        let val = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(v) = val("DAYTONA_ADDR") {
            let (ip, prefix) = v.split_once('/').ok_or_else(|| {
                invalid(format!(
                    "DAYTONA_ADDR: '{v}' is not of the form a.b.c.d/prefix"
                ))
            })?;
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|_| invalid(format!("DAYTONA_ADDR: '{ip}' is not an IPv4 address")))?;
            let prefix: u8 =
                prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| {
                    invalid(format!("DAYTONA_ADDR: prefix '{prefix}' is not 0..=32"))
                })?;
            b.addr = Some((ip, prefix));
        }
        if let Some(v) = val("DAYTONA_GATEWAY") {
            b.gateway =
                Some(v.parse().map_err(|_| {
                    invalid(format!("DAYTONA_GATEWAY: '{v}' is not an IPv4 address"))
                })?);
        }
        if let Some(v) = val("DAYTONA_MTU") {
            b.mtu = Some(
                v.parse()
                    .ok()
                    .filter(|m| (68..=65_535).contains(m))
                    .ok_or_else(|| invalid(format!("DAYTONA_MTU: '{v}' is not 68..=65535")))?,
            );
        }
        if let Some(v) = val("DAYTONA_CC") {
            if !CcRegistry::with_builtin().contains(&v) {
                return Err(invalid(format!(
                    "DAYTONA_CC: unknown congestion controller '{v}'"
                )));
            }
            b.cc = Some(v);
        }
        if let Some(v) = val("DAYTONA_TIMER") {
            b.timer_mode = match v.as_str() {
                "hires" | "highres" | "high-resolution" => TimerMode::HighResolution,
                "jiffies" | "tick" => TimerMode::Jiffies,
                _ => {
                    return Err(invalid(format!(
                        "DAYTONA_TIMER: '{v}' is neither 'hires' nor 'jiffies'"
                    )))
                }
            };
        }
        if let Some(v) = val("DAYTONA_BUSY_POLL") {
            let us: u64 = v.parse().map_err(|_| {
                invalid(format!(
                    "DAYTONA_BUSY_POLL: '{v}' is not a number of microseconds"
                ))
            })?;
            b.busy_poll = (us > 0).then(|| Duration::from_micros(us));
        }
        for (name, slot) in [
            ("DAYTONA_SNDBUF", &mut b.send_buffer),
            ("DAYTONA_RCVBUF", &mut b.recv_buffer),
        ] {
            if let Some(v) = val(name) {
                *slot = Some(
                    v.parse()
                        .ok()
                        .filter(|n| (1024..=1 << 30).contains(n))
                        .ok_or_else(|| {
                            invalid(format!(
                                "{name}: '{v}' is not a byte count 1024..=1073741824"
                            ))
                        })?,
                );
            }
        }
        b.link_spec = val("DAYTONA_LINK");
        Ok(b)
    }

    /// The stack's address and prefix length.
    pub fn addr(mut self, addr: Ipv4Addr, prefix_len: u8) -> Self {
        self.addr = Some((addr, prefix_len));
        self
    }

    pub fn gateway(mut self, gateway: Ipv4Addr) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// IP MTU (default: the link's).
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Our MAC address, needed on an Ethernet link.
    pub fn mac(mut self, mac: EthernetAddress) -> Self {
        self.mac = Some(mac);
        self
    }

    /// A fixed send buffer per connection (autotuning off, like `SO_SNDBUF`).
    pub fn send_buffer(mut self, bytes: usize) -> Self {
        self.send_buffer = Some(bytes);
        self
    }

    /// A fixed receive buffer per connection (autotuning off, like
    /// `SO_RCVBUF`).
    pub fn recv_buffer(mut self, bytes: usize) -> Self {
        self.recv_buffer = Some(bytes);
        self
    }

    /// The congestion controller of new connections, by registry name.
    pub fn congestion_control(mut self, name: &str) -> Self {
        self.cc = Some(name.to_string());
        self
    }

    /// Every TCP setting at once (the named setters above apply on top).
    pub fn tcp_config(mut self, config: TcpConfig) -> Self {
        self.tcp = Some(config);
        self
    }

    /// A registry with controllers of your own (default: the built-in ones).
    pub fn registry(mut self, registry: CcRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    pub fn timer_mode(mut self, mode: TimerMode) -> Self {
        self.timer_mode = mode;
        self
    }

    /// Busy-poll: a thread about to block first polls the link itself for
    /// up to `budget` (`None` or zero: off, the default).
    pub fn busy_poll(mut self, budget: Option<Duration>) -> Self {
        self.busy_poll = budget.filter(|d| !d.is_zero());
        self
    }

    pub fn shutdown_policy(mut self, policy: ShutdownPolicy) -> Self {
        self.shutdown = policy;
        self
    }

    /// The local ports the stack picks for outgoing connections (default
    /// 32768..=60999, the kernel's). Raw mode shares an address with the
    /// kernel and gives the stack the ports above the kernel's range
    /// (`RawLink::ephemeral_ports`).
    pub fn ephemeral_ports(mut self, ports: std::ops::RangeInclusive<u16>) -> Self {
        self.ephemeral_ports = Some(ports);
        self
    }

    /// Fixed secret for ISNs, SYN cookies and ports (default: random).
    pub fn secret(mut self, secret: [u8; 32]) -> Self {
        self.secret = Some(secret);
        self
    }

    /// The link the stack runs on.
    pub fn link(mut self, link: impl Link + Send + 'static) -> Self {
        self.link = Some(Box::new(link));
        self
    }

    /// The link, already boxed.
    pub fn boxed_link(mut self, link: Box<dyn Link + Send>) -> Self {
        self.link = Some(link);
        self
    }

    /// The link description from `DAYTONA_LINK`, for the code that builds
    /// links (the CLI); the runtime itself does not interpret it.
    pub fn link_spec(&self) -> Option<&str> {
        self.link_spec.as_deref()
    }

    pub fn current_timer_mode(&self) -> TimerMode {
        self.timer_mode
    }

    pub fn current_busy_poll(&self) -> Option<Duration> {
        self.busy_poll
    }

    /// The stack configuration this builder makes for a link with
    /// Ethernet framing or not and the given MTU.
    pub fn stack_config(&self, ethernet: bool, link_mtu: usize) -> io::Result<StackConfig> {
        let (addr, prefix) = self.addr.ok_or_else(|| {
            invalid("no address: call StackBuilder::addr or set DAYTONA_ADDR".into())
        })?;
        if prefix > 32 {
            return Err(invalid(format!("prefix length {prefix} is not 0..=32")));
        }
        let mut c = if ethernet {
            let mac = self
                .mac
                .ok_or_else(|| invalid("an Ethernet link needs StackBuilder::mac".into()))?;
            StackConfig::ethernet(mac, addr, prefix)
        } else {
            StackConfig::ip(addr, prefix)
        };
        let mtu = self.mtu.unwrap_or(link_mtu);
        if !(68..=65_535).contains(&mtu) || mtu > link_mtu {
            return Err(invalid(format!(
                "MTU {mtu} is not 68..=65535 or exceeds the link's {link_mtu}"
            )));
        }
        c.mtu = mtu;
        c.gateway = self.gateway;
        if let Some(t) = &self.tcp {
            c.tcp = t.clone();
        }
        if let Some(cc) = &self.cc {
            c.tcp.congestion_control = cc.clone();
        }
        if let Some(n) = self.send_buffer {
            c.tcp.send_buffer = n;
            c.tcp.send_buffer_max = None;
        }
        if let Some(n) = self.recv_buffer {
            c.tcp.recv_buffer = n;
            c.tcp.recv_buffer_max = None;
        }
        if let Some(p) = &self.ephemeral_ports {
            c.ephemeral_ports = p.clone();
        }
        c.secret = match self.secret {
            Some(s) => s,
            None => rand::random(),
        };
        Ok(c)
    }

    /// Whether the stack hands the link TCP super-segments to segment
    /// (TSO/GSO) when the link offers it (`LinkCaps::max_segment` above the
    /// MTU). On by default, as Linux uses TSO whenever the device has it.
    pub fn tso(mut self, on: bool) -> Self {
        self.tso = on;
        self
    }

    /// Builds the stack and starts the runtime thread.
    pub fn build(mut self) -> io::Result<Runtime> {
        let link = self.link.take().ok_or_else(|| {
            invalid(
                "no link: call StackBuilder::link (DAYTONA_LINK is interpreted by the CLI)".into(),
            )
        })?;
        let caps = link.caps();
        let mut config = self.stack_config(caps.ethernet, caps.mtu)?;
        if self.tso && caps.max_segment > config.mtu {
            config.tso_max = Some(caps.max_segment.min(65_535));
            // The link completes the super-segments' checksums (the
            // kernel, per segment): computing them here would be wasted.
            config.tx_csum_offload = caps.tx_checksum_offload;
        }
        let registry = self
            .registry
            .take()
            .unwrap_or_else(CcRegistry::with_builtin);
        if !registry.contains(&config.tcp.congestion_control) {
            return Err(invalid(format!(
                "unknown congestion controller '{}'",
                config.tcp.congestion_control
            )));
        }
        let stack = Stack::new(config, registry)
            .map_err(|e| invalid(format!("invalid stack configuration: {e}")))?;
        Runtime::start(
            stack,
            link,
            Options {
                timer_mode: self.timer_mode,
                busy_poll: self.busy_poll,
                shutdown: self.shutdown,
            },
        )
    }
}
