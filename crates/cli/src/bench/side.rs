//! One end of a benchmark connection: the kernel's TCP (a `std::net`
//! socket opened on a thread inside a namespace, its congestion controller
//! named per socket) or a Daytona stack.

use crate::cleanup::Scratch;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A connected stream of either kind.
pub trait Stream: Read + Write + Send {
    fn shutdown_write(&mut self) -> io::Result<()>;
    fn set_nodelay(&mut self) -> io::Result<()>;
}

/// A listening socket of either kind.
pub trait Listener: Send {
    fn accept(&mut self) -> io::Result<Box<dyn Stream>>;
}

impl Stream for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn set_nodelay(&mut self) -> io::Result<()> {
        TcpStream::set_nodelay(self, true)
    }
}

impl Listener for TcpListener {
    fn accept(&mut self) -> io::Result<Box<dyn Stream>> {
        let (s, _) = TcpListener::accept(self)?;
        Ok(Box::new(s))
    }
}

impl Stream for daytona_runtime::TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn set_nodelay(&mut self) -> io::Result<()> {
        daytona_runtime::TcpStream::set_nodelay(self, true)
    }
}

impl Listener for daytona_runtime::TcpListener {
    fn accept(&mut self) -> io::Result<Box<dyn Stream>> {
        let (s, _) = daytona_runtime::TcpListener::accept(self)?;
        Ok(Box::new(s))
    }
}

/// Where a side's sockets live.
#[derive(Clone)]
pub enum Side {
    /// The kernel's TCP inside a namespace, with this congestion controller.
    Kernel { ns: Arc<Scratch>, cc: String },
    /// A Daytona stack (its controller was chosen when it was built).
    Daytona(Arc<daytona_runtime::Runtime>),
}

impl Side {
    pub fn kernel(ns: &Arc<Scratch>, cc: &str) -> Side {
        Side::Kernel {
            ns: ns.clone(),
            cc: cc.to_string(),
        }
    }

    /// Runs `f` on a new thread where this side's sockets can be opened.
    pub fn spawn<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> JoinHandle<R> {
        match self {
            Side::Kernel { ns, .. } => ns.thread(f),
            Side::Daytona(_) => std::thread::spawn(f),
        }
    }

    /// Call on a thread from [`Side::spawn`].
    pub fn listen(&self, addr: SocketAddrV4) -> io::Result<Box<dyn Listener>> {
        match self {
            Side::Kernel { cc, .. } => {
                let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
                s.set_reuse_address(true)?;
                // Accepted sockets inherit the listener's controller.
                daytona_testnet::set_congestion_control(&s, cc)?;
                s.bind(&addr.into())?;
                s.listen(1024)?;
                Ok(Box::new(TcpListener::from(s)))
            }
            Side::Daytona(rt) => Ok(Box::new(daytona_runtime::TcpListener::bind(rt, addr)?)),
        }
    }

    /// Call on a thread from [`Side::spawn`].
    pub fn connect(&self, addr: SocketAddrV4) -> io::Result<Box<dyn Stream>> {
        match self {
            Side::Kernel { cc, .. } => {
                let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
                daytona_testnet::set_congestion_control(&s, cc)?;
                s.connect(&addr.into())?;
                Ok(Box::new(TcpStream::from(s)))
            }
            Side::Daytona(rt) => Ok(Box::new(daytona_runtime::TcpStream::connect(rt, addr)?)),
        }
    }
}
