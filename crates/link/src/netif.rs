//! What the OS links need to know about an interface and about our
//! privileges: the default-route interface, an interface's index, MTU, MAC
//! and primary IPv4 address, and the capability errors that name what is
//! missing. Everything here answers for the network namespace of the
//! *calling thread* (a runtime or test thread may have `setns`'d).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Linux capability numbers (linux/capability.h).
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;

/// The name of the interface holding the IPv4 default route (lowest
/// metric), from `/proc/thread-self/net/route` — the calling thread's
/// namespace, which `/proc/self/net` is not once a thread has `setns`'d.
pub fn default_route_interface() -> io::Result<String> {
    let text = std::fs::read_to_string("/proc/thread-self/net/route")
        .or_else(|_| std::fs::read_to_string("/proc/net/route"))?;
    parse_default_route(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no IPv4 default route: name the interface explicitly",
        )
    })
}

/// Parses the kernel's route table text; returns the interface of the up
/// default route with the lowest metric.
pub fn parse_default_route(text: &str) -> Option<String> {
    const RTF_UP: u32 = 0x1;
    let mut best: Option<(u32, &str)> = None;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (iface, dst, flags, metric, mask) = (f[0], f[1], f[3], f[6], f[7]);
        let flags = u32::from_str_radix(flags, 16).unwrap_or(0);
        if dst != "00000000" || mask != "00000000" || flags & RTF_UP == 0 {
            continue;
        }
        let metric: u32 = metric.parse().unwrap_or(u32::MAX);
        if !matches!(best, Some((m, _)) if m <= metric) {
            best = Some((metric, iface));
        }
    }
    best.map(|(_, i)| i.to_string())
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(req)
}

fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked and owned.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn no_such(name: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("interface {name:?}: {e}"))
}

/// The interface's index.
pub fn ifindex(name: &str) -> io::Result<i32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(no_such(name, io::Error::last_os_error()));
    }
    Ok(i as i32)
}

/// The interface's MTU.
pub fn mtu(name: &str) -> io::Result<usize> {
    let s = ioctl_socket()?;
    let mut req = ifreq(name)?;
    // SAFETY: SIOCGIFMTU reads a NUL-terminated name from and writes an int
    // into `req`, which lives across the call.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFMTU, &mut req) };
    if r < 0 {
        return Err(no_such(name, io::Error::last_os_error()));
    }
    // SAFETY: the kernel filled the ifru_mtu member.
    let m = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(m.max(0) as usize)
}

/// The interface's hardware (MAC) address.
pub fn mac(name: &str) -> io::Result<[u8; 6]> {
    let s = ioctl_socket()?;
    let mut req = ifreq(name)?;
    // SAFETY: as for `mtu`; SIOCGIFHWADDR fills a sockaddr.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) };
    if r < 0 {
        return Err(no_such(name, io::Error::last_os_error()));
    }
    // SAFETY: the kernel filled the ifru_hwaddr member.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut m = [0u8; 6];
    for (d, s) in m.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(m)
}

/// The interface's first IPv4 address and its prefix length.
pub fn ipv4_of(name: &str) -> io::Result<(Ipv4Addr, u8)> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below.
    if unsafe { libc::getifaddrs(&mut head) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = None;
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let n = unsafe { CStr::from_ptr(ifa.ifa_name) };
        // SAFETY: ifa_addr is non-null and points at a sockaddr.
        let family = unsafe { (*ifa.ifa_addr).sa_family };
        if n.to_bytes() != name.as_bytes() || i32::from(family) != libc::AF_INET {
            continue;
        }
        // SAFETY: an AF_INET address is a sockaddr_in.
        let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
        let addr = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        let prefix = if ifa.ifa_netmask.is_null() {
            32
        } else {
            // SAFETY: the netmask of an AF_INET address is a sockaddr_in.
            let m = unsafe { &*(ifa.ifa_netmask as *const libc::sockaddr_in) };
            u32::from_be(m.sin_addr.s_addr).count_ones() as u8
        };
        found = Some((addr, prefix));
        break;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    found.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("interface {name:?} has no IPv4 address: give one explicitly"),
        )
    })
}

/// Whether the calling thread holds `cap` in its effective set.
pub fn has_capability(cap: u32) -> bool {
    let (_, eff, _) = match capget() {
        Ok(c) => c,
        Err(_) => return true, // unknown: let the syscall itself decide
    };
    eff & (1u64 << cap) != 0
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// The calling thread's (permitted, effective, inheritable) sets.
pub fn capget() -> io::Result<(u64, u64, u64)> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: capget with a v3 header reads two CapData structs into `d`.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(d[0].permitted, d[1].permitted),
        join(d[0].effective, d[1].effective),
        join(d[0].inheritable, d[1].inheritable),
    ))
}

/// Removes `caps` from the calling thread's effective, permitted and
/// bounding sets (so programs it starts lack them too). Thread-local: for
/// tests that check the "missing capability" errors.
pub fn drop_capabilities(caps: &[u32]) -> io::Result<()> {
    for &c in caps {
        // SAFETY: prctl(PR_CAPBSET_DROP) takes a capability number.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let (perm, eff, inh) = capget()?;
    let mask = caps.iter().fold(0u64, |m, &c| m | (1u64 << c));
    let (perm, eff) = (perm & !mask, eff & !mask);
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let d = [
        CapData {
            effective: eff as u32,
            permitted: perm as u32,
            inheritable: inh as u32,
        },
        CapData {
            effective: (eff >> 32) as u32,
            permitted: (perm >> 32) as u32,
            inheritable: (inh >> 32) as u32,
        },
    ];
    // SAFETY: capset with a v3 header reads two CapData structs from `d`;
    // pid 0 is the calling thread.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Turns EPERM/EACCES from `what` into an error that names the capability.
pub fn cap_error(what: &str, cap_name: &str, e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{what} needs {cap_name}: run as root or grant it \
                 (e.g. `setcap cap_net_raw,cap_net_admin+ep <program>`) ({e})"
            ),
        ),
        _ => io::Error::new(e.kind(), format!("{what}: {e}")),
    }
}

/// Sets an integer socket option.
pub fn setsockopt_int(fd: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the option value is an int that lives across the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &value as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Grows a socket buffer: `*BUFFORCE` (root) past the sysctl ceiling,
/// else the plain option (capped by the kernel).
pub fn grow_buffer(fd: &OwnedFd, force: i32, plain: i32, bytes: i32) {
    if setsockopt_int(fd, libc::SOL_SOCKET, force, bytes).is_err() {
        let _ = setsockopt_int(fd, libc::SOL_SOCKET, plain, bytes);
    }
}

/// Creates a socket, mapping a permission failure to an error naming
/// CAP_NET_RAW.
pub fn socket(domain: i32, ty: i32, proto: i32, what: &str) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked and owned.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, proto) };
    if fd < 0 {
        return Err(cap_error(what, "CAP_NET_RAW", io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds an AF_PACKET socket to `ifindex` for `ethertype`.
pub fn bind_packet(fd: &OwnedFd, ifindex: i32, ethertype: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ethertype.to_be();
    sll.sll_ifindex = ifindex;
    // SAFETY: `sll` is a valid sockaddr_ll of the given size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One non-blocking `recvmmsg` into `msgs`; returns how many messages
/// arrived, 0 when none was waiting (or a signal came first).
///
/// # Safety
/// Every header in `msgs` must point at live iovecs and control buffers
/// that point at live, writable memory of the stated lengths.
pub(crate) unsafe fn recv_msgs(fd: &OwnedFd, msgs: &mut [libc::mmsghdr]) -> io::Result<usize> {
    // SAFETY: the caller vouches for every header's buffers.
    let n = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            msgs.as_mut_ptr(),
            msgs.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    mmsg_count(n)
}

/// The result of a non-blocking `recvmmsg`/`sendmmsg`: the message count,
/// 0 when the socket was not ready (or a signal came first), else the
/// error.
pub(crate) fn mmsg_count(n: libc::c_int) -> io::Result<usize> {
    if n >= 0 {
        return Ok(n as usize);
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
        _ => Err(e),
    }
}

/// One non-blocking `sendmmsg` pass over `msgs`, for the transmit queue
/// ([`crate::txq`]): goes on past messages the kernel refuses (no route,
/// too big — counted as refused) and stops when the socket's buffer is
/// full (`EAGAIN`, or `ENOBUFS` from a full device queue), never waiting.
///
/// # Safety
/// Every header in `msgs` must point at live iovecs (and an address, if
/// any) that point at live memory of the stated lengths; the kernel only
/// reads them.
pub(crate) unsafe fn send_msgs(fd: &OwnedFd, msgs: &mut [libc::mmsghdr]) -> crate::txq::Sent {
    let mut s = crate::txq::Sent::default();
    let mut at = 0;
    while at < msgs.len() {
        // SAFETY: the caller vouches for the headers from `at` on.
        let r = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                msgs[at..].as_mut_ptr(),
                (msgs.len() - at) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if r > 0 {
            s.taken += r as usize;
            at += r as usize;
            continue;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) => {
                s.full = true;
                break;
            }
            Some(libc::EINTR) => {}
            // This message is refused: the network dropped it.
            _ => {
                s.refused += 1;
                at += 1;
            }
        }
    }
    s
}

/// Waits until `fd` is readable or `timeout` passes (`None`: forever);
/// returns whether it is readable. For runtimes and tests that wait on a
/// link's [`wait_fd`](crate::Link::wait_fd) and a timer at once.
pub fn wait_readable(
    fd: std::os::fd::RawFd,
    timeout: Option<std::time::Duration>,
) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: one valid pollfd; `tsp` is null or points at `ts`, alive
    // across the call; no signal mask.
    let r = unsafe { libc::ppoll(&mut p, 1, tsp, std::ptr::null()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_is_the_up_zero_route_with_lowest_metric() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth1\t00000000\t0100A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
            eth0\t00000000\t010011AC\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
            eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            down0\t00000000\t01000000\t0002\t0\t0\t1\t00000000\t0\t0\t0\n";
        assert_eq!(parse_default_route(text).as_deref(), Some("eth0"));
        assert_eq!(parse_default_route("Iface\tDestination\n"), None);
        assert_eq!(parse_default_route("junk\nshort line\n"), None);
    }

    #[test]
    fn loopback_has_an_index_mtu_and_address() {
        assert!(ifindex("lo").unwrap() > 0);
        assert!(mtu("lo").unwrap() >= 1500);
        assert_eq!(ipv4_of("lo").unwrap(), (Ipv4Addr::LOCALHOST, 8));
        let e = ifindex("no-such-if0").unwrap_err();
        assert!(e.to_string().contains("no-such-if0"), "{e}");
        assert!(ifreq("a-name-longer-than-15").is_err());
    }
}
