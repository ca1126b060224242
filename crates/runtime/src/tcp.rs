//! `TcpListener` and `TcpStream`, modelled on `std::net`: the same methods,
//! the same blocking behaviour and the same `io::ErrorKind`s, with the
//! runtime as an extra first argument where `std` opens a socket.

use crate::events::{EventSubscription, Ring};
use crate::rt::{io_error, Core, Interest, Runtime, Shared};
use daytona_core::observe::{ConnId, TcpInfo};
use daytona_core::stack::{ConnHandle, ListenerHandle};
use daytona_core::tcp::{Shutdown as CoreShutdown, State};
use daytona_core::time::Instant;
use daytona_core::Error as E;
use daytona_link::PortProto;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Accept queue length of listeners (Linux `somaxconn`, 4096).
const BACKLOG: usize = 4096;

/// Binds a free port for `bind(…:0)` (TCP listeners and UDP sockets):
/// tries the ports of the stack's ephemeral range in turn, starting after
/// the last one handed out, as Linux picks from `ip_local_port_range`
/// (raw mode's links receive only the ports they claimed, which is that
/// range). `AddrInUse` when every port is taken.
pub(crate) fn bind_any_port<H>(
    core: &mut Core,
    mut bind: impl FnMut(&mut daytona_core::stack::Stack, u16) -> Result<H, E>,
) -> io::Result<(H, u16)> {
    let range = core.stack()?.config().ephemeral_ports.clone();
    let (lo, hi) = (*range.start(), *range.end());
    if lo > hi {
        return Err(io_error(E::AddrInUse));
    }
    let span = u32::from(hi - lo) + 1;
    for _ in 0..span {
        let port = if (lo..=hi).contains(&core.next_port) {
            core.next_port
        } else {
            lo
        };
        core.next_port = if port >= hi { lo } else { port + 1 };
        match bind(core.stack()?, port) {
            Ok(h) => return Ok((h, port)),
            Err(E::AddrInUse) => continue,
            Err(e) => return Err(io_error(e)),
        }
    }
    Err(io_error(E::AddrInUse))
}

/// The first IPv4 address `addr` resolves to (`InvalidInput` otherwise).
pub(crate) fn resolve(addr: impl ToSocketAddrs) -> io::Result<SocketAddrV4> {
    for a in addr.to_socket_addrs()? {
        if let SocketAddr::V4(v4) = a {
            return Ok(v4);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "Daytona speaks IPv4 only: no IPv4 address given",
    ))
}

fn deadline(shared: &Shared, timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| shared.clock.now() + t)
}

fn check_timeout(t: Option<Duration>) -> io::Result<()> {
    if t.is_some_and(|d| d.is_zero()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

fn lock_opt(m: &Mutex<Option<Duration>>) -> Option<Duration> {
    *m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A TCP socket server, listening for connections — like
/// [`std::net::TcpListener`].
///
/// ```no_run
/// # fn f(rt: &daytona_runtime::Runtime) -> std::io::Result<()> {
/// use daytona_runtime::TcpListener;
/// use std::io::{Read, Write};
/// let listener = TcpListener::bind(rt, "0.0.0.0:7")?;
/// for stream in listener.incoming() {
///     let mut s = stream?;
///     let mut buf = [0u8; 1024];
///     let n = s.read(&mut buf)?;
///     s.write_all(&buf[..n])?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TcpListener {
    inner: Arc<ListenerInner>,
}

struct ListenerInner {
    rt: Arc<Shared>,
    h: ListenerHandle,
    local: SocketAddrV4,
    nonblocking: AtomicBool,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.inner.local)
            .finish()
    }
}

impl Drop for ListenerInner {
    fn drop(&mut self) {
        let mut core = self.rt.lock();
        core.listeners.remove(&self.h);
        let now = self.rt.clock.now();
        if let Some(stack) = core.stack_any() {
            let _ = stack.tcp_close_listener(now, self.h);
        }
        core.close_port(PortProto::Tcp, self.local.port());
        core.after_change(&self.rt, now);
    }
}

impl TcpListener {
    /// Listens on `addr` (address 0.0.0.0 or the stack's; port 0 picks a
    /// free port). Errors: `AddrInUse`, `AddrNotAvailable`, `InvalidInput`.
    pub fn bind(rt: &Runtime, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with_backlog(rt, addr, BACKLOG)
    }

    /// [`bind`](Self::bind) with the accept-queue length of `listen(2)`'s
    /// `backlog` (`bind` uses 4096, Linux's `somaxconn`). While the queue
    /// is full, new SYNs are dropped and counted (`tcp_listen_overflows`),
    /// as Linux does; the peer's retransmitted SYN gets in once the
    /// application accepts. `backlog` 0 is `InvalidInput`.
    pub fn bind_with_backlog(
        rt: &Runtime,
        addr: impl ToSocketAddrs,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        let addr = resolve(addr)?;
        let shared = rt.shared.clone();
        let mut core = shared.lock();
        let (h, port) = if addr.port() != 0 {
            let h = core.stack()?.tcp_listen(addr, backlog).map_err(io_error)?;
            (h, addr.port())
        } else {
            let ip = *addr.ip();
            bind_any_port(&mut core, |s, port| {
                s.tcp_listen(SocketAddrV4::new(ip, port), backlog)
            })?
        };
        if let Err(e) = core.open_port(PortProto::Tcp, port) {
            let now = shared.clock.now();
            let _ = core.stack()?.tcp_close_listener(now, h);
            return Err(e);
        }
        core.listeners.insert(h);
        let local = SocketAddrV4::new(core.stack()?.addr(), port);
        drop(core);
        Ok(TcpListener {
            inner: Arc::new(ListenerInner {
                rt: shared,
                h,
                local,
                nonblocking: AtomicBool::new(false),
            }),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.local))
    }

    /// Waits for the next connection (or `WouldBlock` when non-blocking).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let rt = &self.inner.rt;
        let mut core = rt.lock();
        loop {
            if let Some(stream) = self.try_accept(&mut core)? {
                drop(core);
                let peer = SocketAddr::V4(stream.inner.peer);
                return Ok((stream, peer));
            }
            if self.inner.nonblocking.load(Ordering::Relaxed) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            core = rt.wait(core, Interest::Accept(self.inner.h), None)?;
        }
    }

    /// One accept under the stack lock: `Ok(None)` when nobody waits. The
    /// caller must release the lock before dropping the stream.
    pub(crate) fn try_accept(&self, core: &mut Core) -> io::Result<Option<TcpStream>> {
        match core.stack()?.tcp_accept(self.inner.h) {
            Ok(h) => {
                core.open.insert(h);
                let c = core.stack()?.tcp(h).map_err(io_error)?;
                let (id, local, remote) = (c.id(), c.local(), c.remote());
                Ok(Some(TcpStream::new(
                    self.inner.rt.clone(),
                    h,
                    id,
                    local,
                    remote,
                )))
            }
            Err(E::WouldBlock) => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    /// An endless iterator over `accept`ed connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// `accept` returns `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// Another handle to the same listener.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(self.clone())
    }

    /// Connections waiting to be accepted.
    pub fn pending(&self) -> io::Result<usize> {
        let mut core = self.inner.rt.lock();
        core.stack()?.tcp_pending(self.inner.h).map_err(io_error)
    }

    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.rt
    }

    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn handle(&self) -> ListenerHandle {
        self.inner.h
    }
}

/// Iterator returned by [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A TCP connection — like [`std::net::TcpStream`]: `Read`/`Write` (also on
/// `&TcpStream`), blocking by default, `try_clone` to use the read and
/// write halves from two threads. Dropping the last handle closes the
/// connection (FIN, or RST when unread data remains, as Linux does).
///
/// Beyond `std`: [`info`](Self::info) (the `TcpInfo` snapshot),
/// [`events`](Self::events) (the connection's event stream) and
/// [`set_tag`](Self::set_tag).
#[derive(Clone)]
pub struct TcpStream {
    inner: Arc<StreamInner>,
}

pub(crate) struct StreamInner {
    pub(crate) rt: Arc<Shared>,
    pub(crate) h: ConnHandle,
    id: ConnId,
    local: SocketAddrV4,
    peer: SocketAddrV4,
    nonblocking: AtomicBool,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
    /// The connection's error was returned once; afterwards reads see EOF
    /// and writes `BrokenPipe`, as on Linux.
    error_reported: AtomicBool,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.inner.local)
            .field("peer", &self.inner.peer)
            .finish()
    }
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        let mut core = self.rt.lock();
        core.open.remove(&self.h);
        let now = self.rt.clock.now();
        if let Some(stack) = core.stack_any() {
            let _ = stack.tcp_close(now, self.h);
        }
        core.after_change(&self.rt, now);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    Write,
}

impl StreamInner {
    /// Errors of the connection itself are reported once, like a socket's
    /// `SO_ERROR`; later reads see EOF and later writes `BrokenPipe`.
    pub(crate) fn report<T: Default>(&self, e: E, op: Op) -> io::Result<T> {
        let conn_error = matches!(
            e,
            E::ConnectionReset
                | E::ConnectionRefused
                | E::TimedOut
                | E::HostUnreachable
                | E::NetworkUnreachable
                | E::PortUnreachable
        );
        if conn_error && self.error_reported.swap(true, Ordering::Relaxed) {
            return match op {
                Op::Read => Ok(T::default()),
                Op::Write => Err(io_error(E::BrokenPipe)),
            };
        }
        Err(io_error(e))
    }
}

impl StreamInner {
    /// One read under the stack lock; `None` when it would block.
    pub(crate) fn try_read(&self, core: &mut Core, buf: &mut [u8]) -> Option<io::Result<usize>> {
        let now = self.rt.clock.now();
        let stack = match core.stack() {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
        match stack.tcp_recv(now, self.h, buf) {
            Ok(n) => {
                core.after_change(&self.rt, now);
                Some(Ok(n))
            }
            Err(E::WouldBlock) => None,
            Err(e) => Some(self.report(e, Op::Read)),
        }
    }

    /// One write under the stack lock; `None` when it would block.
    pub(crate) fn try_write(&self, core: &mut Core, buf: &[u8]) -> Option<io::Result<usize>> {
        let now = self.rt.clock.now();
        let stack = match core.stack() {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
        match stack.tcp_send(now, self.h, buf) {
            Ok(n) => {
                core.after_change(&self.rt, now);
                Some(Ok(n))
            }
            Err(E::WouldBlock) => None,
            Err(e) => Some(self.report(e, Op::Write)),
        }
    }
}

impl TcpStream {
    fn new(
        rt: Arc<Shared>,
        h: ConnHandle,
        id: ConnId,
        local: SocketAddrV4,
        peer: SocketAddrV4,
    ) -> TcpStream {
        TcpStream {
            inner: Arc::new(StreamInner {
                rt,
                h,
                id,
                local,
                peer,
                nonblocking: AtomicBool::new(false),
                read_timeout: Mutex::new(None),
                write_timeout: Mutex::new(None),
                error_reported: AtomicBool::new(false),
            }),
        }
    }

    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn inner(&self) -> &Arc<StreamInner> {
        &self.inner
    }

    /// Opens a connection and waits for the handshake. Errors:
    /// `ConnectionRefused` (RST to our SYN), `TimedOut` (SYN retries
    /// exhausted), `NetworkUnreachable`, `InvalidInput`.
    pub fn connect(rt: &Runtime, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        Self::connect_inner(&rt.shared, resolve(addr)?, None)
    }

    /// Like [`connect`](Self::connect), giving up with `TimedOut` after
    /// `timeout` (a zero timeout is `InvalidInput`, as in `std`).
    pub fn connect_timeout(
        rt: &Runtime,
        addr: &SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        check_timeout(Some(timeout))?;
        Self::connect_inner(&rt.shared, resolve(addr)?, Some(timeout))
    }

    /// Starts a connection without waiting for the handshake (for the
    /// async adapter).
    pub(crate) fn start_connect(
        shared: &Arc<Shared>,
        remote: SocketAddrV4,
    ) -> io::Result<TcpStream> {
        let mut core = shared.lock();
        let now = shared.clock.now();
        let h = core
            .stack()?
            .tcp_connect(now, remote, None)
            .map_err(io_error)?;
        core.open.insert(h);
        let stack = core.stack()?;
        let c = stack.tcp(h).map_err(io_error)?;
        let (id, local) = (c.id(), c.local());
        core.after_change(shared, now);
        drop(core);
        Ok(TcpStream::new(shared.clone(), h, id, local, remote))
    }

    /// Where the handshake is: `Ok(true)` done, `Ok(false)` in progress.
    pub(crate) fn connect_status(&self, core: &mut crate::rt::Core) -> io::Result<bool> {
        let stack = core.stack()?;
        let c = stack.tcp(self.inner.h).map_err(io_error)?;
        if let Some(e) = c.error() {
            self.inner.error_reported.store(true, Ordering::Relaxed);
            return Err(io_error(e));
        }
        if c.state().is_synchronized() {
            return Ok(true);
        }
        if c.state() == State::Closed {
            return Err(io_error(E::NotConnected));
        }
        Ok(false)
    }

    fn connect_inner(
        shared: &Arc<Shared>,
        remote: SocketAddrV4,
        timeout: Option<Duration>,
    ) -> io::Result<TcpStream> {
        let stream = Self::start_connect(shared, remote)?;
        let end = deadline(shared, timeout);
        let mut core = shared.lock();
        let result = loop {
            match stream.connect_status(&mut core) {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
            core = match shared.wait(core, Interest::Connect(stream.inner.h), end) {
                Ok(c) => c,
                Err(e) => {
                    core = shared.lock();
                    break Err(e);
                }
            };
        };
        drop(core);
        // On failure `stream` drops here, without the lock held, and its
        // close frees the connection.
        result.map(|()| stream)
    }

    fn read_timeout_deadline(&self, m: &Mutex<Option<Duration>>) -> Option<Instant> {
        deadline(&self.inner.rt, lock_opt(m))
    }

    fn read_impl(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let rt = &self.inner.rt;
        let end = self.read_timeout_deadline(&self.inner.read_timeout);
        let mut core = rt.lock();
        loop {
            if let Some(r) = self.inner.try_read(&mut core, buf) {
                return r;
            }
            if self.inner.nonblocking.load(Ordering::Relaxed) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            core = match rt.wait(core, Interest::Read(self.inner.h), end) {
                Ok(c) => c,
                // std on Unix: an expired read timeout is WouldBlock.
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => return Err(e),
            };
        }
    }

    fn write_impl(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let rt = &self.inner.rt;
        let end = self.read_timeout_deadline(&self.inner.write_timeout);
        let mut core = rt.lock();
        loop {
            if let Some(r) = self.inner.try_write(&mut core, buf) {
                return r;
            }
            if self.inner.nonblocking.load(Ordering::Relaxed) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            core = match rt.wait(core, Interest::Write(self.inner.h), end) {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => return Err(e),
            };
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.peer))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.local))
    }

    /// Shuts the read, write or both halves (`shutdown(2)`): after `Write`
    /// the peer reads EOF once our data is delivered, and our writes fail
    /// with `BrokenPipe`; after `Read` our reads return 0.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => CoreShutdown::Read,
            Shutdown::Write => CoreShutdown::Write,
            Shutdown::Both => CoreShutdown::Both,
        };
        let rt = &self.inner.rt;
        let mut core = rt.lock();
        let now = rt.clock.now();
        let r = core.stack()?.tcp_shutdown(now, self.inner.h, how);
        core.after_change(rt, now);
        r.map_err(io_error)
    }

    /// Resets the connection now (RST), like closing with `SO_LINGER` 0.
    /// The stream is unusable afterwards (`NotConnected`).
    pub fn abort(&self) -> io::Result<()> {
        let rt = &self.inner.rt;
        let mut core = rt.lock();
        let now = rt.clock.now();
        let r = core.stack()?.tcp_abort(now, self.inner.h);
        core.open.remove(&self.inner.h);
        core.after_change(rt, now);
        r.map_err(io_error)
    }

    /// `TCP_NODELAY`: turns Nagle's algorithm off.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let rt = &self.inner.rt;
        let mut core = rt.lock();
        let now = rt.clock.now();
        let r = core.stack()?.tcp_set_nodelay(now, self.inner.h, nodelay);
        core.after_change(rt, now);
        r.map_err(io_error)
    }

    pub fn nodelay(&self) -> io::Result<bool> {
        let mut core = self.inner.rt.lock();
        let c = core.stack()?.tcp(self.inner.h).map_err(io_error)?;
        Ok(c.config().nodelay)
    }

    /// After `timeout` without data, `read` fails with `WouldBlock` (as
    /// `std` on Unix). `Some(0)` is `InvalidInput`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        *self
            .inner
            .read_timeout
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = timeout;
        Ok(())
    }

    /// After `timeout` without send-buffer space, `write` fails with
    /// `WouldBlock`. `Some(0)` is `InvalidInput`.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        *self
            .inner
            .write_timeout
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = timeout;
        Ok(())
    }

    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(lock_opt(&self.inner.read_timeout))
    }

    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(lock_opt(&self.inner.write_timeout))
    }

    /// Reads and writes return `WouldBlock` instead of waiting (for all
    /// handles of this stream, as for a socket).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// Another handle to the same connection (e.g. the write half for a
    /// second thread). The connection closes when the last handle drops.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(self.clone())
    }

    /// The connection's `TcpInfo` snapshot (Linux `TCP_INFO`, typed).
    pub fn info(&self) -> io::Result<TcpInfo> {
        let rt = &self.inner.rt;
        let mut core = rt.lock();
        let now = rt.clock.now();
        core.stack()?.tcp_info(now, self.inner.h).map_err(io_error)
    }

    /// The RFC 9293 state of the connection.
    pub fn state(&self) -> io::Result<State> {
        let mut core = self.inner.rt.lock();
        core.stack()?.tcp_state(self.inner.h).map_err(io_error)
    }

    /// The connection's id in events.
    pub fn conn_id(&self) -> ConnId {
        self.inner.id
    }

    /// Subscribes to this connection's events from now on, keeping at most
    /// `capacity` undelivered (the oldest are dropped and counted when the
    /// subscriber is slow; the stack never waits for it).
    pub fn events(&self, capacity: usize) -> EventSubscription {
        let ring = Arc::new(Ring::new(capacity));
        self.inner
            .rt
            .lock()
            .subscribe_conn(self.inner.id, ring.clone());
        EventSubscription { ring }
    }

    /// Sets the application's tag carried by this connection's later
    /// events, to correlate them with application actions.
    pub fn set_tag(&self, tag: u64) -> io::Result<()> {
        let rt = &self.inner.rt;
        let mut core = rt.lock();
        let now = rt.clock.now();
        core.stack()?
            .tcp_set_tag(now, self.inner.h, tag)
            .map_err(io_error)
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf)
    }

    /// Data is with the stack once `write` returns (as with `std`'s
    /// `TcpStream`, whose `flush` does nothing).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
