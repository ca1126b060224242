//! The simulator's benchmark: `cargo bench -p daytona-sim`.
//!
//! 1. Simulated seconds per wall second: one bulk flow over a 1 Gbit/s,
//!    100 ms path (the dumbbell of `daytona sim`).
//! 2. In-memory stack-to-stack goodput with no link delay: Daytona to
//!    Daytona and smoltcp to smoltcp, each pair moved through the same
//!    harness (two queues of IP packets, MTU 1500, 1 MiB socket buffers,
//!    a clock that steps 10 µs per round and jumps to the next timer when
//!    nothing moves).
//!
//! Prints a table; timings are of this machine, so they belong in
//! docs/performance.md, never in tests.

use daytona_core::cc::CcRegistry;
use daytona_core::stack::{ConnHandle, ListenerHandle, Stack, StackConfig};
use daytona_core::tcp::{Shutdown, TcpConfig};
use daytona_core::time::{Duration, Instant};
use daytona_link::Impairment;
use daytona_sim::scenario::{FlowDef, Scenario};
use daytona_sim::workload::Workload;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

const MTU: usize = 1500;
const BUFFER: usize = 1 << 20;
const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PORT: u16 = 5001;

type Queue = VecDeque<Vec<u8>>;

/// One side of an in-memory pair: takes the packets addressed to it,
/// runs its application, and queues what it sends.
trait Endpoint {
    fn step(&mut self, now_us: u64, inbound: &mut Queue, outbound: &mut Queue);
    /// When a timer is next due.
    fn next_timer(&mut self, now_us: u64) -> Option<u64>;
    /// Bytes the receiving application has read (0 on the sender).
    fn received(&self) -> u64;
}

/// Runs a sender and a receiver until `bytes` arrived; returns the wall
/// time taken.
fn drive(a: &mut dyn Endpoint, b: &mut dyn Endpoint, bytes: u64) -> std::time::Duration {
    let (mut ab, mut ba) = (Queue::new(), Queue::new());
    let mut now = 1_000_000u64;
    let wall = std::time::Instant::now();
    let mut rounds = 0u64;
    while b.received() < bytes {
        a.step(now, &mut ba, &mut ab);
        b.step(now, &mut ab, &mut ba);
        rounds += 1;
        assert!(rounds < 500_000_000, "stalled at {} bytes", b.received());
        if ab.is_empty() && ba.is_empty() {
            let next = [a.next_timer(now), b.next_timer(now)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + 10);
            now = next.max(now + 10);
        } else {
            now += 10;
        }
    }
    wall.elapsed()
}

// ------------------------------------------------------------- Daytona

struct Daytona {
    stack: Stack,
    conn: Option<ConnHandle>,
    listener: Option<ListenerHandle>,
    to_send: u64,
    shut: bool,
    received: u64,
    data: Vec<u8>,
    buf: Vec<u8>,
}

impl Daytona {
    fn new(addr: Ipv4Addr) -> Daytona {
        let mut c = StackConfig::ip(addr, 24);
        c.mtu = MTU;
        c.tcp = TcpConfig {
            send_buffer: BUFFER,
            recv_buffer: BUFFER,
            send_buffer_max: None,
            recv_buffer_max: None,
            ..TcpConfig::default()
        };
        Daytona {
            stack: Stack::new(c, CcRegistry::with_builtin()).expect("stack"),
            conn: None,
            listener: None,
            to_send: 0,
            shut: false,
            received: 0,
            data: vec![0x5a; 65_536],
            buf: vec![0; 65_536 + 64],
        }
    }
}

impl Endpoint for Daytona {
    fn step(&mut self, now_us: u64, inbound: &mut Queue, outbound: &mut Queue) {
        let now = Instant::from_micros(now_us);
        for p in inbound.drain(..) {
            self.stack.handle_frame(now, &p);
        }
        if self.stack.poll_timeout().is_some_and(|t| t <= now) {
            self.stack.handle_timeout(now);
        }
        if let Some(l) = self.listener {
            if self.conn.is_none() {
                self.conn = self.stack.tcp_accept(l).ok();
            }
        }
        if let Some(c) = self.conn {
            while self.to_send > 0 {
                let n = (self.to_send as usize).min(self.data.len());
                match self.stack.tcp_send(now, c, &self.data[..n]) {
                    Ok(k) if k > 0 => self.to_send -= k as u64,
                    _ => break,
                }
            }
            if self.to_send == 0 && !self.shut && self.listener.is_none() {
                self.shut = self.stack.tcp_shutdown(now, c, Shutdown::Write).is_ok();
            }
            while let Ok(n) = self.stack.tcp_recv(now, c, &mut self.data) {
                if n == 0 {
                    break;
                }
                self.received += n as u64;
            }
        }
        while let Some(n) = self.stack.poll_transmit(now, &mut self.buf) {
            outbound.push_back(self.buf[..n].to_vec());
        }
    }

    fn next_timer(&mut self, _now_us: u64) -> Option<u64> {
        self.stack.poll_timeout().map(|t| t.total_micros())
    }

    fn received(&self) -> u64 {
        self.received
    }
}

fn daytona_pair(bytes: u64) -> std::time::Duration {
    let mut a = Daytona::new(A);
    let mut b = Daytona::new(B);
    b.listener = Some(
        b.stack
            .tcp_listen(SocketAddrV4::new(B, PORT), 4)
            .expect("listen"),
    );
    a.conn = Some(
        a.stack
            .tcp_connect(Instant::from_secs(1), SocketAddrV4::new(B, PORT), None)
            .expect("connect"),
    );
    a.to_send = bytes;
    drive(&mut a, &mut b, bytes)
}

// ------------------------------------------------------------- smoltcp

mod smol {
    use super::{Queue, BUFFER, MTU};
    use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
    use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
    use smoltcp::socket::tcp;
    use smoltcp::time::Instant;
    use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

    /// The harness's queues seen as a smoltcp device.
    #[derive(Default)]
    pub struct Dev {
        pub rx: Queue,
        pub tx: Queue,
    }

    pub struct Rx(Vec<u8>);
    pub struct Tx<'a>(&'a mut Queue);

    impl phy::RxToken for Rx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl phy::TxToken for Tx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut v = vec![0; len];
            let r = f(&mut v);
            self.0.push_back(v);
            r
        }
    }

    impl Device for Dev {
        type RxToken<'a> = Rx;
        type TxToken<'a> = Tx<'a>;

        fn receive(&mut self, _t: Instant) -> Option<(Rx, Tx<'_>)> {
            let p = self.rx.pop_front()?;
            Some((Rx(p), Tx(&mut self.tx)))
        }

        fn transmit(&mut self, _t: Instant) -> Option<Tx<'_>> {
            Some(Tx(&mut self.tx))
        }

        fn capabilities(&self) -> DeviceCapabilities {
            let mut c = DeviceCapabilities::default();
            c.medium = Medium::Ip;
            c.max_transmission_unit = MTU;
            c
        }
    }

    pub struct Smol {
        pub iface: Interface,
        pub dev: Dev,
        pub sockets: SocketSet<'static>,
        pub handle: SocketHandle,
        pub to_send: u64,
        pub sender: bool,
        pub closed: bool,
        pub received: u64,
        pub data: Vec<u8>,
    }

    impl Smol {
        pub fn new(addr: [u8; 4]) -> Smol {
            let mut dev = Dev::default();
            let mut iface = Interface::new(
                Config::new(HardwareAddress::Ip),
                &mut dev,
                Instant::from_micros(1_000_000),
            );
            iface.update_ip_addrs(|a| {
                a.push(IpCidr::new(
                    IpAddress::v4(addr[0], addr[1], addr[2], addr[3]),
                    24,
                ))
                .expect("address");
            });
            let sock = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; BUFFER]),
                tcp::SocketBuffer::new(vec![0; BUFFER]),
            );
            let mut sockets = SocketSet::new(Vec::new());
            let handle = sockets.add(sock);
            Smol {
                iface,
                dev,
                sockets,
                handle,
                to_send: 0,
                sender: false,
                closed: false,
                received: 0,
                data: vec![0x5a; 65_536],
            }
        }
    }

    impl super::Endpoint for Smol {
        fn step(&mut self, now_us: u64, inbound: &mut Queue, outbound: &mut Queue) {
            let now = Instant::from_micros(now_us as i64);
            self.dev.rx.append(inbound);
            self.iface.poll(now, &mut self.dev, &mut self.sockets);
            let s = self.sockets.get_mut::<tcp::Socket>(self.handle);
            if self.sender {
                while self.to_send > 0 && s.can_send() {
                    let n = (self.to_send as usize).min(self.data.len());
                    match s.send_slice(&self.data[..n]) {
                        Ok(k) if k > 0 => self.to_send -= k as u64,
                        _ => break,
                    }
                }
                if self.to_send == 0 && !self.closed {
                    s.close();
                    self.closed = true;
                }
            } else {
                while let Ok(n) = s.recv_slice(&mut self.data) {
                    if n == 0 {
                        break;
                    }
                    self.received += n as u64;
                }
            }
            self.iface.poll(now, &mut self.dev, &mut self.sockets);
            outbound.append(&mut self.dev.tx);
        }

        fn next_timer(&mut self, now_us: u64) -> Option<u64> {
            let now = Instant::from_micros(now_us as i64);
            self.iface
                .poll_delay(now, &self.sockets)
                .map(|d| now_us + d.total_micros())
        }

        fn received(&self) -> u64 {
            self.received
        }
    }
}

fn smoltcp_pair(bytes: u64) -> std::time::Duration {
    use smoltcp::socket::tcp;
    use smoltcp::wire::IpAddress;
    let mut a = smol::Smol::new(A.octets());
    let mut b = smol::Smol::new(B.octets());
    b.sockets
        .get_mut::<tcp::Socket>(b.handle)
        .listen(PORT)
        .expect("listen");
    let cx = a.iface.context();
    a.sockets
        .get_mut::<tcp::Socket>(a.handle)
        .connect(cx, (IpAddress::v4(198, 18, 0, 2), PORT), 49_152)
        .expect("connect");
    a.sender = true;
    a.to_send = bytes;
    drive(&mut a, &mut b, bytes)
}

// ------------------------------------------------------------- simulator

/// Virtual seconds per wall second for one bulk flow over 1 Gbit/s,
/// 100 ms. Buffers of 16 MiB: above the 12.5 MB BDP, below BDP plus the
/// one-BDP queue, so the link runs full without loss.
fn sim_speed(bytes: u64) -> (f64, f64, u64) {
    let link = Impairment {
        rate_bps: Some(1_000_000_000),
        queue_bytes: Some(12_500_000),
        ..Impairment::default()
    };
    let s = Scenario {
        rtt: Duration::from_millis(100),
        forward: link.clone(),
        reverse: link,
        flows: vec![FlowDef {
            buffer: Some(16 << 20),
            workload: Workload::Bulk { bytes },
            ..FlowDef::default()
        }],
        sample_interval: Some(Duration::from_millis(10)),
        ..Scenario::default()
    };
    let wall = std::time::Instant::now();
    let r = s
        .run(&CcRegistry::with_builtin(), &mut |_| {})
        .expect("simulation runs");
    let wall = wall.elapsed().as_secs_f64();
    assert!(r.all_exact());
    let virt = r.elapsed.as_secs_f64();
    (virt, wall, r.forward.frames + r.reverse.frames)
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (sim_bytes, mem_bytes) = if quick {
        (5_000_000, 5_000_000)
    } else {
        (500_000_000, 500_000_000)
    };
    println!(
        "daytona-sim benchmark (MTU {MTU}, socket buffers {} KiB)",
        BUFFER >> 10
    );
    println!();
    let (virt, wall, frames) = sim_speed(sim_bytes);
    println!("| benchmark | result |");
    println!("| --- | --- |");
    println!(
        "| simulator, 1 Gbit/s 100 ms path, {} MB bulk | {:.2} simulated s per wall s ({virt:.2} s in {wall:.2} s; {:.0} frames/s) |",
        sim_bytes / 1_000_000,
        virt / wall,
        frames as f64 / wall
    );
    for (name, run) in [
        (
            "Daytona ↔ Daytona",
            daytona_pair as fn(u64) -> std::time::Duration,
        ),
        ("smoltcp ↔ smoltcp", smoltcp_pair),
    ] {
        let t = run(mem_bytes).as_secs_f64();
        println!(
            "| in-memory, no delay, {name}, {} MB | {:.2} Gbit/s ({t:.2} s) |",
            mem_bytes / 1_000_000,
            mem_bytes as f64 * 8.0 / t / 1e9
        );
    }
}
