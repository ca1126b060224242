//! Async adapters for tokio (cargo feature `tokio`): a [`TcpListener`] with
//! an async `accept` and a [`TcpStream`] with an async `connect`,
//! implementing `tokio::io::AsyncRead` and `AsyncWrite`.
//!
//! They run on any tokio runtime: nothing polls. A task that would block
//! leaves its `Waker` with the Daytona runtime, and whoever drives the
//! stack (the stack thread, or a thread blocked in a synchronous call)
//! wakes it when the socket becomes ready.

use crate::rt::{io_error, Interest, Runtime};
use crate::tcp::{self, resolve};
use daytona_core::tcp::Shutdown as CoreShutdown;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An async TCP listener, like `tokio::net::TcpListener`.
#[derive(Debug)]
pub struct TcpListener {
    inner: tcp::TcpListener,
}

impl TcpListener {
    /// Listens on `addr` (see [`crate::TcpListener::bind`]).
    pub async fn bind(rt: &Runtime, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: tcp::TcpListener::bind(rt, addr)?,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection, registering `cx`'s waker if none.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let shared = self.inner.shared();
        let mut core = shared.lock();
        match self.inner.try_accept(&mut core) {
            Ok(Some(stream)) => {
                drop(core);
                let peer = stream.peer_addr()?;
                Poll::Ready(Ok((TcpStream { inner: stream }, peer)))
            }
            Ok(None) => {
                core.register_task(Interest::Accept(self.inner.handle()), cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// The synchronous listener underneath.
    pub fn get_ref(&self) -> &tcp::TcpListener {
        &self.inner
    }
}

/// An async TCP stream, like `tokio::net::TcpStream`.
#[derive(Debug)]
pub struct TcpStream {
    inner: tcp::TcpStream,
}

impl TcpStream {
    /// Opens a connection and waits (asynchronously) for the handshake.
    /// Errors as [`crate::TcpStream::connect`].
    pub async fn connect(rt: &Runtime, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let remote = resolve(addr)?;
        let stream = tcp::TcpStream::start_connect(&rt.shared, remote)?;
        let h = stream.inner().h;
        let shared = rt.shared.clone();
        poll_fn(|cx| {
            let mut core = shared.lock();
            match stream.connect_status(&mut core) {
                Ok(true) => Poll::Ready(Ok(())),
                Ok(false) => {
                    core.register_task(Interest::Connect(h), cx.waker());
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await?;
        Ok(TcpStream { inner: stream })
    }

    /// The synchronous stream underneath: `info`, `events`, `set_tag`,
    /// `peer_addr` … are there.
    pub fn get_ref(&self) -> &tcp::TcpStream {
        &self.inner
    }

    /// The synchronous stream (blocking calls again).
    pub fn into_std(self) -> tcp::TcpStream {
        self.inner
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let inner = self.inner.inner();
        let mut core = inner.rt.lock();
        match inner.try_read(&mut core, buf.initialize_unfilled()) {
            Some(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Some(Err(e)) => Poll::Ready(Err(e)),
            None => {
                core.register_task(Interest::Read(inner.h), cx.waker());
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let inner = self.inner.inner();
        let mut core = inner.rt.lock();
        match inner.try_write(&mut core, buf) {
            Some(r) => Poll::Ready(r),
            None => {
                core.register_task(Interest::Write(inner.h), cx.waker());
                Poll::Pending
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts the write half (FIN after the queued data).
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let inner = self.inner.inner();
        let mut core = inner.rt.lock();
        let now = inner.rt.clock.now();
        let r = match core.stack() {
            Ok(stack) => stack
                .tcp_shutdown(now, inner.h, CoreShutdown::Write)
                .map_err(io_error),
            Err(e) => Err(e),
        };
        core.after_change(&inner.rt, now);
        Poll::Ready(r)
    }
}
