//! `UdpSocket`, modelled on [`std::net::UdpSocket`].

use crate::rt::{io_error, Interest, Runtime, Shared};
use crate::tcp::{bind_any_port, resolve};
use daytona_core::stack::UdpHandle;
use daytona_core::Error as E;
use daytona_link::PortProto;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A UDP socket — like [`std::net::UdpSocket`]: `bind`, `send_to`,
/// `recv_from` (blocking, with an optional read timeout after which it
/// fails with `WouldBlock`, as `std` on Unix).
#[derive(Clone)]
pub struct UdpSocket {
    inner: Arc<UdpInner>,
}

struct UdpInner {
    rt: Arc<Shared>,
    h: UdpHandle,
    local: SocketAddrV4,
    nonblocking: AtomicBool,
    read_timeout: Mutex<Option<Duration>>,
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.inner.local)
            .finish()
    }
}

impl Drop for UdpInner {
    fn drop(&mut self) {
        let mut core = self.rt.lock();
        core.udps.remove(&self.h);
        if let Some(stack) = core.stack_any() {
            let _ = stack.udp_close(self.h);
        }
        core.close_port(PortProto::Udp, self.local.port());
    }
}

impl UdpSocket {
    /// Binds `addr` (0.0.0.0 or the stack's address; port 0 picks a free
    /// port). Errors: `AddrInUse`, `AddrNotAvailable`.
    pub fn bind(rt: &Runtime, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addr = resolve(addr)?;
        let shared = rt.shared.clone();
        let mut core = shared.lock();
        let (h, port) = if addr.port() != 0 {
            let h = core.stack()?.udp_bind(addr).map_err(io_error)?;
            (h, addr.port())
        } else {
            let ip = *addr.ip();
            bind_any_port(&mut core, |s, port| s.udp_bind(SocketAddrV4::new(ip, port)))?
        };
        if let Err(e) = core.open_port(PortProto::Udp, port) {
            let _ = core.stack()?.udp_close(h);
            return Err(e);
        }
        core.udps.insert(h);
        let local = SocketAddrV4::new(core.stack()?.addr(), port);
        drop(core);
        Ok(UdpSocket {
            inner: Arc::new(UdpInner {
                rt: shared,
                h,
                local,
                nonblocking: AtomicBool::new(false),
                read_timeout: Mutex::new(None),
            }),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.local))
    }

    /// Sends one datagram (larger than the MTU allows: `InvalidInput`; we
    /// do not fragment).
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let to = resolve(addr)?;
        let rt = &self.inner.rt;
        let mut core = rt.lock();
        let now = rt.clock.now();
        let r = core.stack()?.udp_send_to(self.inner.h, to, buf);
        core.after_change(rt, now);
        r.map_err(io_error)
    }

    /// Receives one datagram; a datagram longer than `buf` is truncated.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let rt = &self.inner.rt;
        let timeout = *self
            .inner
            .read_timeout
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let end = timeout.map(|t| rt.clock.now() + t);
        let mut core = rt.lock();
        loop {
            match core.stack()?.udp_recv_from(self.inner.h, buf) {
                Ok((n, from)) => return Ok((n, SocketAddr::V4(from))),
                Err(E::WouldBlock) => {
                    if self.inner.nonblocking.load(Ordering::Relaxed) {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    let seen = core.stack()?.counters().frames_in;
                    core = match rt.wait(core, Interest::Udp(self.inner.h, seen), end) {
                        Ok(c) => c,
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                            return Err(io::ErrorKind::WouldBlock.into())
                        }
                        Err(e) => return Err(e),
                    };
                }
                Err(e) => return Err(io_error(e)),
            }
        }
    }

    /// After `timeout` without a datagram, `recv_from` fails with
    /// `WouldBlock`. `Some(0)` is `InvalidInput`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout.is_some_and(|d| d.is_zero()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        *self
            .inner
            .read_timeout
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = timeout;
        Ok(())
    }

    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(self.clone())
    }
}
