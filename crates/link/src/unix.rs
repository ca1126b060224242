//! [`SocketPairLink`]: two ends of an `AF_UNIX` `SOCK_SEQPACKET` socket
//! pair carrying bare IPv4 packets — a real file-descriptor link between two
//! runtimes in one process (or two processes), with no privileges needed.
//!
//! Each IP packet is one seqpacket message, so packet boundaries survive.
//! Both ends are non-blocking; the runtime waits on [`Link::wait_fd`].
//! Batches move with one `recvmmsg` / `sendmmsg` each (the only `unsafe`
//! here); the socket itself comes from `rustix`'s safe calls.
#![allow(unsafe_code)]

use crate::{Batch, Link, LinkCaps};
use daytona_core::time::{Duration, Instant};
use rustix::net::{socketpair, sockopt, AddressFamily, SocketFlags, SocketType};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// Frames read per `recv_batch` call (one `recvmmsg`) at most.
const RECV_BATCH: usize = 64;
/// Frames per `sendmmsg`.
const SEND_BATCH: usize = 64;
/// Frames held while the socket's send buffer is full, at most; beyond it
/// frames are dropped (and counted), like a full transmit queue.
const BACKLOG_LIMIT: usize = 4096;
/// Socket buffer size asked for (root may exceed `wmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;
/// How soon a runtime should retry a held backlog.
const BACKLOG_RETRY: Duration = Duration::from_micros(200);

/// Counters of one end.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SocketPairStats {
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Frames dropped because the backlog was full.
    pub tx_dropped: u64,
    /// Received messages longer than the MTU (dropped).
    pub rx_oversized: u64,
}

/// One end of a socket-pair link carrying bare IPv4 packets (IP medium).
#[derive(Debug)]
pub struct SocketPairLink {
    fd: OwnedFd,
    caps: LinkCaps,
    /// One receive buffer per message of a `recvmmsg` (MTU + 1, to see
    /// oversized messages as truncated).
    rx_bufs: Vec<Vec<u8>>,
    backlog: VecDeque<Vec<u8>>,
    pool: Vec<Vec<u8>>,
    last_now: Instant,
    stats: SocketPairStats,
}

impl SocketPairLink {
    /// Two connected ends with the given IP MTU.
    pub fn pair(mtu: usize) -> io::Result<(SocketPairLink, SocketPairLink)> {
        if !(68..=65_535).contains(&mtu) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("MTU {mtu} out of range 68..=65535"),
            ));
        }
        let (a, b) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )?;
        Ok((Self::new(a, mtu), Self::new(b, mtu)))
    }

    fn new(fd: OwnedFd, mtu: usize) -> SocketPairLink {
        // Large buffers so a window of packets fits; root may force past
        // `net.core.wmem_max`, others get what the kernel allows.
        if sockopt::set_socket_send_buffer_size_force(&fd, SOCKET_BUFFER).is_err() {
            let _ = sockopt::set_socket_send_buffer_size(&fd, SOCKET_BUFFER);
        }
        if sockopt::set_socket_recv_buffer_size_force(&fd, SOCKET_BUFFER).is_err() {
            let _ = sockopt::set_socket_recv_buffer_size(&fd, SOCKET_BUFFER);
        }
        SocketPairLink {
            fd,
            caps: LinkCaps {
                ethernet: false,
                mtu,
                max_segment: mtu,
                rx_checksum_verified: false,
                tx_checksum_offload: false,
            },
            rx_bufs: (0..RECV_BATCH).map(|_| vec![0u8; mtu + 1]).collect(),
            backlog: VecDeque::new(),
            pool: Vec::new(),
            last_now: Instant::ZERO,
            stats: SocketPairStats::default(),
        }
    }

    pub fn stats(&self) -> SocketPairStats {
        self.stats
    }

    /// Sends held frames until the socket is full again.
    fn flush_backlog(&mut self) -> io::Result<()> {
        while !self.backlog.is_empty() {
            let mut chunk: [&[u8]; SEND_BATCH] = [&[]; SEND_BATCH];
            let mut n = 0;
            for (slot, f) in chunk.iter_mut().zip(self.backlog.iter()) {
                *slot = f;
                n += 1;
            }
            let sent = match send_many(self.fd.as_fd(), &chunk[..n]) {
                Ok(sent) => sent,
                Err(e) => {
                    // The peer is gone (EPIPE, ECONNRESET): nobody will take
                    // the held frames; drop them rather than retry forever.
                    self.stats.tx_dropped += self.backlog.len() as u64;
                    self.pool.extend(self.backlog.drain(..));
                    return Err(e);
                }
            };
            self.stats.frames_sent += sent as u64;
            for _ in 0..sent {
                if let Some(f) = self.backlog.pop_front() {
                    self.pool.push(f);
                }
            }
            if sent < n {
                break;
            }
        }
        Ok(())
    }

    fn hold(&mut self, frame: &[u8]) {
        if self.backlog.len() >= BACKLOG_LIMIT {
            self.stats.tx_dropped += 1;
            return;
        }
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(frame);
        self.backlog.push_back(v);
    }
}

impl Link for SocketPairLink {
    fn caps(&self) -> LinkCaps {
        self.caps
    }

    fn recv_batch(&mut self, now: Instant, batch: &mut Batch) -> io::Result<usize> {
        self.last_now = now;
        self.flush_backlog()?;
        let mtu = self.caps.mtu;
        let (n, oversized) = recv_many(self.fd.as_fd(), &mut self.rx_bufs, mtu, batch)?;
        self.stats.frames_received += n as u64;
        self.stats.rx_oversized += oversized as u64;
        Ok(n)
    }

    fn send_batch(&mut self, now: Instant, batch: &Batch) -> io::Result<usize> {
        self.last_now = now;
        if let Some(f) = batch.iter().find(|f| f.len() > self.caps.mtu) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {} bytes larger than the MTU", f.len()),
            ));
        }
        self.flush_backlog()?;
        let mut frames = batch.iter();
        loop {
            let mut chunk: [&[u8]; SEND_BATCH] = [&[]; SEND_BATCH];
            let mut n = 0;
            for (slot, f) in chunk.iter_mut().zip(frames.by_ref()) {
                *slot = f;
                n += 1;
            }
            if n == 0 {
                break;
            }
            // Behind a backlog, frames queue up in order.
            let sent = if self.backlog.is_empty() {
                send_many(self.fd.as_fd(), &chunk[..n])?
            } else {
                0
            };
            self.stats.frames_sent += sent as u64;
            for f in &chunk[sent..n] {
                self.hold(f);
            }
        }
        Ok(batch.len())
    }

    fn poll_at(&self) -> Option<Instant> {
        (!self.backlog.is_empty()).then(|| self.last_now + BACKLOG_RETRY)
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }
}

/// One `recvmmsg` of up to `bufs.len()` messages (non-blocking); appends
/// each to `batch`. Returns (messages appended, oversized ones dropped).
fn recv_many(
    fd: BorrowedFd<'_>,
    bufs: &mut [Vec<u8>],
    mtu: usize,
    batch: &mut Batch,
) -> io::Result<(usize, usize)> {
    let count = bufs.len().min(RECV_BATCH);
    // SAFETY: plain C structs, for which all-zero is a valid value.
    let mut iov: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..count {
        iov[i].iov_base = bufs[i].as_mut_ptr() as *mut libc::c_void;
        iov[i].iov_len = bufs[i].len();
        msgs[i].msg_hdr.msg_iov = &mut iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: each of the first `count` headers points at one live iovec,
    // which points at a live buffer of the stated length; `iov`, `msgs` and
    // `bufs` outlive the call; no address or control buffers are given.
    let n = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            msgs.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    let n = crate::netif::mmsg_count(n)?;
    let (mut got, mut oversized) = (0, 0);
    for (m, buf) in msgs.iter().zip(bufs.iter()).take(n) {
        let len = m.msg_len as usize;
        if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || len > mtu {
            oversized += 1;
        } else if len > 0 {
            // (A zero-length message carries nothing; the peer closing
            // looks the same on a seqpacket socket.)
            batch.push(&buf[..len]);
            got += 1;
        }
    }
    Ok((got, oversized))
}

/// One `sendmmsg` of `frames` (non-blocking); returns how many the kernel
/// took (0 when the socket is full).
fn send_many(fd: BorrowedFd<'_>, frames: &[&[u8]]) -> io::Result<usize> {
    let count = frames.len().min(SEND_BATCH);
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: plain C structs, for which all-zero is a valid value.
    let mut iov: [libc::iovec; SEND_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..count {
        // The kernel only reads through this pointer (sendmmsg).
        iov[i].iov_base = frames[i].as_ptr() as *mut libc::c_void;
        iov[i].iov_len = frames[i].len();
        msgs[i].msg_hdr.msg_iov = &mut iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: each of the first `count` headers points at one live iovec
    // describing a live frame; `iov`, `msgs` and `frames` outlive the call;
    // no address (the socket is connected) or control data.
    let n = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            msgs.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    crate::netif::mmsg_count(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_cross_with_boundaries_kept() {
        let (mut a, mut b) = SocketPairLink::pair(1500).unwrap();
        let mut batch = Batch::new();
        batch.push(&[1u8; 100]);
        batch.push(&[2u8; 1500]);
        batch.push(&[3u8; 1]);
        assert_eq!(a.send_batch(Instant::ZERO, &batch).unwrap(), 3);
        let mut rx = Batch::new();
        assert_eq!(b.recv_batch(Instant::ZERO, &mut rx).unwrap(), 3);
        let got: Vec<(u8, usize)> = rx.iter().map(|f| (f[0], f.len())).collect();
        assert_eq!(got, vec![(1, 100), (2, 1500), (3, 1)]);
        // Nothing more: non-blocking, no error.
        rx.clear();
        assert_eq!(b.recv_batch(Instant::ZERO, &mut rx).unwrap(), 0);
        assert!(a.wait_fd().is_some());
        assert_eq!(a.stats().frames_sent, 3);
    }

    #[test]
    fn oversized_frames_are_refused() {
        let (mut a, _b) = SocketPairLink::pair(576).unwrap();
        let mut batch = Batch::new();
        batch.push(&[0u8; 577]);
        let err = a.send_batch(Instant::ZERO, &batch).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(SocketPairLink::pair(10).is_err());
    }

    #[test]
    fn a_full_socket_holds_frames_and_releases_them_in_order() {
        let (mut a, mut b) = SocketPairLink::pair(1500).unwrap();
        let mut batch = Batch::new();
        for i in 0..6000u32 {
            let mut f = vec![0u8; 1400];
            f[..4].copy_from_slice(&i.to_be_bytes());
            batch.push(&f);
        }
        let t = Instant::from_secs(1);
        a.send_batch(t, &batch).unwrap();
        let mut got = Vec::new();
        let mut rx = Batch::new();
        for _ in 0..10_000 {
            rx.clear();
            b.recv_batch(t, &mut rx).unwrap();
            got.extend(
                rx.iter()
                    .map(|f| u32::from_be_bytes([f[0], f[1], f[2], f[3]])),
            );
            a.send_batch(t, &Batch::new()).unwrap();
            if a.poll_at().is_none() && rx.is_empty() {
                break;
            }
        }
        let dropped = a.stats().tx_dropped as usize;
        assert_eq!(got.len() + dropped, 6000);
        assert!(got.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_vanished_peer_releases_the_held_frames() {
        let (mut a, b) = SocketPairLink::pair(1500).unwrap();
        let mut batch = Batch::new();
        for _ in 0..6000 {
            batch.push(&[7u8; 1400]);
        }
        let t = Instant::from_secs(1);
        a.send_batch(t, &batch).unwrap();
        assert!(a.poll_at().is_some(), "the socket is full: frames are held");
        drop(b);
        // Nobody will ever take them: they are dropped (and counted), and
        // the link stops asking to be polled again.
        let mut rx = Batch::new();
        let _ = a.recv_batch(t, &mut rx);
        assert_eq!(a.poll_at(), None);
        let st = a.stats();
        assert_eq!(st.frames_sent + st.tx_dropped, 6000);
    }
}
