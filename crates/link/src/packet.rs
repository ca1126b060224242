//! AF_PACKET L2 mode: the stack has its own MAC and IPv4 address on an
//! Ethernet interface (it answers and resolves ARP itself) and exchanges
//! whole Ethernet frames with the interface. Receive is a memory-mapped
//! `TPACKET_V3` ring: the kernel fills blocks of variable-size frames and
//! hands a block over when it is full or its retire timer fires; we walk
//! its frames and give the block back. Transmit is `sendmmsg` on the same
//! socket. A classic BPF filter keeps only IPv4 and ARP frames to our MAC
//! or broadcast, and `PACKET_IGNORE_OUTGOING` hides our own transmissions.
//!
//! With `PACKET_VNET_HDR` (default; [`PacketConfig::offload`]) every frame
//! carries a `virtio_net_hdr`: received GSO super-frames (a veth peer's
//! TSO) come with their segment size and partial checksum, which the stack
//! trusts instead of verifying, and the stack's TCP super-segments go out
//! whole for the kernel (or the NIC) to segment (TSO). Without it, partial
//! checksums are completed in software.
//!
//! The interface is put in promiscuous mode (through the socket's
//! membership, so the kernel undoes it when the socket closes) because the
//! NIC must accept frames for a MAC that is not its own.
#![allow(unsafe_code)]

use crate::bpf;
use crate::csum;
use crate::netif;
use crate::txq::{Sent, TxQueue, CHUNK};
use crate::vnet::{self, VNET_HDR_LEN};
use crate::{gso, Batch, FrameMeta, Link, LinkCaps};
use daytona_core::time::Instant;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

const ETH_P_ALL: u16 = 0x0003;
/// Frames per `recvmmsg`.
const BATCH: usize = 32;
/// Largest IPv4 packet: the TSO limit with `PACKET_VNET_HDR`.
const MAX_IP_PACKET: usize = 65_535;

/// How to open a [`PacketLink`].
#[derive(Debug, Clone)]
pub struct PacketConfig {
    pub interface: String,
    /// The stack's MAC address (its own, not the interface's).
    pub mac: [u8; 6],
    /// Put the interface in promiscuous mode while the link is open.
    pub promiscuous: bool,
    /// Bytes per ring block (a multiple of the page size, and larger than
    /// the largest frame: a veth peer hands over 64 KiB GSO frames).
    pub block_size: usize,
    /// Blocks in the ring.
    pub blocks: usize,
    /// Milliseconds after which the kernel hands over a block that is not
    /// full: the receive latency at low packet rates.
    pub retire_ms: u32,
    /// Use `PACKET_VNET_HDR` (TSO on transmit, GSO frames and trusted
    /// partial checksums on receive); falls back when the kernel refuses.
    pub offload: bool,
    /// Receive through the TPACKET_V3 ring (default: the best throughput,
    /// but the kernel wakes the reader only when a block is full or
    /// `retire_ms` has passed, so a lone packet can wait that long) or,
    /// when false, with `recvmmsg` (a wake-up per packet: the latency of
    /// request/response traffic).
    pub ring: bool,
}

impl PacketConfig {
    pub fn new(interface: &str, mac: [u8; 6]) -> Self {
        PacketConfig {
            interface: interface.to_string(),
            mac,
            promiscuous: true,
            block_size: 1 << 18,
            blocks: 64,
            retire_ms: 1,
            offload: true,
            ring: true,
        }
    }
}

/// Counters of an L2 link.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PacketStats {
    pub rx_frames: u64,
    pub rx_blocks: u64,
    /// Frames longer than a block could hold (dropped).
    pub rx_truncated: u64,
    pub rx_checksum_completed: u64,
    /// Received GSO super-frames (with `PACKET_VNET_HDR`).
    pub rx_gso: u64,
    /// Received frames with a virtio header we cannot use (UDP GSO).
    pub rx_unusable: u64,
    /// Frames the kernel dropped because the ring was full.
    pub rx_ring_drops: u64,
    /// Frames the kernel took.
    pub tx_frames: u64,
    /// TCP super-segments (TSO) handed to the kernel.
    pub tx_gso: u64,
    /// Times the socket's buffer was full (the frames that did not fit
    /// wait in the link's backlog).
    pub tx_stalls: u64,
    /// Frames dropped: malformed, refused by the kernel, or beyond the
    /// backlog's bound.
    pub tx_dropped: u64,
    /// Frames waiting in the backlog now.
    pub tx_held: u64,
}

fn fmt_mac(m: [u8; 6]) -> String {
    let h: Vec<String> = m.iter().map(|b| format!("{b:02x}")).collect();
    h.join(":")
}

/// The mapped ring; unmapped on drop.
struct Ring {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping belongs to one PacketLink and is only touched through
// `&mut self` methods; moving it to another thread is fine.
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; unmapped once.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// The AF_PACKET L2 link (Ethernet medium).
pub struct PacketLink {
    // Field order: the ring is unmapped before the socket closes.
    ring: Option<Ring>,
    /// Receive buffers without a ring.
    bufs: Vec<Vec<u8>>,
    fd: OwnedFd,
    block_size: usize,
    blocks: usize,
    cur: usize,
    interface: String,
    mac: [u8; 6],
    mtu: usize,
    vnet: bool,
    /// Frames waiting for room in the socket's buffer.
    txq: TxQueue,
    /// Frames whose partial checksums were completed (no vnet header).
    scratch: Batch,
    stats: PacketStats,
}

impl std::fmt::Debug for PacketLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketLink")
            .field("interface", &self.interface)
            .field("mac", &self.mac)
            .field("blocks", &self.blocks)
            .finish()
    }
}

impl PacketLink {
    /// Opens the socket and its ring on `cfg.interface`, in the calling
    /// thread's network namespace. Needs CAP_NET_RAW.
    pub fn open(cfg: PacketConfig) -> io::Result<PacketLink> {
        let page = 4096;
        if cfg.block_size < 1 << 17 || !cfg.block_size.is_multiple_of(page) || cfg.blocks == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ring blocks must be page multiples of at least 128 KiB",
            ));
        }
        let ifindex = netif::ifindex(&cfg.interface)?;
        let mtu = netif::mtu(&cfg.interface)?;
        if netif::mac(&cfg.interface)? == cfg.mac {
            // The kernel would take those frames too, and answer them.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "L2 mode needs a MAC of the stack's own: {} belongs to the kernel's \
                     interface {}",
                    fmt_mac(cfg.mac),
                    cfg.interface
                ),
            ));
        }
        let fd = netif::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            0,
            "opening the L2-mode AF_PACKET socket",
        )?;
        bpf::attach(fd.as_raw_fd(), &bpf::ethernet_filter(cfg.mac)?)?;
        let _ = netif::setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1);
        // Before the ring: the kernel refuses it once a ring exists.
        let vnet = cfg.offload
            && netif::setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1).is_ok();
        let ring = if cfg.ring {
            Some(Self::map_ring(&fd, &cfg)?)
        } else {
            netif::setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)?;
            netif::grow_buffer(&fd, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, 16 << 20);
            None
        };
        netif::bind_packet(&fd, ifindex, ETH_P_ALL)
            .map_err(|e| netif::cap_error("binding the AF_PACKET socket", "CAP_NET_RAW", e))?;
        if cfg.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            // SAFETY: `mreq` is a valid packet_mreq living across the call.
            let r = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_ADD_MEMBERSHIP,
                    &mreq as *const libc::packet_mreq as *const libc::c_void,
                    std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
                )
            };
            if r < 0 {
                return Err(netif::cap_error(
                    "putting the interface in promiscuous mode",
                    "CAP_NET_ADMIN",
                    io::Error::last_os_error(),
                ));
            }
        }
        netif::grow_buffer(&fd, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, 16 << 20);
        let bufs = if ring.is_none() {
            (0..BATCH).map(|_| vec![0u8; MAX_IP_PACKET + 14]).collect()
        } else {
            Vec::new()
        };
        Ok(PacketLink {
            ring,
            bufs,
            fd,
            block_size: cfg.block_size,
            blocks: cfg.blocks,
            cur: 0,
            interface: cfg.interface,
            mac: cfg.mac,
            mtu,
            vnet,
            txq: TxQueue::default(),
            scratch: Batch::new(),
            stats: PacketStats::default(),
        })
    }

    /// Sets up and maps the TPACKET_V3 receive ring.
    fn map_ring(fd: &OwnedFd, cfg: &PacketConfig) -> io::Result<Ring> {
        netif::setsockopt_int(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            libc::tpacket_versions::TPACKET_V3 as i32,
        )?;
        let frame_size = 2048u32;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size as u32,
            tp_block_nr: cfg.blocks as u32,
            tp_frame_size: frame_size,
            tp_frame_nr: (cfg.block_size / frame_size as usize * cfg.blocks) as u32,
            tp_retire_blk_tov: cfg.retire_ms.max(1),
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        // SAFETY: `req` is a valid tpacket_req3 living across the call.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_RX_RING,
                &req as *const libc::tpacket_req3 as *const libc::c_void,
                std::mem::size_of::<libc::tpacket_req3>() as libc::socklen_t,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("setting up the TPACKET_V3 ring: {e}"),
            ));
        }
        let len = cfg.block_size * cfg.blocks;
        // SAFETY: maps the ring the kernel just allocated for this socket;
        // the result is checked and owned by `Ring`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("mapping the TPACKET_V3 ring: {e}"),
            ));
        }
        Ok(Ring {
            ptr: ptr as *mut u8,
            len,
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The stack's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Whether frames carry virtio headers (TSO and GSO in use).
    pub fn offload(&self) -> bool {
        self.vnet
    }

    /// Counters, including the kernel's ring-full drops since last asked.
    pub fn stats(&mut self) -> PacketStats {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: PACKET_STATISTICS writes at most `len` bytes into `st`.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                &mut st as *mut libc::tpacket_stats_v3 as *mut libc::c_void,
                &mut len,
            )
        };
        if r == 0 {
            self.stats.rx_ring_drops += u64::from(st.tp_drops);
        }
        let q = self.txq.counters();
        PacketStats {
            tx_frames: q.sent,
            tx_stalls: q.stalls,
            tx_dropped: q.dropped(),
            tx_held: self.txq.held() as u64,
            ..self.stats
        }
    }

    /// Walks the current block if the kernel has handed it over; returns
    /// false when it has not.
    fn take_block(&mut self, batch: &mut Batch) -> bool {
        let Some(ring) = self.ring.as_ref() else {
            return false;
        };
        // SAFETY: cur < blocks, so the block lies inside the mapping.
        let base = unsafe { ring.ptr.add(self.cur * self.block_size) };
        let desc = base as *mut libc::tpacket_block_desc;
        // SAFETY: block_status is an aligned u32 inside the block header
        // that the kernel writes concurrently: read it atomically, with
        // acquire so the frames it publishes are visible.
        let status_word =
            unsafe { AtomicU32::from_ptr(std::ptr::addr_of_mut!((*desc).hdr.bh1.block_status)) };
        if status_word.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return false;
        }
        // SAFETY: the block is ours until we hand it back; its header is
        // within the mapping.
        let (num, first) = unsafe {
            let h = &(*desc).hdr.bh1;
            (h.num_pkts, h.offset_to_first_pkt as usize)
        };
        let mut off = first;
        for _ in 0..num {
            let hdr_len = std::mem::size_of::<libc::tpacket3_hdr>();
            if off + hdr_len > self.block_size {
                break;
            }
            // SAFETY: `off + hdr_len` is within the block (checked above).
            let h = unsafe { std::ptr::read_unaligned(base.add(off) as *const libc::tpacket3_hdr) };
            let start = off + usize::from(h.tp_mac);
            let snap = h.tp_snaplen as usize;
            if start + snap > self.block_size {
                break;
            }
            let vnet_at = start
                .checked_sub(VNET_HDR_LEN)
                .filter(|a| *a >= off + hdr_len);
            if snap < h.tp_len as usize {
                self.stats.rx_truncated += 1;
            } else if let (true, Some(at)) = (self.vnet, vnet_at) {
                // The virtio header sits right before the frame.
                // SAFETY: `at..start + snap` lies within the block (checked
                // above), which the kernel does not touch while we own it.
                let (hdr, frame) = unsafe {
                    (
                        &*(base.add(at) as *const [u8; VNET_HDR_LEN]),
                        std::slice::from_raw_parts(base.add(start), snap),
                    )
                };
                match vnet::parse(hdr, snap) {
                    Some(meta) => {
                        self.stats.rx_gso += u64::from(meta.gso_size.is_some());
                        batch.push_with(frame, meta);
                        self.stats.rx_frames += 1;
                    }
                    None => self.stats.rx_unusable += 1,
                }
            } else if self.vnet {
                self.stats.rx_unusable += 1;
            } else {
                // SAFETY: the frame lies within the block (checked above),
                // which the kernel does not touch while we own it.
                let frame = unsafe { std::slice::from_raw_parts_mut(base.add(start), snap) };
                let mut meta = FrameMeta::default();
                if h.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0
                    && frame.len() > 14
                    && frame[12..14] == [0x08, 0x00]
                    && csum::complete_l4_checksum(&mut frame[14..])
                {
                    self.stats.rx_checksum_completed += 1;
                    meta.gso_size = csum::gso_estimate(&frame[14..], self.mtu);
                }
                batch.push_with(frame, meta);
                self.stats.rx_frames += 1;
            }
            if h.tp_next_offset == 0 {
                break;
            }
            off += h.tp_next_offset as usize;
        }
        // Hand the block back; release so our reads finish first.
        status_word.store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.cur = (self.cur + 1) % self.blocks;
        self.stats.rx_blocks += 1;
        true
    }

    /// One `recvmmsg` (no ring); returns whether the socket may hold more.
    fn recv_some(&mut self, batch: &mut Batch) -> io::Result<bool> {
        // SAFETY: plain C structs; all-zero is valid.
        let mut iov: [[libc::iovec; 2]; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: plain C structs; all-zero is valid.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs = [[0u8; VNET_HDR_LEN]; BATCH];
        let mut cmsg = [[0u64; 8]; BATCH];
        let h = if self.vnet { VNET_HDR_LEN } else { 0 };
        let cap = self.bufs.first().map_or(0, |b| b.len());
        for i in 0..BATCH {
            // With PACKET_VNET_HDR the virtio header comes first.
            iov[i][0].iov_base = hdrs[i].as_mut_ptr() as *mut libc::c_void;
            iov[i][0].iov_len = h;
            iov[i][1].iov_base = self.bufs[i].as_mut_ptr() as *mut libc::c_void;
            iov[i][1].iov_len = cap;
            msgs[i].msg_hdr.msg_iov = iov[i].as_mut_ptr();
            msgs[i].msg_hdr.msg_iovlen = 2;
            msgs[i].msg_hdr.msg_control = cmsg[i].as_mut_ptr() as *mut libc::c_void;
            msgs[i].msg_hdr.msg_controllen = std::mem::size_of_val(&cmsg[i]);
        }
        // SAFETY: every message points at live buffers of the stated
        // sizes; the arrays outlive the call.
        let n = unsafe { netif::recv_msgs(&self.fd, &mut msgs)? };
        if n == 0 {
            return Ok(false);
        }
        for (i, m) in msgs.iter().enumerate().take(n) {
            let len = (m.msg_len as usize).saturating_sub(h);
            if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || len > cap {
                self.stats.rx_truncated += 1;
                continue;
            }
            let frame = &mut self.bufs[i][..len];
            if !self.vnet {
                // Without the virtio header the auxdata status tells
                // partial checksums (local GSO frames): complete them.
                let mut meta = FrameMeta::default();
                if crate::raw::aux_status(&m.msg_hdr) & libc::TP_STATUS_CSUMNOTREADY != 0
                    && frame.len() > 14
                    && frame[12..14] == [0x08, 0x00]
                    && csum::complete_l4_checksum(&mut frame[14..])
                {
                    self.stats.rx_checksum_completed += 1;
                    meta.gso_size = csum::gso_estimate(&frame[14..], self.mtu);
                }
                batch.push_with(frame, meta);
                self.stats.rx_frames += 1;
                continue;
            }
            match vnet::parse(&hdrs[i], len) {
                Some(meta) => {
                    self.stats.rx_gso += u64::from(meta.gso_size.is_some());
                    batch.push_with(frame, meta);
                    self.stats.rx_frames += 1;
                }
                None => self.stats.rx_unusable += 1,
            }
        }
        Ok(n == BATCH)
    }
}

/// Sends one chunk of Ethernet frames on the bound packet socket, each
/// behind its virtio header when `vnet`; counts the super-segments among
/// those the kernel is done with in `tx_gso`.
fn send_chunk(fd: &OwnedFd, vnet: bool, tx_gso: &mut u64, frames: &[(&[u8], FrameMeta)]) -> Sent {
    // SAFETY: plain C structs; all-zero is valid.
    let mut iov: [[libc::iovec; 4]; CHUNK] = unsafe { std::mem::zeroed() };
    // SAFETY: plain C structs; all-zero is valid.
    let mut msgs: [libc::mmsghdr; CHUNK] = unsafe { std::mem::zeroed() };
    let mut hdrs = [[0u8; VNET_HDR_LEN]; CHUNK];
    let mut partial = [[0u8; 2]; CHUNK];
    let mut gso = [false; CHUNK];
    let n = frames.len().min(CHUNK);
    let io = |p: *const u8, len: usize| libc::iovec {
        iov_base: p as *mut libc::c_void,
        iov_len: len,
    };
    for i in 0..n {
        let (f, meta) = frames[i];
        let mut count = 0;
        let mut split = None;
        if vnet {
            let (h, s) = vnet::for_transmit(f, meta, true);
            hdrs[i] = h;
            split = s;
            // A GSO type: a super-segment (its checksum made partial
            // here or already by the stack).
            gso[i] = h[1] != 0;
            iov[i][0] = io(hdrs[i].as_ptr(), VNET_HDR_LEN);
            count = 1;
        }
        match split {
            // A super-segment: the checksum field carries the
            // pseudo-header sum (the kernel completes each segment's).
            Some((at, sum)) => {
                partial[i] = sum;
                iov[i][count] = io(f.as_ptr(), at);
                iov[i][count + 1] = io(partial[i].as_ptr(), 2);
                iov[i][count + 2] = io(f[at + 2..].as_ptr(), f.len() - at - 2);
                count += 3;
            }
            None => {
                iov[i][count] = io(f.as_ptr(), f.len());
                count += 1;
            }
        }
        msgs[i].msg_hdr.msg_iov = iov[i].as_mut_ptr();
        msgs[i].msg_hdr.msg_iovlen = count;
    }
    // SAFETY: the first n messages point at live iovecs, which point at
    // live frames, headers and checksum words that outlive the call; the
    // socket is bound, so no address is needed.
    let s = unsafe { netif::send_msgs(fd, &mut msgs[..n]) };
    let done = (s.taken + s.refused).min(n);
    *tx_gso += gso[..done].iter().filter(|g| **g).count() as u64;
    s
}

impl Link for PacketLink {
    fn caps(&self) -> LinkCaps {
        LinkCaps {
            ethernet: true,
            mtu: self.mtu,
            max_segment: if self.vnet { MAX_IP_PACKET } else { self.mtu },
            rx_checksum_verified: false,
            tx_checksum_offload: self.vnet,
        }
    }

    fn recv_batch(&mut self, now: Instant, batch: &mut Batch) -> io::Result<usize> {
        let (fd, vnet, gso) = (&self.fd, self.vnet, &mut self.stats.tx_gso);
        self.txq.flush(now, &mut |c| send_chunk(fd, vnet, gso, c));
        let before = batch.len();
        if self.ring.is_none() {
            while batch.len() - before < 256 {
                if !self.recv_some(batch)? {
                    break;
                }
            }
            return Ok(batch.len() - before);
        }
        for _ in 0..self.blocks {
            if !self.take_block(batch) {
                break;
            }
        }
        Ok(batch.len() - before)
    }

    fn send_batch(&mut self, now: Instant, batch: &Batch) -> io::Result<usize> {
        if !self.vnet && batch.iter_meta().any(|(_, m)| m.csum_partial.is_some()) {
            // No vnet header to ask the kernel: complete partial checksums
            // on a copy.
            let mut done = std::mem::take(&mut self.scratch);
            done.clear();
            for (f, m) in batch.iter_meta() {
                let _ = done.fill_with(f.len(), |b| {
                    let b = &mut b[..f.len()];
                    b.copy_from_slice(f);
                    if let Some(p) = m.csum_partial {
                        gso::complete_checksum(b, p);
                    }
                    let m = FrameMeta {
                        csum_partial: None,
                        ..m
                    };
                    Ok::<_, ()>(Some((f.len(), m)))
                });
            }
            let n = self.send_frames(now, &done);
            self.scratch = done;
            return Ok(n);
        }
        Ok(self.send_frames(now, batch))
    }

    fn poll_at(&self) -> Option<Instant> {
        self.txq.poll_at()
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }
}

impl PacketLink {
    /// Sends the frames of `batch` as they are (behind held ones); returns
    /// how many the kernel took or the backlog holds.
    fn send_frames(&mut self, now: Instant, batch: &Batch) -> usize {
        let max = if self.vnet { MAX_IP_PACKET } else { self.mtu } + 14;
        let (fd, vnet, gso) = (&self.fd, self.vnet, &mut self.stats.tx_gso);
        self.txq.send(now, batch.iter_meta(), 14..=max, |c| {
            send_chunk(fd, vnet, gso, c)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_can_move_to_a_runtime_thread() {
        fn send<T: Send>() {}
        send::<PacketLink>();
    }

    /// The real `sendmmsg` path and the backlog, without privileges: a
    /// datagram socket pair whose reader does not read fills up; the rest
    /// is held and leaves, in order, as the reader drains.
    #[test]
    fn a_full_socket_holds_frames_and_flushes_them_in_order() {
        use rustix::net::{socketpair, AddressFamily, RecvFlags, SocketFlags, SocketType};
        let (a, b) = socketpair(
            AddressFamily::UNIX,
            SocketType::DGRAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .expect("socketpair");
        // The smallest buffer the kernel allows: a few frames fit.
        netif::setsockopt_int(&a, libc::SOL_SOCKET, libc::SO_SNDBUF, 1).expect("SO_SNDBUF");
        let frames: Vec<Vec<u8>> = (0..300u16)
            .map(|i| {
                let mut f = vec![0u8; 1000];
                f[..2].copy_from_slice(&i.to_be_bytes());
                f
            })
            .collect();
        let mut q = TxQueue::default();
        let mut gso = 0;
        let mut send = |c: &[(&[u8], FrameMeta)]| send_chunk(&a, false, &mut gso, c);
        let now = Instant::ZERO;
        let items = frames.iter().map(|f| (f.as_slice(), FrameMeta::default()));
        assert_eq!(q.send(now, items, 0..=2000, &mut send), frames.len());
        assert!(q.held() > 0, "the smallest send buffer took 300 KB at once");
        assert!(q.poll_at().is_some());
        let mut got = Vec::new();
        let mut buf = vec![0u8; 2000];
        for _ in 0..10_000 {
            while let Ok((n, _)) = rustix::net::recv(&b, &mut buf[..], RecvFlags::DONTWAIT) {
                got.push(buf[..n].to_vec());
            }
            if q.flush(now, &mut send) && got.len() == frames.len() {
                break;
            }
        }
        assert_eq!(got.len(), frames.len());
        assert!(got == frames, "frames arrived out of order");
        assert_eq!((q.held(), q.poll_at()), (0, None));
        let c = q.counters();
        assert_eq!((c.sent, c.refused, c.overflow), (300, 0, 0));
        assert!(c.stalls > 0);
    }

    #[test]
    fn small_or_unaligned_ring_blocks_are_refused() {
        let mut cfg = PacketConfig::new("lo", [2, 0, 0, 0, 0, 1]);
        cfg.block_size = 4096;
        let e = PacketLink::open(cfg.clone()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        cfg.block_size = (1 << 18) + 1;
        assert!(PacketLink::open(cfg).is_err());
    }
}
