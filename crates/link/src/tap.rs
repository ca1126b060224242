//! TAP and TUN devices (`/dev/net/tun`) with `IFF_VNET_HDR` offloads.
//!
//! The stack owns an address on the device; the kernel routes to it like
//! to any host on the attached network. With offloads on, every frame is
//! preceded by a `struct virtio_net_hdr` (10 bytes, little endian) and:
//!
//! - **transmit**: a TCP super-segment (up to 64 KiB, the stack's
//!   `StackConfig::tso_max`) goes out as one write marked
//!   `VIRTIO_NET_HDR_GSO_TCPV4` with its `gso_size`; its checksum is left
//!   to the kernel (`VIRTIO_NET_HDR_F_NEEDS_CSUM`, the field holding the
//!   pseudo-header sum, as Linux's `tcp_v4_send_check` leaves it). A stack
//!   with `StackConfig::tx_csum_offload` writes that sum itself and says so
//!   in [`FrameMeta::csum_partial`]; otherwise the link puts it in place of
//!   the full checksum as the frame is written;
//! - **receive**: the kernel hands us its TSO super-segments unsegmented
//!   (we announced `TUN_F_TSO4`), and either a partial checksum
//!   (`NEEDS_CSUM`: the packet never left this host, so it is trusted, as
//!   Linux trusts `CHECKSUM_PARTIAL`) or `DATA_VALID` (already checked);
//!   both become [`FrameMeta::csum_verified`].
//!
//! Without offloads (the builder says so, or the kernel refuses
//! `TUNSETOFFLOAD`) frames are plain, at most one MTU, and the stack
//! computes and verifies every checksum; a super-segment handed to the link
//! anyway is cut in software ([`crate::gso::segment`]).
//!
//! The device is created in the network namespace of the calling thread
//! and disappears when the link is dropped (it is not persistent).
#![allow(unsafe_code)]

use crate::vnet::{self, VNET_HDR_LEN};
use crate::{gso, Batch, FrameMeta, Link, LinkCaps};
use daytona_core::stack::{EthernetAddress, StackConfig};
use daytona_core::time::Instant;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// Largest IP packet a super-segment may be (IPv4 total length).
const MAX_IP_PACKET: usize = 65_535;
const ETHERNET_HEADER: usize = 14;
/// Frames read per `recv_batch` at most, unless configured.
const DEFAULT_BATCH: usize = 64;

/// Which kind of device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapMode {
    /// `IFF_TAP`: Ethernet frames; the stack does ARP.
    Tap,
    /// `IFF_TUN`: bare IPv4 packets (`Medium::Ip`).
    Tun,
}

/// Settings for [`TapLink::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapConfig {
    /// Interface name (≤ 15 bytes); `None`: the kernel picks `tapN`/`tunN`.
    pub name: Option<String>,
    pub mode: TapMode,
    /// IP MTU set on the device.
    pub mtu: usize,
    /// Ask for checksum and TCP segmentation offloads (vnet_hdr).
    pub offloads: bool,
    /// The stack's MAC on a TAP (the kernel's side keeps its own);
    /// `None`: a locally administered address unique to this process.
    pub mac: Option<EthernetAddress>,
    /// Most frames read per `recv_batch`.
    pub batch: usize,
    /// Bring the interface up after creating it.
    pub up: bool,
}

impl Default for TapConfig {
    fn default() -> Self {
        TapConfig {
            name: None,
            mode: TapMode::Tap,
            mtu: 1500,
            offloads: true,
            mac: None,
            batch: DEFAULT_BATCH,
            up: true,
        }
    }
}

impl TapConfig {
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn mode(mut self, mode: TapMode) -> Self {
        self.mode = mode;
        self
    }

    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu;
        self
    }

    pub fn offloads(mut self, on: bool) -> Self {
        self.offloads = on;
        self
    }

    pub fn mac(mut self, mac: EthernetAddress) -> Self {
        self.mac = Some(mac);
        self
    }

    pub fn batch(mut self, frames: usize) -> Self {
        self.batch = frames.max(1);
        self
    }

    pub fn up(mut self, up: bool) -> Self {
        self.up = up;
        self
    }

    /// Creates the device in the calling thread's network namespace.
    pub fn open(self) -> io::Result<TapLink> {
        TapLink::open(self)
    }
}

/// What the link did (for tests and diagnostics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TapStats {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Received super-segments (GSO/GRO from the kernel).
    pub rx_gso: u64,
    /// Received with a partial checksum (`NEEDS_CSUM`).
    pub rx_csum_partial: u64,
    /// Received with `DATA_VALID`.
    pub rx_data_valid: u64,
    /// Received frames dropped: short, or a vnet header we cannot use.
    pub rx_dropped: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Super-segments handed to the kernel for segmentation.
    pub tx_gso: u64,
    /// Super-segments cut in software because offloads are off.
    pub tx_sw_segmented: u64,
    /// Frames sent with the checksum the stack left partial, for the
    /// kernel to complete (`FrameMeta::csum_partial`).
    pub tx_csum_partial: u64,
    /// Frames the kernel refused (full queue, or invalid).
    pub tx_dropped: u64,
}

/// A TAP (Ethernet) or TUN (IP) device.
#[derive(Debug)]
pub struct TapLink {
    fd: OwnedFd,
    name: String,
    mode: TapMode,
    mtu: usize,
    mac: EthernetAddress,
    /// Frames carry a virtio_net_hdr.
    vnet_hdr: bool,
    /// The kernel accepted TUN_F_CSUM | TUN_F_TSO4.
    offloads: bool,
    batch: usize,
    rx_cap: usize,
    scratch: Batch,
    stats: TapStats,
}

/// `struct ifreq`: a name and a 24-byte union of which we use an int/short.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> Self {
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        for (d, s) in r.name.iter_mut().zip(name.bytes().take(libc::IFNAMSIZ - 1)) {
            *d = s as libc::c_char;
        }
        r
    }

    fn name(&self) -> String {
        let bytes: Vec<u8> = self
            .name
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn set_short(&mut self, v: i16) {
        self.data[..2].copy_from_slice(&v.to_ne_bytes());
    }

    fn short(&self) -> i16 {
        i16::from_ne_bytes([self.data[0], self.data[1]])
    }

    fn set_int(&mut self, v: i32) {
        self.data[..4].copy_from_slice(&v.to_ne_bytes());
    }
}

/// An error that says which privilege is missing when that is the cause.
fn os_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{what}: permission denied — needs CAP_NET_ADMIN (run as root): {e}"),
        ),
        _ => io::Error::new(e.kind(), format!("{what}: {e}")),
    }
}

fn ioctl_ptr<T>(fd: RawFd, request: libc::Ioctl, arg: *mut T, what: &str) -> io::Result<()> {
    // SAFETY: `arg` points to a live value of the type the request expects
    // (checked by each caller); the kernel reads/writes at most its size.
    let r = unsafe { libc::ioctl(fd, request, arg) };
    if r < 0 {
        return Err(os_error(what));
    }
    Ok(())
}

fn ioctl_int(fd: RawFd, request: libc::Ioctl, arg: libc::c_ulong, what: &str) -> io::Result<()> {
    // SAFETY: requests taking an integer argument by value; no memory is
    // passed to the kernel.
    let r = unsafe { libc::ioctl(fd, request, arg) };
    if r < 0 {
        return Err(os_error(what));
    }
    Ok(())
}

/// A locally administered MAC unique to this process and call.
fn default_mac() -> EthernetAddress {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    EthernetAddress([
        0x02,
        0xd7,
        (pid >> 8) as u8,
        pid as u8,
        (n >> 8) as u8,
        n as u8,
    ])
}

impl TapLink {
    /// Opens `/dev/net/tun` and creates the device. Needs CAP_NET_ADMIN;
    /// without it the error says so.
    pub fn open(config: TapConfig) -> io::Result<TapLink> {
        if let Some(name) = &config.name {
            if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', ' ', '\0']) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("interface name {name:?}: 1 to 15 bytes, no '/' or spaces"),
                ));
            }
        }
        if !(68..=MAX_IP_PACKET).contains(&config.mtu) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("MTU {}: must be within 68..=65535", config.mtu),
            ));
        }
        let path = CString::new("/dev/net/tun").map_err(io::Error::other)?;
        // SAFETY: `path` is a valid NUL-terminated string.
        let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOENT) {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no /dev/net/tun: the kernel's tun driver is not available",
                ));
            }
            return Err(os_error("opening /dev/net/tun"));
        }
        // SAFETY: `raw` is a file descriptor we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let kind = match config.mode {
            TapMode::Tap => libc::IFF_TAP,
            TapMode::Tun => libc::IFF_TUN,
        };
        let mut flags = kind | libc::IFF_NO_PI;
        if config.offloads {
            flags |= libc::IFF_VNET_HDR;
        }
        let mut req = IfReq::new(config.name.as_deref().unwrap_or(""));
        req.set_short(flags as i16);
        let what = format!(
            "creating {} device {}",
            if kind == libc::IFF_TAP { "TAP" } else { "TUN" },
            config.name.as_deref().unwrap_or("")
        );
        ioctl_ptr(fd.as_raw_fd(), libc::TUNSETIFF, &mut req, &what)?;
        let name = req.name();
        let mut vnet_hdr = false;
        let mut offloads = false;
        if config.offloads {
            let mut size: libc::c_int = VNET_HDR_LEN as libc::c_int;
            ioctl_ptr(
                fd.as_raw_fd(),
                libc::TUNSETVNETHDRSZ,
                &mut size,
                "TUNSETVNETHDRSZ",
            )?;
            vnet_hdr = true;
            let want = libc::TUN_F_CSUM | libc::TUN_F_TSO4;
            // Falls back to no offloads (plain frames behind a zeroed
            // vnet header) when the kernel refuses them.
            offloads = ioctl_int(
                fd.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                want.into(),
                "TUNSETOFFLOAD",
            )
            .is_ok();
        }
        // SAFETY: fcntl on our own descriptor.
        let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        // SAFETY: as above.
        if fl < 0
            || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0
        {
            return Err(os_error("making the TAP descriptor non-blocking"));
        }
        configure_interface(&name, config.mtu, config.up)?;
        let link_header = match config.mode {
            TapMode::Tap => ETHERNET_HEADER,
            TapMode::Tun => 0,
        };
        let largest = if offloads {
            MAX_IP_PACKET + 1
        } else {
            config.mtu
        };
        Ok(TapLink {
            fd,
            name,
            mode: config.mode,
            mtu: config.mtu,
            mac: config.mac.unwrap_or_else(default_mac),
            vnet_hdr,
            offloads,
            batch: config.batch.max(1),
            rx_cap: largest + link_header + 64,
            scratch: Batch::new(),
            stats: TapStats::default(),
        })
    }

    /// A stack configuration for this link at `addr/prefix_len`: the
    /// medium (with [`TapLink::mac`] on a TAP), the MTU, and with offloads
    /// in effect TCP segmentation offload up to 64 KiB (`tso_max`) with
    /// the super-segments' checksums left to the kernel (`tx_csum_offload`).
    pub fn stack_config(&self, addr: std::net::Ipv4Addr, prefix_len: u8) -> StackConfig {
        let mut c = match self.mode {
            TapMode::Tap => StackConfig::ethernet(self.mac, addr, prefix_len),
            TapMode::Tun => StackConfig::ip(addr, prefix_len),
        };
        c.mtu = self.mtu;
        if self.offloads {
            c.tso_max = Some(MAX_IP_PACKET);
            c.tx_csum_offload = true;
        }
        c
    }

    /// The interface's name (as the kernel gave it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stack's MAC address on a TAP (for `StackConfig::ethernet`).
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    pub fn mode(&self) -> TapMode {
        self.mode
    }

    /// Whether checksum and segmentation offloads are in effect.
    pub fn offloads(&self) -> bool {
        self.offloads
    }

    pub fn stats(&self) -> &TapStats {
        &self.stats
    }

    fn ethernet(&self) -> bool {
        self.mode == TapMode::Tap
    }

    fn link_header(&self) -> usize {
        if self.ethernet() {
            ETHERNET_HEADER
        } else {
            0
        }
    }

    /// Reads one frame into `buf`; `Ok(None)` when nothing is waiting.
    fn read_one(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, FrameMeta)>> {
        loop {
            let mut hdr = [0u8; VNET_HDR_LEN];
            let h = if self.vnet_hdr { VNET_HDR_LEN } else { 0 };
            let mut iov = [
                libc::iovec {
                    iov_base: hdr.as_mut_ptr().cast(),
                    iov_len: h,
                },
                libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                },
            ];
            // SAFETY: both iovecs point to writable memory of the stated
            // lengths (`hdr` and `buf`) that outlives the call.
            let n = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_mut_ptr(), 2) };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(io::Error::new(
                        e.kind(),
                        format!("reading {}: {e}", self.name),
                    )),
                };
            }
            let n = n as usize;
            if n < h {
                self.stats.rx_dropped += 1;
                continue;
            }
            let len = (n - h).min(buf.len());
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += len as u64;
            if !self.vnet_hdr {
                return Ok(Some((len, FrameMeta::default())));
            }
            match self.parse_vnet_hdr(&hdr, len) {
                Some(meta) => return Ok(Some((len, meta))),
                None => {
                    self.stats.rx_dropped += 1;
                    continue;
                }
            }
        }
    }

    /// The metadata of a received frame from its virtio_net_hdr
    /// ([`vnet::parse`]), counted; `None` for one we cannot use (a GSO type
    /// we did not ask for, offsets outside the frame).
    fn parse_vnet_hdr(&mut self, h: &[u8; VNET_HDR_LEN], len: usize) -> Option<FrameMeta> {
        let meta = vnet::parse(h, len)?;
        self.stats.rx_gso += u64::from(meta.gso_size.is_some());
        if meta.csum_partial.is_some() {
            self.stats.rx_csum_partial += 1;
        } else if meta.csum_verified {
            self.stats.rx_data_valid += 1;
        }
        Some(meta)
    }

    /// Writes one frame; false when the kernel refused it (counted).
    fn write_one(&mut self, frame: &[u8], meta: FrameMeta) -> io::Result<bool> {
        let (hdr, tso) = vnet::for_transmit(frame, meta, self.ethernet());
        let (split, partial) = match tso {
            Some((at, partial)) => (Some(at), partial),
            None => (None, [0; 2]),
        };
        let iov = |p: *const u8, len: usize| libc::iovec {
            iov_base: p as *mut libc::c_void,
            iov_len: len,
        };
        let h = if self.vnet_hdr { VNET_HDR_LEN } else { 0 };
        let iovs: [libc::iovec; 4];
        let count = match split {
            Some(at) => {
                iovs = [
                    iov(hdr.as_ptr(), h),
                    iov(frame.as_ptr(), at),
                    iov(partial.as_ptr(), 2),
                    iov(frame[at + 2..].as_ptr(), frame.len() - at - 2),
                ];
                4
            }
            None => {
                iovs = [
                    iov(hdr.as_ptr(), h),
                    iov(frame.as_ptr(), frame.len()),
                    iov(hdr.as_ptr(), 0),
                    iov(hdr.as_ptr(), 0),
                ];
                2
            }
        };
        loop {
            // SAFETY: every iovec points into `hdr`, `partial` or `frame`,
            // all alive and unchanged during the call; the kernel only
            // reads them.
            let n = unsafe { libc::writev(self.fd.as_raw_fd(), iovs.as_ptr(), count) };
            if n >= 0 {
                self.stats.tx_frames += 1;
                self.stats.tx_bytes += frame.len() as u64;
                // A GSO type in the header: a super-segment (its checksum
                // made partial here or by the stack).
                if hdr[1] != 0 {
                    self.stats.tx_gso += 1;
                }
                self.stats.tx_csum_partial += u64::from(meta.csum_partial.is_some());
                return Ok(true);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                // A full queue or a frame the kernel will not take: lost,
                // like a packet on a wire; TCP recovers.
                Some(libc::EAGAIN | libc::ENOBUFS | libc::EINVAL | libc::EMSGSIZE | libc::EIO) => {
                    self.stats.tx_dropped += 1;
                    return Ok(false);
                }
                _ => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("writing {}: {e}", self.name),
                    ))
                }
            }
        }
    }
}

/// Sets the MTU and brings the interface up (through an `AF_INET` socket
/// in the current network namespace).
fn configure_interface(name: &str, mtu: usize, up: bool) -> io::Result<()> {
    // SAFETY: plain socket creation.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(os_error("socket for interface configuration"));
    }
    // SAFETY: `raw` is a descriptor we just created and own.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut req = IfReq::new(name);
    req.set_int(mtu as i32);
    ioctl_ptr(
        sock.as_raw_fd(),
        libc::SIOCSIFMTU as libc::Ioctl,
        &mut req,
        &format!("setting the MTU of {name} to {mtu}"),
    )?;
    if up {
        let mut req = IfReq::new(name);
        ioctl_ptr(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut req,
            &format!("reading the flags of {name}"),
        )?;
        let flags = req.short() | libc::IFF_UP as i16;
        req.set_short(flags);
        ioctl_ptr(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS as libc::Ioctl,
            &mut req,
            &format!("bringing {name} up"),
        )?;
    }
    Ok(())
}

impl Link for TapLink {
    fn caps(&self) -> LinkCaps {
        LinkCaps {
            ethernet: self.ethernet(),
            mtu: self.mtu,
            max_segment: if self.offloads {
                MAX_IP_PACKET
            } else {
                self.mtu
            },
            rx_checksum_verified: self.offloads,
            tx_checksum_offload: self.offloads,
        }
    }

    fn recv_batch(&mut self, _now: Instant, batch: &mut Batch) -> io::Result<usize> {
        let mut n = 0;
        while n < self.batch {
            let cap = self.rx_cap;
            let added = batch.fill_with(cap, |buf| self.read_one(buf))?;
            if !added {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    fn send_batch(&mut self, _now: Instant, batch: &Batch) -> io::Result<usize> {
        let mut sent = 0;
        let limit = self.mtu + self.link_header();
        for (frame, meta) in batch.iter_meta() {
            if frame.len() <= limit && (meta.csum_partial.is_none() || self.offloads) {
                // Fits the MTU: one packet, checksums complete — or left
                // partial by the stack, for the kernel to complete.
                let plain = FrameMeta {
                    csum_partial: meta.csum_partial,
                    ..FrameMeta::default()
                };
                sent += usize::from(self.write_one(frame, plain)?);
            } else if self.offloads && meta.gso_size.is_some() {
                // The stack's partial checksum, if any, goes as it is.
                sent += usize::from(self.write_one(frame, meta)?);
            } else {
                // Offloads are off: cut the super-segment here (or complete
                // the partial checksum of a single packet).
                self.stats.tx_sw_segmented += u64::from(frame.len() > limit);
                let mut segs = std::mem::take(&mut self.scratch);
                segs.clear();
                gso::segment(frame, meta, self.ethernet(), &mut segs);
                let mut ok = true;
                for seg in segs.iter() {
                    ok &= self.write_one(seg, FrameMeta::default())?;
                }
                self.scratch = segs;
                sent += usize::from(ok);
            }
        }
        Ok(sent)
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused_before_any_syscall() {
        let e = TapConfig::default()
            .name("a-name-far-too-long")
            .open()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("15 bytes"), "{e}");
        let e = TapConfig::default().mtu(40).open().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    /// A link value without a device, writing to a file (what the kernel
    /// would have read is in it afterwards).
    fn detached(fd: OwnedFd, offloads: bool) -> TapLink {
        TapLink {
            fd,
            name: "test".into(),
            mode: TapMode::Tap,
            mtu: 1500,
            mac: default_mac(),
            vnet_hdr: offloads,
            offloads,
            batch: 1,
            rx_cap: 0,
            scratch: Batch::new(),
            stats: TapStats::default(),
        }
    }

    /// The bytes `send_batch` writes for `batch`.
    fn written(offloads: bool, batch: &Batch) -> (Vec<u8>, TapStats) {
        let path = std::env::temp_dir().join(format!(
            "daytona-tap-test-{}-{}",
            std::process::id(),
            default_mac().0[5]
        ));
        let file = std::fs::File::create(&path).unwrap();
        let mut link = detached(OwnedFd::from(file), offloads);
        assert_eq!(link.caps().tx_checksum_offload, offloads);
        assert_eq!(link.send_batch(Instant::ZERO, batch).unwrap(), batch.len());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        (bytes, link.stats().clone())
    }

    #[test]
    fn partial_checksums_go_to_the_kernel_or_are_completed() {
        use crate::gso::tests::{tcp_checksum_ok, tcp_frame};
        use crate::CsumPartial;
        let full = tcp_frame(true, 10_000, 0x18);
        let l = gso::tcp_layout(&full, true).unwrap();
        let mut partial = full.clone();
        let pseudo = gso::tcp_pseudo_sum(&partial, l);
        partial[l.tcp + 16..l.tcp + 18].copy_from_slice(&pseudo.to_be_bytes());
        let at = CsumPartial {
            start: l.tcp as u16,
            offset: 16,
        };
        let meta = FrameMeta {
            gso_size: Some(1448),
            csum_partial: Some(at),
            ..FrameMeta::default()
        };
        let mut batch = Batch::new();
        batch.push_with(&partial, meta);
        // Offloads on: one write, the TSO header, the frame as the stack
        // left it — the same bytes as a full-checksum frame turned partial
        // by the link.
        let (bytes, st) = written(true, &batch);
        let mut plain = Batch::new();
        plain.push_with(
            &full,
            FrameMeta {
                csum_partial: None,
                ..meta
            },
        );
        assert_eq!(bytes, written(true, &plain).0);
        assert_eq!(bytes.len(), VNET_HDR_LEN + partial.len());
        assert_eq!(bytes[0], vnet::F_NEEDS_CSUM);
        assert_eq!(bytes[1], vnet::GSO_TCPV4);
        assert_eq!(&bytes[VNET_HDR_LEN..], &partial[..]);
        assert_eq!(
            (st.tx_gso, st.tx_sw_segmented, st.tx_csum_partial),
            (1, 0, 1)
        );
        // Offloads off: cut in software, every checksum complete.
        let (bytes, st) = written(false, &batch);
        assert_eq!(
            (st.tx_frames, st.tx_sw_segmented, st.tx_csum_partial),
            (7, 1, 0)
        );
        let mut rest = &bytes[..];
        let mut payload = Vec::new();
        while !rest.is_empty() {
            let total = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            let (f, r) = rest.split_at(14 + total);
            let fl = gso::tcp_layout(f, true).unwrap();
            assert!(tcp_checksum_ok(f, fl));
            payload.extend_from_slice(&f[fl.payload..]);
            rest = r;
        }
        assert_eq!(payload, full[l.payload..]);
        // A single packet with a partial checksum: NEEDS_CSUM without GSO
        // with offloads, completed in software without.
        let small_full = tcp_frame(true, 800, 0x18);
        let mut small = small_full.clone();
        let ps = gso::tcp_pseudo_sum(&small, l);
        small[l.tcp + 16..l.tcp + 18].copy_from_slice(&ps.to_be_bytes());
        let mut one = Batch::new();
        one.push_with(&small, meta);
        let (bytes, _) = written(true, &one);
        assert_eq!(&bytes[..2], &[vnet::F_NEEDS_CSUM, 0]);
        assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), at.start);
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), at.offset);
        assert_eq!(&bytes[VNET_HDR_LEN..], &small[..]);
        let (bytes, st) = written(false, &one);
        assert_eq!(bytes, small_full);
        assert_eq!((st.tx_frames, st.tx_sw_segmented), (1, 0));
    }

    #[test]
    fn vnet_header_is_parsed() {
        let cfg = TapConfig::default();
        // A link value without a device is not constructible; parse through
        // a detached instance built from /dev/null.
        let fd = std::fs::File::open("/dev/null").unwrap();
        let mut link = TapLink {
            fd: OwnedFd::from(fd),
            name: "test".into(),
            mode: cfg.mode,
            mtu: 1500,
            mac: default_mac(),
            vnet_hdr: true,
            offloads: true,
            batch: 1,
            rx_cap: 0,
            scratch: Batch::new(),
            stats: TapStats::default(),
        };
        let mut h = [0u8; VNET_HDR_LEN];
        h[0] = vnet::F_NEEDS_CSUM;
        h[1] = vnet::GSO_TCPV4;
        h[4..6].copy_from_slice(&1448u16.to_le_bytes());
        h[6..8].copy_from_slice(&34u16.to_le_bytes());
        h[8..10].copy_from_slice(&16u16.to_le_bytes());
        let m = link.parse_vnet_hdr(&h, 60_000).unwrap();
        assert_eq!(m.gso_size, Some(1448));
        assert!(m.csum_verified);
        assert_eq!(
            m.csum_partial,
            Some(crate::CsumPartial {
                start: 34,
                offset: 16
            })
        );
        // Offsets beyond the frame, and GSO types we never asked for.
        assert_eq!(link.parse_vnet_hdr(&h, 40), None);
        h[1] = 3; // VIRTIO_NET_HDR_GSO_UDP
        assert_eq!(link.parse_vnet_hdr(&h, 60_000), None);
        let mut h = [0u8; VNET_HDR_LEN];
        h[0] = vnet::F_DATA_VALID;
        let m = link.parse_vnet_hdr(&h, 60).unwrap();
        assert!(m.csum_verified && m.csum_partial.is_none() && m.gso_size.is_none());
        // Counted once each; the refused headers not at all.
        let st = link.stats();
        assert_eq!((st.rx_gso, st.rx_csum_partial, st.rx_data_valid), (1, 1, 1));
    }
}
