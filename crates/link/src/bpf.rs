//! Classic BPF receive filters for the packet sockets of raw and L2 mode,
//! written by hand (no libpcap): a tiny assembler with forward labels, the
//! two programs the links attach, and an interpreter of the same subset so
//! tests check what a program accepts without a socket.
//!
//! The kernel runs a socket filter on every packet the interface sees
//! before it is queued to the socket, so a tight filter is what keeps a
//! raw-mode stack on a busy `eth0` from copying everybody's traffic.
#![allow(unsafe_code)]

use std::io;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::os::fd::RawFd;

/// One classic BPF instruction (`struct sock_filter`).
pub type Insn = libc::sock_filter;

// Instruction classes and modes (linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MSH: u16 = 0xa0;
const AND: u16 = 0x50;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;
const K: u16 = 0x00;

/// Bytes a filter lets through per packet: more than any GSO packet.
pub const ACCEPT_LEN: u32 = 0x4_0000;

/// Where a conditional jump goes.
#[derive(Debug, Clone, Copy)]
enum Target {
    Next,
    Label(usize),
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Plain(Insn),
    Jump {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Goto(usize),
}

/// An assembler for forward-jumping classic BPF.
#[derive(Debug, Default)]
struct Asm {
    ops: Vec<Op>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.ops.len());
    }

    fn stmt(&mut self, code: u16, k: u32) {
        self.ops.push(Op::Plain(Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }));
    }

    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.ops.push(Op::Jump { code, k, jt, jf });
    }

    fn goto(&mut self, l: usize) {
        self.ops.push(Op::Goto(l));
    }

    fn finish(self) -> io::Result<Vec<Insn>> {
        let too_far = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "BPF filter too long (too many ports for one program)",
            )
        };
        let resolve = |at: usize, t: Target| -> io::Result<u8> {
            match t {
                Target::Next => Ok(0),
                Target::Label(l) => {
                    let to = self.labels[l].expect("every label is bound");
                    u8::try_from(to - at - 1).map_err(|_| too_far())
                }
            }
        };
        let mut out = Vec::with_capacity(self.ops.len());
        for (at, op) in self.ops.iter().enumerate() {
            out.push(match *op {
                Op::Plain(i) => i,
                Op::Jump { code, k, jt, jf } => Insn {
                    code,
                    jt: resolve(at, jt)?,
                    jf: resolve(at, jf)?,
                    k,
                },
                Op::Goto(l) => {
                    let to = self.labels[l].expect("every label is bound");
                    Insn {
                        code: JMP | JA,
                        jt: 0,
                        jf: 0,
                        k: (to - at - 1) as u32,
                    }
                }
            });
        }
        if out.len() > 4096 {
            return Err(too_far());
        }
        Ok(out)
    }
}

/// Ports a raw-mode stack owns, per transport protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSet {
    /// Individual ports (listeners, bound UDP sockets).
    pub ports: Vec<u16>,
    /// A range (the stack's ephemeral ports); empty ranges own nothing.
    pub range: Option<RangeInclusive<u16>>,
}

impl PortSet {
    pub fn contains(&self, port: u16) -> bool {
        self.ports.contains(&port) || self.range.as_ref().is_some_and(|r| r.contains(&port))
    }
}

/// The raw-mode receive filter, for packets that start at the IPv4 header
/// (an `AF_PACKET`/`SOCK_DGRAM` socket): IPv4 to `addr`, and then TCP or
/// UDP whose destination port the stack owns (first fragments only — the
/// stack does not reassemble), or ICMP other than echo and timestamp
/// requests (the kernel, which shares the address, answers those; the
/// stack must see the errors, RFC 1122 §4.2.3.9).
pub fn ipv4_filter(addr: Ipv4Addr, tcp: &PortSet, udp: &PortSet) -> io::Result<Vec<Insn>> {
    let mut a = Asm::default();
    let (accept, drop, l_tcp, l_udp, l_icmp) =
        (a.label(), a.label(), a.label(), a.label(), a.label());
    // Version 4.
    a.stmt(LD | B | ABS, 0);
    a.stmt(ALU | AND | K, 0xf0);
    a.jump(JMP | JEQ | K, 0x40, Target::Next, Target::Label(drop));
    // Destination address.
    a.stmt(LD | W | ABS, 16);
    a.jump(
        JMP | JEQ | K,
        u32::from(addr),
        Target::Next,
        Target::Label(drop),
    );
    // Protocol.
    a.stmt(LD | B | ABS, 9);
    a.jump(JMP | JEQ | K, 6, Target::Label(l_tcp), Target::Next);
    a.jump(JMP | JEQ | K, 17, Target::Label(l_udp), Target::Next);
    a.jump(JMP | JEQ | K, 1, Target::Label(l_icmp), Target::Label(drop));

    for (label, ports) in [(l_tcp, tcp), (l_udp, udp)] {
        a.bind(label);
        // Non-first fragments carry no transport header.
        a.stmt(LD | H | ABS, 6);
        a.jump(JMP | JSET | K, 0x1fff, Target::Label(drop), Target::Next);
        // X = IP header length; A = destination port.
        a.stmt(LDX | B | MSH, 0);
        a.stmt(LD | H | IND, 2);
        for &p in &ports.ports {
            a.jump(
                JMP | JEQ | K,
                u32::from(p),
                Target::Label(accept),
                Target::Next,
            );
        }
        match &ports.range {
            Some(r) if !r.is_empty() => {
                a.jump(
                    JMP | JGE | K,
                    u32::from(*r.start()),
                    Target::Next,
                    Target::Label(drop),
                );
                a.jump(
                    JMP | JGT | K,
                    u32::from(*r.end()),
                    Target::Label(drop),
                    Target::Label(accept),
                );
            }
            _ => a.goto(drop),
        }
    }

    a.bind(l_icmp);
    a.stmt(LDX | B | MSH, 0);
    a.stmt(LD | B | IND, 0);
    a.jump(JMP | JEQ | K, 8, Target::Label(drop), Target::Next);
    a.jump(
        JMP | JEQ | K,
        13,
        Target::Label(drop),
        Target::Label(accept),
    );

    a.bind(accept);
    a.stmt(RET | K, ACCEPT_LEN);
    a.bind(drop);
    a.stmt(RET | K, 0);
    a.finish()
}

/// The L2-mode receive filter, for frames that start at the Ethernet
/// header: IPv4 or ARP, addressed to `mac` or broadcast.
pub fn ethernet_filter(mac: [u8; 6]) -> io::Result<Vec<Insn>> {
    let mut a = Asm::default();
    let (accept, drop, l_type, l_bcast) = (a.label(), a.label(), a.label(), a.label());
    let hi = u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]]);
    let lo = u32::from(u16::from_be_bytes([mac[4], mac[5]]));
    a.stmt(LD | W | ABS, 0);
    a.jump(JMP | JEQ | K, hi, Target::Next, Target::Label(l_bcast));
    a.stmt(LD | H | ABS, 4);
    a.jump(
        JMP | JEQ | K,
        lo,
        Target::Label(l_type),
        Target::Label(drop),
    );
    a.bind(l_bcast);
    a.jump(
        JMP | JEQ | K,
        0xffff_ffff,
        Target::Next,
        Target::Label(drop),
    );
    a.stmt(LD | H | ABS, 4);
    a.jump(JMP | JEQ | K, 0xffff, Target::Next, Target::Label(drop));
    a.bind(l_type);
    a.stmt(LD | H | ABS, 12);
    a.jump(JMP | JEQ | K, 0x0800, Target::Label(accept), Target::Next);
    a.jump(
        JMP | JEQ | K,
        0x0806,
        Target::Label(accept),
        Target::Label(drop),
    );
    a.bind(accept);
    a.stmt(RET | K, ACCEPT_LEN);
    a.bind(drop);
    a.stmt(RET | K, 0);
    a.finish()
}

/// Attaches `prog` to the socket `fd` (`SO_ATTACH_FILTER`).
pub fn attach(fd: RawFd, prog: &[Insn]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut Insn,
    };
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel
    // copies the program and validates it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &fprog as *const libc::sock_fprog as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("attaching the BPF filter: {e}"),
        ));
    }
    Ok(())
}

/// Runs `prog` over `pkt` the way the kernel does for the subset these
/// programs use; returns the accepted length (0: dropped). Loads past the
/// end of the packet drop it, as in the kernel.
pub fn run(prog: &[Insn], pkt: &[u8]) -> u32 {
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    let load = |off: usize, size: usize| -> Option<u32> {
        let b = pkt.get(off..off.checked_add(size)?)?;
        Some(b.iter().fold(0u32, |acc, &v| (acc << 8) | u32::from(v)))
    };
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let k = i.k;
        match i.code {
            c if c == LD | W | ABS => match load(k as usize, 4) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LD | H | ABS => match load(k as usize, 2) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LD | B | ABS => match load(k as usize, 1) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LD | H | IND => match load(x as usize + k as usize, 2) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LD | B | IND => match load(x as usize + k as usize, 1) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LDX | B | MSH => match load(k as usize, 1) {
                Some(v) => x = 4 * (v & 0xf),
                None => return 0,
            },
            c if c == ALU | AND | K => a &= k,
            c if c == JMP | JA => pc += k as usize,
            c if c & 0x07 == JMP => {
                let hit = match c & 0xf0 {
                    JEQ => a == k,
                    JGT => a > k,
                    JGE => a >= k,
                    JSET => a & k != 0,
                    _ => return 0,
                };
                pc += usize::from(if hit { i.jt } else { i.jf });
            }
            c if c == RET | K => return k,
            _ => return 0,
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// An IPv4 header (no options unless `ihl` > 5) and 8 transport bytes.
    fn packet(dst: Ipv4Addr, proto: u8, ihl: u8, frag: u16, dport: u16, icmp_type: u8) -> Vec<u8> {
        let hl = usize::from(ihl) * 4;
        let mut p = vec![0u8; hl + 8];
        p[0] = 0x40 | ihl;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = proto;
        p[12..16].copy_from_slice(&[198, 18, 0, 1]);
        p[16..20].copy_from_slice(&dst.octets());
        p[hl..hl + 2].copy_from_slice(&40000u16.to_be_bytes());
        p[hl + 2..hl + 4].copy_from_slice(&dport.to_be_bytes());
        if proto == 1 {
            p[hl] = icmp_type;
        }
        p
    }

    fn sets() -> (PortSet, PortSet) {
        let tcp = PortSet {
            ports: vec![80, 5001],
            range: Some(61_000..=65_535),
        };
        let udp = PortSet {
            ports: vec![53],
            range: None,
        };
        (tcp, udp)
    }

    #[test]
    fn raw_filter_accepts_exactly_the_stacks_packets() {
        let (tcp, udp) = sets();
        let prog = ipv4_filter(ME, &tcp, &udp).unwrap();
        let yes = |p: &[u8]| assert_eq!(run(&prog, p), ACCEPT_LEN, "{p:?}");
        let no = |p: &[u8]| assert_eq!(run(&prog, p), 0, "{p:?}");
        yes(&packet(ME, 6, 5, 0, 80, 0));
        yes(&packet(ME, 6, 5, 0x4000, 5001, 0)); // DF set
        yes(&packet(ME, 6, 7, 0, 80, 0)); // IP options: port found past them
        yes(&packet(ME, 6, 5, 0, 61_000, 0));
        yes(&packet(ME, 6, 5, 0, 65_535, 0));
        no(&packet(ME, 6, 5, 0, 60_999, 0)); // the kernel's ephemeral port
        no(&packet(ME, 6, 5, 0, 22, 0));
        no(&packet(ME, 6, 5, 0, 53, 0)); // UDP's port, not TCP's
        yes(&packet(ME, 17, 5, 0, 53, 0));
        no(&packet(ME, 17, 5, 0, 80, 0));
        no(&packet(ME, 17, 5, 0, 61_000, 0)); // no UDP range
        no(&packet(Ipv4Addr::new(198, 18, 0, 9), 6, 5, 0, 80, 0));
        no(&packet(ME, 6, 5, 0x0010, 80, 0)); // a later fragment
        yes(&packet(ME, 1, 5, 0, 0, 3)); // destination unreachable
        yes(&packet(ME, 1, 5, 0, 0, 0)); // echo reply
        no(&packet(ME, 1, 5, 0, 0, 8)); // echo request: the kernel answers
        no(&packet(ME, 47, 5, 0, 80, 0)); // GRE
        let mut v6 = packet(ME, 6, 5, 0, 80, 0);
        v6[0] = 0x65;
        no(&v6);
        let short = packet(ME, 6, 5, 0, 80, 0);
        no(&short[..21]); // truncated before the port
        no(&[]);
    }

    #[test]
    fn too_many_ports_is_an_error_not_a_bad_program() {
        let tcp = PortSet {
            ports: (1..=400).collect(),
            range: None,
        };
        let udp = PortSet {
            ports: vec![],
            range: None,
        };
        let err = ipv4_filter(ME, &tcp, &udp).unwrap_err();
        assert!(err.to_string().contains("too many ports"), "{err}");
        let tcp = PortSet {
            ports: (1..=200).collect(),
            range: None,
        };
        let prog = ipv4_filter(ME, &tcp, &udp).unwrap();
        assert_eq!(run(&prog, &packet(ME, 6, 5, 0, 200, 0)), ACCEPT_LEN);
        assert_eq!(run(&prog, &packet(ME, 6, 5, 0, 201, 0)), 0);
    }

    #[test]
    fn ethernet_filter_takes_our_mac_and_broadcast_ipv4_and_arp() {
        let mac = [0x02, 0xda, 0x79, 0, 0, 3];
        let prog = ethernet_filter(mac).unwrap();
        let frame = |dst: [u8; 6], ty: u16| {
            let mut f = vec![0u8; 60];
            f[..6].copy_from_slice(&dst);
            f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
            f[12..14].copy_from_slice(&ty.to_be_bytes());
            f
        };
        assert_eq!(run(&prog, &frame(mac, 0x0800)), ACCEPT_LEN);
        assert_eq!(run(&prog, &frame(mac, 0x0806)), ACCEPT_LEN);
        assert_eq!(run(&prog, &frame([0xff; 6], 0x0806)), ACCEPT_LEN);
        assert_eq!(run(&prog, &frame(mac, 0x86dd)), 0);
        assert_eq!(run(&prog, &frame([2, 0xda, 0x79, 0, 0, 4], 0x0800)), 0);
        assert_eq!(
            run(&prog, &frame([0xff, 0xff, 0xff, 0xff, 0, 0], 0x0800)),
            0
        );
        assert_eq!(run(&prog, &frame([0x33, 0x33, 0, 0, 0, 1], 0x0800)), 0);
    }
}
