//! The runtime: one stack, one link, one stack thread, and the wait
//! machinery that lets application threads block in socket calls.
//!
//! Who drives the stack when:
//! - An application thread that calls into a socket (send, recv, close …)
//!   does so under the stack lock and transmits what its call produced
//!   itself ("inline transmit"), so a write reaches the link without a
//!   hand-off.
//! - An application thread that must block, when no other thread is
//!   driving the link, becomes the *link driver*: it takes the link's fd
//!   away from the stack thread (epoll delete) and waits on it with
//!   `poll(2)` together with an eventfd; when frames arrive it processes
//!   them itself, fires due timers, transmits, wakes other waiters, and
//!   returns as soon as its own socket is ready. A blocking
//!   request/response therefore costs the same wake-ups as kernel TCP.
//! - Otherwise the stack thread drives: it waits (epoll) on the link fd, a
//!   timerfd armed at the stack's next deadline and an eventfd, processes a
//!   batch, fires timers, transmits and wakes the waiters whose sockets
//!   became ready (each blocked thread has its own condvar; readiness is
//!   checked per waiter, so only those whose socket changed wake).
//! - With busy-polling on, a thread about to block first spins for a
//!   bounded time, polling the link itself.

use crate::config::{ShutdownPolicy, TimerMode};
use crate::events::Ring;
use crate::sys;
use crate::Driver;
use daytona_core::observe::ConnId;
use daytona_core::stack::{ConnHandle, ListenerHandle, Stack, UdpHandle};
use daytona_core::tcp::{Shutdown, State};
use daytona_core::time::{Duration, Instant};
use daytona_link::{Batch, Link, LinkCaps, PortProto};
use rustix::event::{epoll, eventfd, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::time::{
    timerfd_create, timerfd_settime, ClockId, Itimerspec, TimerfdClockId, TimerfdFlags,
    TimerfdTimerFlags,
};
use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::{self, JoinHandle, ThreadId};

/// The tick of [`TimerMode::Jiffies`] (the paper's 10 ms).
pub const JIFFY: Duration = Duration::from_millis(10);
/// Our clock starts here, so no time the stack sees is near zero.
const CLOCK_OFFSET_US: u64 = 1_000_000;
/// Without a wait fd, the stack thread polls the link this often.
const POLL_FALLBACK: Duration = Duration::from_millis(1);
/// Longest the stack thread sleeps while lingering at shutdown.
const LINGER_STEP: Duration = Duration::from_millis(5);

const TOKEN_LINK: u64 = 1;
const TOKEN_TIMER: u64 = 2;
const TOKEN_WAKE: u64 = 3;

/// A `Link + Send` behind a box, as a `Link`.
pub(crate) struct DynLink(pub(crate) Box<dyn Link + Send>);

impl Link for DynLink {
    fn caps(&self) -> LinkCaps {
        self.0.caps()
    }
    fn recv_batch(&mut self, now: Instant, batch: &mut Batch) -> io::Result<usize> {
        self.0.recv_batch(now, batch)
    }
    fn send_batch(&mut self, now: Instant, batch: &Batch) -> io::Result<usize> {
        self.0.send_batch(now, batch)
    }
    fn poll_at(&self) -> Option<Instant> {
        self.0.poll_at()
    }
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        self.0.wait_fd()
    }
    fn open_port(&mut self, proto: PortProto, port: u16) -> io::Result<()> {
        self.0.open_port(proto, port)
    }
    fn close_port(&mut self, proto: PortProto, port: u16) {
        self.0.close_port(proto, port)
    }
}

/// Monotonic clock mapped onto the core's `Instant`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch_ns: i128,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            epoch_ns: mono_ns(),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        let us = ((mono_ns() - self.epoch_ns) / 1000).max(0) as u64;
        Instant::from_micros(CLOCK_OFFSET_US + us)
    }

    /// The monotonic time of `t`, for an absolute timerfd.
    fn timespec(&self, t: Instant) -> Timespec {
        let ns =
            self.epoch_ns + (i128::from(t.total_micros()) - i128::from(CLOCK_OFFSET_US)) * 1000;
        let ns = ns.max(1);
        Timespec {
            tv_sec: (ns / 1_000_000_000) as i64,
            tv_nsec: (ns % 1_000_000_000) as i64,
        }
    }

    /// `t` rounded up to the next tick boundary.
    fn ceil_tick(&self, t: Instant) -> Instant {
        let tick = JIFFY.as_micros() as u64;
        let us = t.total_micros();
        Instant::from_micros(us.div_ceil(tick) * tick)
    }
}

fn mono_ns() -> i128 {
    let ts = rustix::time::clock_gettime(ClockId::Monotonic);
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

fn timespec_of(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// What a blocked caller waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    Read(ConnHandle),
    Write(ConnHandle),
    Connect(ConnHandle),
    Accept(ListenerHandle),
    /// A UDP socket, with the stack's received-frame count when the caller
    /// found it empty: any frame since may be a datagram for it.
    Udp(UdpHandle, u64),
}

enum WaitKind {
    /// A thread sleeping on its condvar.
    Thread(Condvar),
    /// The thread driving the link; woken through `app_wake`.
    Driver(ThreadId),
    /// An async task.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    Task(Waker),
}

pub(crate) struct Waiter {
    interest: Interest,
    kind: WaitKind,
}

/// Runtime settings that are not the stack's.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub timer_mode: TimerMode,
    pub busy_poll: Option<Duration>,
    pub shutdown: ShutdownPolicy,
}

/// Everything behind the stack lock.
pub(crate) struct Core {
    driver: Option<Driver<DynLink>>,
    link_fd: Option<Arc<OwnedFd>>,
    /// The link fd is registered in the stack thread's epoll.
    link_in_epoll: bool,
    /// The link reported hang-up or error: nobody waits on it any more.
    link_dead: bool,
    /// An application thread is driving the link.
    app_driving: bool,
    /// Which thread drives, and until when it sleeps at most.
    driver_thread: Option<ThreadId>,
    driver_until: Option<Instant>,
    waiters: Vec<Arc<Waiter>>,
    /// Where the timerfd is armed.
    armed: Option<Instant>,
    conn_subs: HashMap<ConnId, Vec<Arc<Ring>>>,
    all_subs: Vec<Arc<Ring>>,
    pub(crate) open: HashSet<ConnHandle>,
    pub(crate) listeners: HashSet<ListenerHandle>,
    pub(crate) udps: HashSet<UdpHandle>,
    /// `shutdown` was requested: socket calls fail from now on.
    pub(crate) closing: bool,
    shutdown_requested: bool,
    /// The next port `bind(…:0)` tries (within the stack's ephemeral range).
    pub(crate) next_port: u16,
    link_errors: u64,
    last_link_error: Option<String>,
}

/// State shared by the runtime handle, the stack thread and every socket.
pub(crate) struct Shared {
    pub(crate) core: Mutex<Core>,
    pub(crate) clock: Clock,
    pub(crate) opts: Options,
    epoll: OwnedFd,
    timerfd: OwnedFd,
    wake: OwnedFd,
    app_wake: OwnedFd,
}

pub(crate) fn shut_down_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the Daytona runtime was shut down",
    )
}

/// Maps the core's errors onto `std::io::ErrorKind`s, as the kernel's
/// errnos map in `std::net`.
pub(crate) fn io_error(e: daytona_core::Error) -> io::Error {
    use daytona_core::Error as E;
    use io::ErrorKind as K;
    let kind = match e {
        E::ConnectionRefused | E::PortUnreachable => K::ConnectionRefused,
        E::ConnectionReset => K::ConnectionReset,
        E::TimedOut => K::TimedOut,
        E::HostUnreachable => K::HostUnreachable,
        E::NetworkUnreachable => K::NetworkUnreachable,
        E::InvalidHandle | E::NotConnected => K::NotConnected,
        E::AlreadyConnected => K::AlreadyExists,
        E::BrokenPipe => K::BrokenPipe,
        E::InvalidArgument => K::InvalidInput,
        E::AddrInUse => K::AddrInUse,
        E::AddrNotAvailable | E::NoEphemeralPort => K::AddrNotAvailable,
        E::WouldBlock => K::WouldBlock,
        E::NotSupported => K::Unsupported,
        E::NoBufferSpace => K::OutOfMemory,
        _ => K::Other,
    };
    io::Error::new(kind, e)
}

impl Core {
    /// Tells the link the stack now uses a local port (raw mode must let
    /// it in and keep the kernel quiet about it).
    pub(crate) fn open_port(&mut self, proto: PortProto, port: u16) -> io::Result<()> {
        match self.driver.as_mut() {
            Some(d) => d.link().open_port(proto, port),
            None => Err(shut_down_error()),
        }
    }

    pub(crate) fn close_port(&mut self, proto: PortProto, port: u16) {
        if let Some(d) = self.driver.as_mut() {
            d.link().close_port(proto, port);
        }
    }

    pub(crate) fn stack(&mut self) -> io::Result<&mut Stack> {
        match self.driver.as_mut() {
            Some(d) if !self.closing => Ok(d.stack()),
            _ => Err(shut_down_error()),
        }
    }

    /// The stack, also while shutting down (for cleanup on drop).
    pub(crate) fn stack_any(&mut self) -> Option<&mut Stack> {
        self.driver.as_mut().map(|d| d.stack())
    }

    pub(crate) fn is_ready(&mut self, interest: Interest) -> bool {
        let Some(d) = self.driver.as_mut() else {
            return true;
        };
        let stack = d.stack();
        match interest {
            Interest::Read(h) => stack.tcp(h).map_or(true, |c| c.is_readable()),
            Interest::Write(h) => stack.tcp(h).map_or(true, |c| c.is_writable()),
            Interest::Connect(h) => stack.tcp(h).map_or(true, |c| {
                c.state().is_synchronized() || c.error().is_some() || c.state() == State::Closed
            }),
            Interest::Accept(l) => stack.tcp_pending(l).map_or(true, |n| n > 0),
            Interest::Udp(_, seen) => stack.counters().frames_in != seen,
        }
    }

    fn note_link_error(&mut self, e: io::Error) {
        self.link_errors += 1;
        self.last_link_error = Some(e.to_string());
    }

    /// Receives one batch and (`fire_timers`) fires due timers.
    fn receive(&mut self, clock: &Clock, now: Instant, fire_timers: bool) {
        let Some(d) = self.driver.as_mut() else {
            return;
        };
        if let Err(e) = d.receive_with_clock(now, || clock.now()) {
            self.note_link_error(e);
        }
        if fire_timers {
            // The frames may have been stamped later than `now`: time
            // never goes backwards for the stack.
            self.fire_timers(clock.now().max(now));
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        if let Some(d) = self.driver.as_mut() {
            d.fire_timers(now);
        }
    }

    /// After anything that may have changed the stack: transmit, hand out
    /// events, wake the waiters whose sockets are ready, re-arm the timer.
    pub(crate) fn after_change(&mut self, shared: &Shared, now: Instant) {
        let Some(d) = self.driver.as_mut() else {
            return;
        };
        // Segments leave now, not when the batch we processed arrived:
        // their send times (RTT samples, pacing) must say so.
        let now = shared.clock.now().max(now);
        if let Err(e) = d.transmit(now) {
            self.note_link_error(e);
        }
        self.dispatch_events();
        self.wake_ready(shared);
        self.arm_timer(shared);
    }

    fn dispatch_events(&mut self) {
        let Some(d) = self.driver.as_mut() else {
            return;
        };
        let stack = d.stack();
        let no_subscribers = self.conn_subs.is_empty() && self.all_subs.is_empty();
        let mut seen = false;
        while let Some(e) = stack.poll_event() {
            seen = true;
            if no_subscribers {
                continue;
            }
            for r in &self.all_subs {
                r.push(e.clone());
            }
            if let Some(rings) = self.conn_subs.get(&e.conn) {
                for r in rings {
                    r.push(e.clone());
                }
            }
        }
        if seen && !no_subscribers {
            // Forget subscriptions nobody holds any more.
            self.all_subs.retain(|r| Arc::strong_count(r) > 1);
            self.conn_subs.retain(|_, v| {
                v.retain(|r| Arc::strong_count(r) > 1);
                !v.is_empty()
            });
        }
    }

    fn wake_ready(&mut self, shared: &Shared) {
        if self.waiters.is_empty() {
            return;
        }
        let me = thread::current().id();
        let mut i = 0;
        while i < self.waiters.len() {
            let interest = self.waiters[i].interest;
            if !self.is_ready(interest) {
                i += 1;
                continue;
            }
            let w = self.waiters.swap_remove(i);
            match &w.kind {
                WaitKind::Thread(cv) => cv.notify_one(),
                WaitKind::Driver(t) if *t == me => {}
                WaitKind::Driver(_) => shared.kick(&shared.app_wake),
                WaitKind::Task(waker) => waker.wake_by_ref(),
            }
        }
    }

    /// Wakes the threads sleeping on their condvars (they retry, and one
    /// may become the link's driver).
    fn wake_all_threads(&mut self) {
        for w in &self.waiters {
            if let WaitKind::Thread(cv) = &w.kind {
                cv.notify_one();
            }
        }
    }

    /// Wakes every waiter (shutdown).
    fn wake_all(&mut self, shared: &Shared) {
        for w in self.waiters.drain(..) {
            match &w.kind {
                WaitKind::Thread(cv) => cv.notify_one(),
                WaitKind::Driver(_) => shared.kick(&shared.app_wake),
                WaitKind::Task(waker) => waker.wake_by_ref(),
            }
        }
        for r in &self.all_subs {
            r.close();
        }
        for v in self.conn_subs.values() {
            for r in v {
                r.close();
            }
        }
    }

    /// The time the timer should fire for the stack's next deadline.
    fn timer_target(&mut self, shared: &Shared) -> Option<Instant> {
        let next = self.driver.as_mut()?.next_deadline()?;
        Some(match shared.opts.timer_mode {
            TimerMode::HighResolution => next,
            TimerMode::Jiffies => shared.clock.ceil_tick(next),
        })
    }

    /// Arms the timerfd if the stack now needs it earlier than armed. A
    /// later deadline leaves it: the early expiry is harmless, the stack
    /// thread re-arms then.
    fn arm_timer(&mut self, shared: &Shared) {
        // In high-resolution mode an application thread driving the link
        // fires the timers itself (its poll timeout is the next deadline);
        // it re-arms the timerfd when it stops driving. This keeps the
        // stack thread asleep during request/response exchanges.
        if self.app_driving && shared.opts.timer_mode == TimerMode::HighResolution {
            // Another thread made the deadline earlier than the driver's
            // sleep: wake the driver so it recomputes.
            if let Some(want) = self.timer_target(shared) {
                let me = thread::current().id();
                if self.driver_thread != Some(me) && self.driver_until.is_none_or(|u| want < u) {
                    self.driver_until = Some(want);
                    shared.kick(&shared.app_wake);
                }
            }
            return;
        }
        let Some(want) = self.timer_target(shared) else {
            return;
        };
        if self.armed.is_some_and(|a| a <= want) {
            return;
        }
        self.armed = Some(want);
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: shared.clock.timespec(want),
        };
        if let Err(e) = timerfd_settime(&shared.timerfd, TimerfdTimerFlags::ABSTIME, &spec) {
            self.note_link_error(e.into());
        }
    }

    /// Registers an async task's waker for `interest`. A stream's read or
    /// write side keeps one waker, the latest (the `AsyncRead`/`AsyncWrite`
    /// contract); accepts keep one per waiting task, since several tasks
    /// may share a listener, as with tokio's own.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn register_task(&mut self, interest: Interest, waker: &Waker) {
        let replace = matches!(interest, Interest::Read(_) | Interest::Write(_));
        for w in &mut self.waiters {
            if w.interest == interest {
                if let WaitKind::Task(old) = &w.kind {
                    if old.will_wake(waker) {
                        return;
                    }
                    if replace {
                        *w = Arc::new(Waiter {
                            interest,
                            kind: WaitKind::Task(waker.clone()),
                        });
                        return;
                    }
                }
            }
        }
        self.waiters.push(Arc::new(Waiter {
            interest,
            kind: WaitKind::Task(waker.clone()),
        }));
    }

    pub(crate) fn subscribe_conn(&mut self, id: ConnId, ring: Arc<Ring>) {
        self.conn_subs.entry(id).or_default().push(ring);
    }

    pub(crate) fn subscribe_all(&mut self, ring: Arc<Ring>) {
        self.all_subs.push(ring);
    }

    /// Link errors so far and the last one.
    pub(crate) fn link_errors(&self) -> (u64, Option<String>) {
        (self.link_errors, self.last_link_error.clone())
    }

    fn remove_waiter(&mut self, w: &Arc<Waiter>) {
        if let Some(i) = self.waiters.iter().position(|x| Arc::ptr_eq(x, w)) {
            self.waiters.swap_remove(i);
        }
    }

    fn ensure_waiter(&mut self, w: &Arc<Waiter>) {
        if !self.waiters.iter().any(|x| Arc::ptr_eq(x, w)) {
            self.waiters.push(w.clone());
        }
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock leaves the stack as it was between
        // two calls; keep serving rather than poisoning every socket.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn kick(&self, fd: &OwnedFd) {
        let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
    }

    fn drain(fd: &OwnedFd) {
        let mut b = [0u8; 8];
        let _ = rustix::io::read(fd, &mut b);
    }

    fn set_link_in_epoll(&self, core: &mut Core, on: bool) {
        let Some(fd) = core.link_fd.clone() else {
            return;
        };
        let on = on && !core.link_dead;
        if on == core.link_in_epoll {
            return;
        }
        let r = if on {
            epoll::add(
                &self.epoll,
                &*fd,
                epoll::EventData::new_u64(TOKEN_LINK),
                epoll::EventFlags::IN,
            )
        } else {
            epoll::delete(&self.epoll, &*fd)
        };
        match r {
            Ok(()) => core.link_in_epoll = on,
            Err(e) => core.note_link_error(e.into()),
        }
    }

    /// Blocks the calling thread until `interest` may be ready, `deadline`
    /// passes (`TimedOut`) or the runtime shuts down. Wake-ups may be
    /// spurious: the caller retries its operation and calls again.
    ///
    /// If nobody drives the link, the caller becomes its driver (see the
    /// module documentation); `accept` never does, so that a server's
    /// accept loop leaves the link to the threads serving connections,
    /// whose requests are latency-critical.
    pub(crate) fn wait<'a>(
        &'a self,
        mut core: MutexGuard<'a, Core>,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> io::Result<MutexGuard<'a, Core>> {
        if core.closing {
            return Err(shut_down_error());
        }
        if core.is_ready(interest) {
            return Ok(core);
        }
        let start = self.clock.now();
        if deadline.is_some_and(|d| start >= d) {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let spin_until = self.opts.busy_poll.map(|d| start + d);
        let drive = !core.app_driving
            && !core.link_dead
            && core.link_fd.is_some()
            && !matches!(interest, Interest::Accept(_));
        if drive {
            return self.drive_while_waiting(core, interest, deadline, spin_until);
        }
        // Someone else drives: with busy-polling, watch our socket for a
        // while before sleeping.
        if let Some(until) = spin_until {
            loop {
                drop(core);
                // Yield rather than spin: a woken peer thread is often placed
                // on our CPU (wake-affine), and must get to run.
                thread::yield_now();
                core = self.lock();
                let now = self.clock.now();
                if core.closing || core.is_ready(interest) || deadline.is_some_and(|d| now >= d) {
                    return Ok(core);
                }
                if now >= until {
                    break;
                }
            }
        }
        let w = Arc::new(Waiter {
            interest,
            kind: WaitKind::Thread(Condvar::new()),
        });
        core.waiters.push(w.clone());
        let WaitKind::Thread(cv) = &w.kind else {
            unreachable!("constructed as a thread waiter above")
        };
        core = match deadline {
            Some(d) => {
                let dur = d.saturating_since(start);
                cv.wait_timeout(core, dur)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            None => cv.wait(core).unwrap_or_else(|p| p.into_inner()),
        };
        core.remove_waiter(&w);
        Ok(core)
    }

    /// The caller drives the link until its socket is ready: the stack
    /// thread stops watching the link; we spin on it (busy-poll) until
    /// `spin_until`, then sleep in `poll(2)` on it and on `app_wake`.
    fn drive_while_waiting<'a>(
        &'a self,
        locked: MutexGuard<'a, Core>,
        interest: Interest,
        deadline: Option<Instant>,
        spin_until: Option<Instant>,
    ) -> io::Result<MutexGuard<'a, Core>> {
        // Declared before `core`, so on unwinding it runs after the lock
        // is released.
        let _reset = DriveReset(self);
        let mut core = locked;
        let hires = self.opts.timer_mode == TimerMode::HighResolution;
        let Some(fd) = core.link_fd.clone() else {
            return Ok(core);
        };
        core.app_driving = true;
        core.driver_thread = Some(thread::current().id());
        self.set_link_in_epoll(&mut core, false);
        let w = Arc::new(Waiter {
            interest,
            kind: WaitKind::Driver(thread::current().id()),
        });
        loop {
            core.ensure_waiter(&w);
            let now = self.clock.now();
            let spinning = spin_until.is_some_and(|u| now < u);
            let stack_next = if hires {
                core.driver.as_mut().and_then(|d| d.next_deadline())
            } else {
                None
            };
            let until = [deadline, stack_next].into_iter().flatten().min();
            core.driver_until = until;
            drop(core);
            // Busy-poll: look at the fds without sleeping (and without the
            // lock, so other threads are not held up); otherwise sleep.
            let timeout = if spinning {
                Some(Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                })
            } else {
                until.map(|u| timespec_of(u.saturating_since(now)))
            };
            let mut fds = [
                PollFd::new(&*fd, PollFlags::IN),
                PollFd::new(&self.app_wake, PollFlags::IN),
            ];
            let polled = rustix::event::poll(&mut fds, timeout.as_ref());
            let link_flags = fds[0].revents();
            let kicked = fds[1].revents().contains(PollFlags::IN);
            if kicked {
                Self::drain(&self.app_wake);
            }
            if spinning
                && link_flags.is_empty()
                && !kicked
                && until.is_none_or(|u| self.clock.now() < u)
            {
                // Yield rather than spin: a woken peer thread is often placed
                // on our CPU (wake-affine), and must get to run.
                thread::yield_now();
                core = self.lock();
                continue;
            }
            let dead = link_flags.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL);
            let failed = polled.err().filter(|e| *e != rustix::io::Errno::INTR);
            core = self.lock();
            core.link_dead |= dead;
            if let Some(e) = failed {
                core.note_link_error(e.into());
            }
            if core.closing {
                break;
            }
            let now = self.clock.now();
            core.receive(&self.clock, now, hires);
            core.after_change(self, now);
            if core.is_ready(interest) || deadline.is_some_and(|d| now >= d) || core.link_dead {
                break;
            }
        }
        core.remove_waiter(&w);
        core.app_driving = false;
        core.driver_thread = None;
        core.driver_until = None;
        if core.closing {
            self.set_link_in_epoll(&mut core, true);
            return Err(shut_down_error());
        }
        // The stack thread takes the link and the timers back.
        self.set_link_in_epoll(&mut core, true);
        core.arm_timer(self);
        Ok(core)
    }

    /// Asks the stack thread to run (shutdown).
    fn wake_stack_thread(&self) {
        self.kick(&self.wake);
    }
}

/// Gives the link back to the stack thread if a thread driving it panics
/// (in a link or in the stack): otherwise `app_driving` would stay set, the
/// link out of the stack thread's epoll and the timer unarmed, and every
/// socket would stall — while the stack lock itself survives panics
/// ([`Shared::lock`]).
struct DriveReset<'a>(&'a Shared);

impl Drop for DriveReset<'_> {
    fn drop(&mut self) {
        if !thread::panicking() {
            return;
        }
        let shared = self.0;
        let me = thread::current().id();
        let mut core = shared.lock();
        core.waiters
            .retain(|w| !matches!(w.kind, WaitKind::Driver(t) if t == me));
        core.app_driving = false;
        core.driver_thread = None;
        core.driver_until = None;
        shared.set_link_in_epoll(&mut core, true);
        core.arm_timer(shared);
        // Whoever waits may now drive.
        core.wake_all_threads();
    }
}

/// A running stack: the stack, its link and the stack thread. Sockets are
/// opened on it (`TcpListener::bind(&rt, …)`, `TcpStream::connect(&rt, …)`,
/// `UdpSocket::bind(&rt, …)`). Dropping it shuts it down
/// ([`Runtime::shutdown`]).
pub struct Runtime {
    pub(crate) shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder (see [`crate::StackBuilder`]).
    pub fn builder() -> crate::StackBuilder {
        crate::StackBuilder::new()
    }

    pub(crate) fn start(
        stack: Stack,
        link: Box<dyn Link + Send>,
        opts: Options,
    ) -> io::Result<Runtime> {
        let link_fd = match link.wait_fd() {
            Some(fd) => Some(Arc::new(sys::dup_wait_fd(fd)?)),
            None => None,
        };
        let driver = Driver::new(stack, DynLink(link))?;
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let timerfd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        let wake = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?;
        let app_wake = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?;
        epoll::add(
            &epoll,
            &timerfd,
            epoll::EventData::new_u64(TOKEN_TIMER),
            epoll::EventFlags::IN,
        )?;
        epoll::add(
            &epoll,
            &wake,
            epoll::EventData::new_u64(TOKEN_WAKE),
            epoll::EventFlags::IN,
        )?;
        let core = Core {
            driver: Some(driver),
            link_fd,
            link_in_epoll: false,
            link_dead: false,
            app_driving: false,
            driver_thread: None,
            driver_until: None,
            waiters: Vec::new(),
            armed: None,
            conn_subs: HashMap::new(),
            all_subs: Vec::new(),
            open: HashSet::new(),
            listeners: HashSet::new(),
            udps: HashSet::new(),
            closing: false,
            shutdown_requested: false,
            next_port: 0,
            link_errors: 0,
            last_link_error: None,
        };
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            clock: Clock::new(),
            opts,
            epoll,
            timerfd,
            wake,
            app_wake,
        });
        {
            let mut core = shared.lock();
            shared.set_link_in_epoll(&mut core, true);
        }
        let s = shared.clone();
        let thread = thread::Builder::new()
            .name("daytona-stack".into())
            .spawn(move || stack_thread(&s))?;
        Ok(Runtime {
            shared,
            thread: Some(thread),
        })
    }

    /// The stack's IPv4 address.
    pub fn addr(&self) -> std::net::Ipv4Addr {
        let mut core = self.shared.lock();
        core.stack_any()
            .map_or(std::net::Ipv4Addr::UNSPECIFIED, |s| s.addr())
    }

    /// Runs `f` on the stack under the stack lock (counters, configuration,
    /// anything the socket API does not cover), then transmits what it
    /// produced. Fails after shutdown.
    pub fn with_stack<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> io::Result<R> {
        let mut core = self.shared.lock();
        let r = f(core.stack()?);
        let now = self.shared.clock.now();
        core.after_change(&self.shared, now);
        Ok(r)
    }

    /// Threads and tasks blocked in socket calls right now (diagnostics).
    pub fn blocked(&self) -> usize {
        self.shared.lock().waiters.len()
    }

    /// Link errors the runtime has seen (they are counted, not fatal), and
    /// the last one's text.
    pub fn link_errors(&self) -> (u64, Option<String>) {
        self.shared.lock().link_errors()
    }

    /// Subscribes to every event of the stack (all connections and the
    /// stack-wide ones), keeping at most `capacity` undelivered; see
    /// [`crate::EventSubscription`].
    pub fn events(&self, capacity: usize) -> crate::EventSubscription {
        let ring = Arc::new(Ring::new(capacity));
        self.shared.lock().subscribe_all(ring.clone());
        crate::EventSubscription { ring }
    }

    /// Shuts the runtime down: blocked socket calls return an error, open
    /// connections are closed gracefully (FIN, waiting at most the linger
    /// time for the peer to acknowledge it, then RST) or reset, as the
    /// [`ShutdownPolicy`] says; listeners and UDP sockets close; then the
    /// stack and the link are dropped and the stack thread exits. Socket
    /// calls afterwards fail with `NotConnected`. Idempotent; `Drop` calls
    /// it.
    pub fn shutdown(&mut self) {
        let Some(t) = self.thread.take() else {
            return;
        };
        {
            let mut core = self.shared.lock();
            core.shutdown_requested = true;
        }
        self.shared.wake_stack_thread();
        let _ = t.join();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn stack_thread(shared: &Shared) {
    let mut events = Vec::with_capacity(8);
    let fallback = {
        let core = shared.lock();
        core.link_fd.is_none().then(|| timespec_of(POLL_FALLBACK))
    };
    loop {
        events.clear();
        let r = epoll::wait(&shared.epoll, spare(&mut events), fallback.as_ref());
        let mut timer = false;
        let mut link_dead = false;
        if r.is_ok() {
            for e in &events {
                let (data, f) = (e.data, e.flags);
                match data.u64() {
                    TOKEN_TIMER => {
                        Shared::drain(&shared.timerfd);
                        timer = true;
                    }
                    TOKEN_WAKE => Shared::drain(&shared.wake),
                    TOKEN_LINK if f.intersects(epoll::EventFlags::HUP | epoll::EventFlags::ERR) => {
                        link_dead = true;
                    }
                    _ => {}
                }
            }
        }
        let mut core = shared.lock();
        if core.shutdown_requested {
            shutdown_in_thread(shared, core);
            return;
        }
        if link_dead {
            core.link_dead = true;
            shared.set_link_in_epoll(&mut core, false);
        }
        if timer {
            core.armed = None;
        }
        let now = shared.clock.now();
        core.receive(&shared.clock, now, false);
        // Hires: timers fire whenever due. Jiffies: only on the tick (the
        // timerfd is armed on tick boundaries), or for a link without fd.
        let fire =
            timer || fallback.is_some() || shared.opts.timer_mode == TimerMode::HighResolution;
        if fire {
            core.fire_timers(shared.clock.now().max(now));
        }
        core.after_change(shared, now);
    }
}

fn spare(v: &mut Vec<epoll::Event>) -> rustix::buffer::SpareCapacity<'_, epoll::Event> {
    rustix::buffer::spare_capacity(v)
}

fn shutdown_in_thread<'a>(shared: &'a Shared, mut core: MutexGuard<'a, Core>) {
    core.closing = true;
    core.wake_all(shared);
    let now = shared.clock.now();
    let listeners: Vec<_> = core.listeners.drain().collect();
    let udps: Vec<_> = core.udps.drain().collect();
    let open: Vec<_> = core.open.iter().copied().collect();
    if let Some(stack) = core.stack_any() {
        for l in listeners {
            let _ = stack.tcp_close_listener(now, l);
        }
        for u in udps {
            let _ = stack.udp_close(u);
        }
    }
    match shared.opts.shutdown {
        ShutdownPolicy::Reset => {
            if let Some(stack) = core.stack_any() {
                // Every connection, also those closed by the application
                // and still finishing, is reset: none is left half-done
                // at a peer that would wait for it.
                let all: Vec<_> = stack.tcp_states().collect();
                for (h, st) in all {
                    if st != State::Closed && st != State::TimeWait {
                        let _ = stack.tcp_abort_any(now, h);
                    }
                }
            }
            core.after_change(shared, now);
        }
        ShutdownPolicy::Graceful { linger } => {
            if let Some(stack) = core.stack_any() {
                for &h in &open {
                    let _ = stack.tcp_shutdown(now, h, Shutdown::Write);
                }
            }
            core.after_change(shared, now);
            // Wait for every connection still sending, also those the
            // application already closed (their queued data and FIN are
            // ours to deliver, as the kernel does after close(2)).
            let finished =
                |st: State| matches!(st, State::FinWait2 | State::TimeWait | State::Closed);
            let end = now + linger;
            // Application threads driving the link give it back once they
            // see `closing`; until then we poll it on a short period.
            loop {
                let now = shared.clock.now();
                let all_done = match core.stack_any() {
                    Some(s) => s.tcp_states().all(|(_, st)| finished(st)),
                    None => true,
                };
                if all_done || now >= end {
                    break;
                }
                let next = core
                    .driver
                    .as_mut()
                    .and_then(|d| d.next_deadline())
                    .unwrap_or(end)
                    .min(end)
                    .min(now + LINGER_STEP);
                let fd = core.link_fd.clone();
                drop(core);
                let timeout = timespec_of(next.saturating_since(now));
                match fd {
                    Some(fd) => {
                        let mut fds = [PollFd::new(&*fd, PollFlags::IN)];
                        let _ = rustix::event::poll(&mut fds, Some(&timeout));
                    }
                    None => thread::sleep(POLL_FALLBACK),
                }
                core = shared.lock();
                let now = shared.clock.now();
                core.receive(&shared.clock, now, true);
                core.after_change(shared, now);
            }
            let now = shared.clock.now();
            if let Some(stack) = core.stack_any() {
                let left: Vec<_> = stack.tcp_states().collect();
                for (h, st) in left {
                    // FIN acknowledged: a plain close; otherwise give up
                    // with a RST (RFC 9293 §3.10.5 abort). Connections the
                    // application closed already are the stack's: only an
                    // unfinished one is reset.
                    let _ = if finished(st) {
                        stack.tcp_close(now, h)
                    } else {
                        stack.tcp_abort_any(now, h)
                    };
                }
            }
            core.after_change(shared, now);
        }
    }
    core.open.clear();
    // Release the link (and the stack); our duplicate of its fd goes once
    // no application thread is polling it any more.
    core.driver = None;
    if core.link_in_epoll {
        if let Some(fd) = core.link_fd.clone() {
            let _ = epoll::delete(&shared.epoll, &*fd);
        }
        core.link_in_epoll = false;
    }
    core.link_fd = None;
    core.wake_all(shared);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jiffies_round_deadlines_up_to_the_next_tick() {
        let c = Clock { epoch_ns: 0 };
        let tick = JIFFY.as_micros() as u64;
        assert_eq!(
            c.ceil_tick(Instant::from_micros(0)),
            Instant::from_micros(0)
        );
        assert_eq!(
            c.ceil_tick(Instant::from_micros(1)),
            Instant::from_micros(tick)
        );
        assert_eq!(
            c.ceil_tick(Instant::from_micros(3 * tick)),
            Instant::from_micros(3 * tick)
        );
        assert_eq!(
            c.ceil_tick(Instant::from_micros(3 * tick + 1)),
            Instant::from_micros(4 * tick)
        );
        // The clock's offset is a whole number of ticks, so tick boundaries
        // are the same in our Instants and on the monotonic clock.
        assert_eq!(CLOCK_OFFSET_US % tick, 0);
    }

    #[test]
    fn instants_map_onto_the_monotonic_clock() {
        let c = Clock::new();
        let before = mono_ns();
        let now = c.now();
        let after = mono_ns();
        let ts = c.timespec(now + Duration::from_millis(5));
        let ns = i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec);
        // `now` lies between the two readings (truncated to µs), so its
        // mapping plus 5 ms does too.
        assert!(ns >= before - 1000 + 5_000_000, "{ns} {before}");
        assert!(ns <= after + 5_000_000, "{ns} {after}");
    }
}
