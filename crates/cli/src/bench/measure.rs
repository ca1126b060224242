//! The three measurements, each between a client side and a server side
//! on threads of their own: bulk goodput, 1-byte round trips, and the
//! connect+close rate.

use super::side::Side;
use crate::workload::{self, Amount, Received, RoundTrips};
use std::io::{self, Read};
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn join<R>(h: JoinHandle<io::Result<R>>, what: &str) -> io::Result<R> {
    h.join()
        .map_err(|_| io::Error::other(format!("{what} thread panicked")))?
}

/// Starts `body` on a thread of `server` after it listens on `addr`;
/// returns once the listener is up (or with the listener's error).
fn serve<R: Send + 'static>(
    server: &Side,
    addr: SocketAddrV4,
    body: impl FnOnce(Box<dyn super::side::Listener>) -> io::Result<R> + Send + 'static,
) -> io::Result<JoinHandle<io::Result<R>>> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let side = server.clone();
    let h = server.spawn(move || {
        let l = side.listen(addr)?;
        let _ = ready_tx.send(());
        body(l)
    });
    if ready_rx.recv().is_err() {
        // The thread ended before listening: its error says why.
        return Err(join(h, "listener")
            .err()
            .unwrap_or_else(|| io::Error::other("listener ended")));
    }
    Ok(h)
}

/// Bulk goodput from `sender` to `receiver`, measured by the receiver from
/// its first byte to end of stream.
pub fn bulk(
    sender: &Side,
    receiver: &Side,
    addr: SocketAddrV4,
    amount: Amount,
) -> io::Result<Received> {
    let rx = serve(receiver, addr, |mut l| {
        let mut s = l.accept()?;
        workload::receive(&mut *s, &AtomicU64::new(0), false)
    })?;
    let side = sender.clone();
    let tx = sender.spawn(move || {
        let mut s = side.connect(addr)?;
        let block = workload::block(1);
        let n = workload::send(&mut *s, amount, &block, &AtomicU64::new(0))?;
        s.shutdown_write()?;
        // Wait for the receiver's end of stream so nothing is cut off.
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
        Ok(n)
    });
    // A failed sender leaves the receiver waiting in accept: do not join it.
    let sent = join(tx, "sender")?;
    let got = join(rx, "receiver")?;
    if got.bytes != sent {
        return Err(io::Error::other(format!(
            "sent {sent} bytes but {} arrived",
            got.bytes
        )));
    }
    Ok(got)
}

/// 1-byte request/response from `client` to an echo on `server`.
pub fn round_trips(
    client: &Side,
    server: &Side,
    addr: SocketAddrV4,
    d: Duration,
) -> io::Result<RoundTrips> {
    let srv = serve(server, addr, |mut l| {
        let mut s = l.accept()?;
        s.set_nodelay()?;
        workload::echo(&mut *s, &AtomicU64::new(0))
    })?;
    let side = client.clone();
    let cl = client.spawn(move || {
        let mut s = side.connect(addr)?;
        s.set_nodelay()?;
        let r = workload::round_trips(&mut *s, d, 1000)?;
        s.shutdown_write()?;
        Ok(r)
    });
    let r = join(cl, "client")?;
    join(srv, "echo")?;
    if r.samples_ns.is_empty() {
        return Err(io::Error::other("no round trip completed"));
    }
    Ok(r)
}

/// Connections per second: the client connects, reads the server's close
/// (the server closes first, so TIME_WAIT stays on the server) and closes.
pub fn connection_rate(
    client: &Side,
    server: &Side,
    addr: SocketAddrV4,
    d: Duration,
) -> io::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let srv = serve(server, addr, move |mut l| {
        let mut accepted = 0u64;
        loop {
            let s = l.accept()?;
            if stop2.load(Ordering::Acquire) {
                return Ok(accepted);
            }
            accepted += 1;
            drop(s);
        }
    })?;
    let side = client.clone();
    let cl = client.spawn(move || {
        let start = Instant::now();
        let mut n = 0u64;
        let mut b = [0u8; 16];
        while start.elapsed() < d {
            let mut s = side.connect(addr)?;
            while s.read(&mut b)? > 0 {}
            n += 1;
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        Ok((n, rate))
    });
    let res = join(cl, "client");
    stop.store(true, Ordering::Release);
    // Wake the accept loop so it sees the stop flag.
    let side = client.clone();
    let _ = join(
        side.clone().spawn(move || side.connect(addr).map(drop)),
        "waker",
    );
    let (n, rate) = res?;
    let accepted = join(srv, "server")?;
    if accepted != n {
        return Err(io::Error::other(format!(
            "the client made {n} connections but the server accepted {accepted}"
        )));
    }
    Ok(rate)
}
