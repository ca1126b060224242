//! Daytona's C ABI, first layer: the sans-IO stack.
//!
//! A C host — a network simulator (ns-3, OMNeT++), a conformance tool, a
//! custom event loop — owns the clock and the packet channel; it feeds
//! frames and time in and takes frames, timeouts and events out, exactly as
//! the Rust simulator does. The declarations are in `include/daytona.h`.
//!
//! Conventions, as in the kernel's own interfaces:
//! - functions return `0` (or a byte count) on success and a **negative
//!   errno** on failure (`-EBADF` for a handle that names nothing, `-EAGAIN`
//!   when a call would block, `-EINVAL` for a bad argument, …);
//! - handles are opaque 64-bit integers; a stale handle is answered with
//!   `-EBADF`, never undefined behaviour;
//! - times are microseconds since an epoch the host chooses;
//! - IPv4 addresses are `uint32_t` in host byte order (`0xC6120001` is
//!   198.18.0.1), ports are host order;
//! - events come out as one JSON object per call (the same form as the
//!   simulator's `events.jsonl`).
//!
//! # Safety
//!
//! Every pointer argument must be NULL (answered with `-EINVAL`) or valid
//! for the access the function documents, for the duration of the call; a
//! `dt_stack*` must come from `dt_stack_new`, not yet freed, and be used by
//! one thread at a time. Handles need no care: any integer is safe.
//!
//! The blocking socket API (`dt_socket`, `dt_connect`, …) comes with the
//! runtime; it will sit on top of this layer.

#![deny(unsafe_op_in_unsafe_fn)]

use daytona_core::cc::CcRegistry;
use daytona_core::observe::TcpInfo;
use daytona_core::stack::config::StackConfig;
use daytona_core::stack::{ConnHandle, ListenerHandle, Stack};
use daytona_core::tcp::{Shutdown, State};
use daytona_core::{Error, Instant};
use daytona_wire::ethernet::EthernetAddress;
use std::ffi::{c_char, c_int, CStr};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ptr;

/// Settings for `dt_stack_new`; fill with `dt_stack_config_init` first.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DtStackConfig {
    /// Our IPv4 address, host byte order.
    pub addr: u32,
    /// Prefix length of the attached network (0..=32).
    pub prefix_len: u8,
    /// 1: Ethernet II frames with ARP; 0: bare IPv4 packets (TUN-like).
    pub ethernet: u8,
    /// Our MAC address when `ethernet` is 1.
    pub mac: [u8; 6],
    /// Next hop for off-link destinations, host order; 0 = none.
    pub gateway: u32,
    /// IP MTU, bytes (68..=65535).
    pub mtu: u32,
    /// Default send / receive buffer per connection, bytes.
    pub send_buffer: u32,
    pub recv_buffer: u32,
    /// Most connections at once.
    pub max_connections: u32,
    /// Key for ISNs, SYN cookies and port selection. `dt_stack_config_init`
    /// fills a fixed value (deterministic runs); fill it from a random
    /// source for real traffic.
    pub secret: [u8; 32],
    /// Congestion controller by name (NUL-terminated), NULL for the default.
    pub congestion_control: *const c_char,
}

/// C view of `TcpInfo`: Linux `struct tcp_info` field names, times in µs.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DtTcpInfo {
    pub state: u8,
    pub ca_state: u8,
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    /// Bit 0 timestamps, bit 1 SACK, bit 2 window scale, bit 3 ECN
    /// (Linux `TCPI_OPT_*`).
    pub options: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub rto_us: u32,
    pub ato_us: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub unacked: u32,
    pub sacked: u32,
    pub lost: u32,
    pub retrans: u32,
    pub pmtu: u32,
    pub rcv_ssthresh: u32,
    pub rtt_us: u32,
    pub rttvar_us: u32,
    /// `u32::MAX` when no sample yet.
    pub min_rtt_us: u32,
    pub snd_ssthresh: u32,
    pub snd_cwnd: u32,
    pub advmss: u32,
    pub reordering: u32,
    pub rcv_space: u32,
    pub total_retrans: u32,
    pub snd_wnd: u32,
    pub rcv_wnd: u32,
    pub notsent_bytes: u32,
    pub rto_count: u32,
    pub fast_retransmits: u32,
    /// Bytes per second; 0 when unknown.
    pub pacing_rate: u64,
    pub delivery_rate: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    pub data_segs_out: u64,
    pub data_segs_in: u64,
    pub delivered: u64,
    pub busy_time_us: u64,
    pub rwnd_limited_us: u64,
    pub sndbuf_limited_us: u64,
}

/// The stack, plus the event that did not fit the caller's buffer.
pub struct DtStack {
    stack: Stack,
    pending_event: Option<Vec<u8>>,
}

const DT_SHUT_RD: c_int = 0;
const DT_SHUT_WR: c_int = 1;
const DT_SHUT_RDWR: c_int = 2;

/// The negative errno for a core error.
pub fn errno_of(e: Error) -> c_int {
    let errno = match e {
        Error::ConnectionRefused | Error::PortUnreachable => libc::ECONNREFUSED,
        Error::ConnectionReset => libc::ECONNRESET,
        Error::TimedOut => libc::ETIMEDOUT,
        Error::HostUnreachable => libc::EHOSTUNREACH,
        Error::NetworkUnreachable => libc::ENETUNREACH,
        Error::InvalidHandle => libc::EBADF,
        Error::NotConnected => libc::ENOTCONN,
        Error::AlreadyConnected => libc::EISCONN,
        Error::BrokenPipe => libc::EPIPE,
        Error::InvalidArgument => libc::EINVAL,
        Error::AddrInUse => libc::EADDRINUSE,
        Error::AddrNotAvailable | Error::NoEphemeralPort => libc::EADDRNOTAVAIL,
        Error::WouldBlock => libc::EAGAIN,
        Error::NotSupported => libc::EOPNOTSUPP,
        Error::TooManyConnections => libc::EMFILE,
        Error::NoBufferSpace => libc::ENOBUFS,
        // `Error` is non-exhaustive: a new variant maps to EIO until named here.
        _ => libc::EIO,
    };
    -errno
}

fn status(r: Result<(), Error>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => errno_of(e),
    }
}

fn count(r: Result<usize, Error>) -> isize {
    match r {
        Ok(n) => n as isize,
        Err(e) => errno_of(e) as isize,
    }
}

/// Converts a `TcpInfo` to its C layout.
pub fn c_info(i: &TcpInfo) -> DtTcpInfo {
    let us32 = |d: std::time::Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
    let us64 = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let small = |v: u32| u8::try_from(v).unwrap_or(u8::MAX);
    let o = i.options;
    DtTcpInfo {
        state: state_code(i.state),
        ca_state: i.ca_state as u8,
        retransmits: small(i.retransmits),
        probes: small(i.probes),
        backoff: small(i.backoff),
        options: u8::from(o.timestamps)
            | u8::from(o.sack) << 1
            | u8::from(o.window_scale) << 2
            | u8::from(o.ecn) << 3,
        snd_wscale: i.snd_wscale,
        rcv_wscale: i.rcv_wscale,
        rto_us: us32(i.rto),
        ato_us: us32(i.ato),
        snd_mss: i.snd_mss,
        rcv_mss: i.rcv_mss,
        unacked: i.unacked,
        sacked: i.sacked,
        lost: i.lost,
        retrans: i.retrans,
        pmtu: i.pmtu,
        rcv_ssthresh: i.rcv_ssthresh,
        rtt_us: us32(i.rtt),
        rttvar_us: us32(i.rttvar),
        min_rtt_us: i.min_rtt.map_or(u32::MAX, us32),
        snd_ssthresh: i.snd_ssthresh,
        snd_cwnd: i.snd_cwnd,
        advmss: i.advmss,
        reordering: i.reordering,
        rcv_space: i.rcv_space,
        total_retrans: i.total_retrans,
        snd_wnd: i.snd_wnd,
        rcv_wnd: i.rcv_wnd,
        notsent_bytes: i.notsent_bytes,
        rto_count: i.rto_count,
        fast_retransmits: i.fast_retransmits,
        pacing_rate: i.pacing_rate.unwrap_or(0),
        delivery_rate: i.delivery_rate.unwrap_or(0),
        bytes_acked: i.bytes_acked,
        bytes_received: i.bytes_received,
        bytes_sent: i.bytes_sent,
        bytes_retrans: i.bytes_retrans,
        segs_out: i.segs_out,
        segs_in: i.segs_in,
        data_segs_out: i.data_segs_out,
        data_segs_in: i.data_segs_in,
        delivered: i.delivered,
        busy_time_us: us64(i.busy_time),
        rwnd_limited_us: us64(i.rwnd_limited),
        sndbuf_limited_us: us64(i.sndbuf_limited),
    }
}

/// Linux's `TCP_ESTABLISHED = 1 … TCP_CLOSING = 11` numbering.
pub fn state_code(s: State) -> u8 {
    match s {
        State::Established => 1,
        State::SynSent => 2,
        State::SynReceived => 3,
        State::FinWait1 => 4,
        State::FinWait2 => 5,
        State::TimeWait => 6,
        State::Closed => 7,
        State::CloseWait => 8,
        State::LastAck => 9,
        State::Listen => 10,
        State::Closing => 11,
    }
}

/// Borrows the stack behind a pointer, or answers `-EINVAL` for NULL.
macro_rules! stack {
    ($p:expr) => {
        // SAFETY: the caller passes NULL or a pointer from `dt_stack_new` that
        // it has not freed, and does not use one stack from two threads at
        // once (documented in daytona.h).
        match unsafe { $p.as_mut() } {
            Some(s) => s,
            None => return (-libc::EINVAL) as _,
        }
    };
}

/// Writes `v` through `out`, or answers `-EINVAL` for NULL.
macro_rules! put {
    ($out:expr, $v:expr) => {
        // SAFETY: the caller passes NULL or a valid, aligned pointer to
        // writable storage of the declared type.
        match unsafe { $out.as_mut() } {
            Some(slot) => {
                *slot = $v;
                0
            }
            None => -libc::EINVAL,
        }
    };
}

/// Fills `cfg` with the defaults: IP medium, 198.18.0.1/15, MTU 1500,
/// Linux-like TCP settings. Does nothing for NULL.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_stack_config_init(cfg: *mut DtStackConfig) {
    let d = StackConfig::ip(Ipv4Addr::new(198, 18, 0, 1), 15);
    let _ = put!(
        cfg,
        DtStackConfig {
            addr: u32::from(d.addr),
            prefix_len: d.prefix_len,
            ethernet: 0,
            mac: [0x02, 0, 0, 0, 0, 1],
            gateway: 0,
            mtu: d.mtu as u32,
            send_buffer: d.tcp.send_buffer as u32,
            recv_buffer: d.tcp.recv_buffer as u32,
            max_connections: d.max_connections as u32,
            secret: d.secret,
            congestion_control: ptr::null(),
        }
    );
}

/// Creates a stack. Returns 0 and stores it in `*out`, or a negative errno
/// (`-EINVAL` for a bad setting or an unknown congestion controller).
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_stack_new(cfg: *const DtStackConfig, out: *mut *mut DtStack) -> c_int {
    // SAFETY: the caller passes NULL or a pointer to an initialised config.
    let Some(c) = (unsafe { cfg.as_ref() }) else {
        return -libc::EINVAL;
    };
    if out.is_null() {
        return -libc::EINVAL;
    }
    let addr = Ipv4Addr::from(c.addr);
    let mut config = match c.ethernet {
        0 => StackConfig::ip(addr, c.prefix_len),
        1 => StackConfig::ethernet(EthernetAddress(c.mac), addr, c.prefix_len),
        _ => return -libc::EINVAL,
    };
    config.gateway = (c.gateway != 0).then(|| Ipv4Addr::from(c.gateway));
    config.mtu = c.mtu as usize;
    config.tcp.send_buffer = c.send_buffer as usize;
    config.tcp.recv_buffer = c.recv_buffer as usize;
    config.max_connections = c.max_connections as usize;
    config.secret = c.secret;
    if !c.congestion_control.is_null() {
        // SAFETY: a non-NULL `congestion_control` points to a NUL-terminated
        // string that lives for this call.
        let name = unsafe { CStr::from_ptr(c.congestion_control) };
        match name.to_str() {
            Ok(n) => config.tcp.congestion_control = n.to_owned(),
            Err(_) => return -libc::EINVAL,
        }
    }
    match Stack::new(config, CcRegistry::with_builtin()) {
        Ok(stack) => {
            let boxed = Box::new(DtStack {
                stack,
                pending_event: None,
            });
            put!(out, Box::into_raw(boxed))
        }
        Err(e) => errno_of(e),
    }
}

/// Frees a stack from `dt_stack_new`. NULL is ignored.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_stack_free(s: *mut DtStack) {
    if !s.is_null() {
        // SAFETY: `s` came from `Box::into_raw` in `dt_stack_new` and the
        // caller frees it once.
        drop(unsafe { Box::from_raw(s) });
    }
}

/// The buffer size `dt_stack_poll_transmit` needs: MTU plus link header.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_stack_frame_size(s: *const DtStack) -> usize {
    // SAFETY: NULL or a live stack from `dt_stack_new`.
    match unsafe { s.as_ref() } {
        Some(s) => s.stack.config().max_frame_len(),
        None => 0,
    }
}

/// Hands one received frame to the stack. A malformed frame is dropped and
/// counted, never an error. Returns 0, or `-EINVAL` for NULL pointers.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_stack_handle_frame(
    s: *mut DtStack,
    now_us: u64,
    frame: *const u8,
    len: usize,
) -> c_int {
    let s = stack!(s);
    if frame.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: `frame` points to `len` readable bytes for this call.
    let bytes = unsafe { std::slice::from_raw_parts(frame, len) };
    s.stack.handle_frame(Instant::from_micros(now_us), bytes);
    0
}

/// Writes the next frame to send into `buf` and returns its length; 0 when
/// there is nothing to send; `-EINVAL` when `cap < dt_stack_frame_size`.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_stack_poll_transmit(
    s: *mut DtStack,
    now_us: u64,
    buf: *mut u8,
    cap: usize,
) -> isize {
    // SAFETY: same contract as ours.
    if buf.is_null() || cap < unsafe { dt_stack_frame_size(s) } {
        return -libc::EINVAL as isize;
    }
    let s = stack!(s);
    // SAFETY: `buf` points to `cap` writable bytes for this call.
    let out = unsafe { std::slice::from_raw_parts_mut(buf, cap) };
    s.stack
        .poll_transmit(Instant::from_micros(now_us), out)
        .map_or(0, |n| n as isize)
}

/// When `dt_stack_handle_timeout` must next be called (µs), or -1 for never.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_stack_poll_timeout(s: *mut DtStack) -> i64 {
    let s = stack!(s);
    s.stack
        .poll_timeout()
        .map_or(-1, |t| i64::try_from(t.total_micros()).unwrap_or(i64::MAX))
}

/// Runs the timers due at `now_us`.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_stack_handle_timeout(s: *mut DtStack, now_us: u64) -> c_int {
    let s = stack!(s);
    s.stack.handle_timeout(Instant::from_micros(now_us));
    0
}

/// Takes the next event as a NUL-terminated JSON object. Returns 1 and
/// writes it (its length without the NUL in `*len`), 0 when there is none,
/// or `-ENOSPC` when `cap` is too small: then the event is kept and `*len`
/// says how many bytes (with the NUL) it needs.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_stack_poll_event(
    s: *mut DtStack,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> c_int {
    let s = stack!(s);
    if s.pending_event.is_none() {
        let Some(ev) = s.stack.poll_event() else {
            return 0;
        };
        match serde_json::to_vec(&ev) {
            Ok(json) => s.pending_event = Some(json),
            Err(_) => return -libc::EIO,
        }
    }
    let json = s.pending_event.as_deref().unwrap_or_default();
    if buf.is_null() || cap < json.len() + 1 {
        let _ = put!(len, json.len() + 1);
        return -libc::ENOSPC;
    }
    // SAFETY: `buf` points to `cap` writable bytes and `cap > json.len()`.
    unsafe {
        ptr::copy_nonoverlapping(json.as_ptr(), buf.cast::<u8>(), json.len());
        *buf.add(json.len()) = 0;
    }
    let _ = put!(len, json.len());
    s.pending_event = None;
    1
}

/// Listens on `port` (our address) with an accept backlog.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_listen(
    s: *mut DtStack,
    port: u16,
    backlog: u32,
    out: *mut u64,
) -> c_int {
    let s = stack!(s);
    let local = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    match s.stack.tcp_listen(local, backlog as usize) {
        Ok(lh) => put!(out, lh.into_raw()),
        Err(e) => errno_of(e),
    }
}

/// Takes an established connection from a listener; `-EAGAIN` if none.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_accept(s: *mut DtStack, listener: u64, out: *mut u64) -> c_int {
    let s = stack!(s);
    match s.stack.tcp_accept(ListenerHandle::from_raw(listener)) {
        Ok(h) => put!(out, h.into_raw()),
        Err(e) => errno_of(e),
    }
}

/// Closes a listener; connections still in its queues are reset.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_close_listener(
    s: *mut DtStack,
    now_us: u64,
    listener: u64,
) -> c_int {
    let s = stack!(s);
    status(s.stack.tcp_close_listener(
        Instant::from_micros(now_us),
        ListenerHandle::from_raw(listener),
    ))
}

/// Starts connecting to `addr:port` (host order) from an ephemeral port.
/// The handshake completes as frames flow; watch `dt_tcp_state`.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_connect(
    s: *mut DtStack,
    now_us: u64,
    addr: u32,
    port: u16,
    out: *mut u64,
) -> c_int {
    let s = stack!(s);
    let remote = SocketAddrV4::new(Ipv4Addr::from(addr), port);
    match s
        .stack
        .tcp_connect(Instant::from_micros(now_us), remote, None)
    {
        Ok(h) => put!(out, h.into_raw()),
        Err(e) => errno_of(e),
    }
}

/// Queues up to `len` bytes; returns how many were taken or a negative
/// errno (`-EAGAIN` when the send buffer is full, `-EPIPE` after shutdown).
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_send(
    s: *mut DtStack,
    now_us: u64,
    conn: u64,
    data: *const u8,
    len: usize,
) -> isize {
    let s = stack!(s);
    if data.is_null() && len > 0 {
        return -libc::EINVAL as isize;
    }
    let bytes: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: `data` points to `len` readable bytes for this call.
        unsafe { std::slice::from_raw_parts(data, len) }
    };
    count(s.stack.tcp_send(
        Instant::from_micros(now_us),
        ConnHandle::from_raw(conn),
        bytes,
    ))
}

/// Reads up to `cap` bytes; returns the count, 0 at end of stream, or a
/// negative errno (`-EAGAIN` when nothing is there yet).
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_recv(
    s: *mut DtStack,
    now_us: u64,
    conn: u64,
    buf: *mut u8,
    cap: usize,
) -> isize {
    let s = stack!(s);
    if buf.is_null() && cap > 0 {
        return -libc::EINVAL as isize;
    }
    let out: &mut [u8] = if cap == 0 {
        &mut []
    } else {
        // SAFETY: `buf` points to `cap` writable bytes for this call.
        unsafe { std::slice::from_raw_parts_mut(buf, cap) }
    };
    count(s.stack.tcp_recv(
        Instant::from_micros(now_us),
        ConnHandle::from_raw(conn),
        out,
    ))
}

/// Shuts down one or both directions (`DT_SHUT_RD/WR/RDWR`, as `SHUT_*`).
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_shutdown(
    s: *mut DtStack,
    now_us: u64,
    conn: u64,
    how: c_int,
) -> c_int {
    let s = stack!(s);
    let how = match how {
        DT_SHUT_RD => Shutdown::Read,
        DT_SHUT_WR => Shutdown::Write,
        DT_SHUT_RDWR => Shutdown::Both,
        _ => return -libc::EINVAL,
    };
    status(s.stack.tcp_shutdown(
        Instant::from_micros(now_us),
        ConnHandle::from_raw(conn),
        how,
    ))
}

/// Closes a connection (FIN after queued data, or RST if unread data is
/// left, RFC 2525 §2.17). The handle is invalid afterwards.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_close(s: *mut DtStack, now_us: u64, conn: u64) -> c_int {
    let s = stack!(s);
    status(
        s.stack
            .tcp_close(Instant::from_micros(now_us), ConnHandle::from_raw(conn)),
    )
}

/// Resets a connection at once. The handle is invalid afterwards.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_abort(s: *mut DtStack, now_us: u64, conn: u64) -> c_int {
    let s = stack!(s);
    status(
        s.stack
            .tcp_abort(Instant::from_micros(now_us), ConnHandle::from_raw(conn)),
    )
}

/// `TCP_NODELAY`: 1 disables Nagle's algorithm.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_set_nodelay(
    s: *mut DtStack,
    now_us: u64,
    conn: u64,
    on: c_int,
) -> c_int {
    let s = stack!(s);
    status(s.stack.tcp_set_nodelay(
        Instant::from_micros(now_us),
        ConnHandle::from_raw(conn),
        on != 0,
    ))
}

/// Tags the connection; events carry the tag from then on.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_set_tag(
    s: *mut DtStack,
    now_us: u64,
    conn: u64,
    tag: u64,
) -> c_int {
    let s = stack!(s);
    status(s.stack.tcp_set_tag(
        Instant::from_micros(now_us),
        ConnHandle::from_raw(conn),
        tag,
    ))
}

/// The connection's state in Linux numbering (`DT_TCP_ESTABLISHED` = 1 …),
/// or a negative errno.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_state(s: *mut DtStack, conn: u64) -> c_int {
    let s = stack!(s);
    match s.stack.tcp_state(ConnHandle::from_raw(conn)) {
        Ok(st) => c_int::from(state_code(st)),
        Err(e) => errno_of(e),
    }
}

/// Fills `*out` with the connection's `TcpInfo`.
/// # Safety
/// See the crate documentation: pointers are NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dt_tcp_get_info(
    s: *mut DtStack,
    now_us: u64,
    conn: u64,
    out: *mut DtTcpInfo,
) -> c_int {
    let s = stack!(s);
    match s
        .stack
        .tcp_info(Instant::from_micros(now_us), ConnHandle::from_raw(conn))
    {
        Ok(info) => put!(out, c_info(&info)),
        Err(e) => errno_of(e),
    }
}

/// The library version, a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn dt_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use daytona_core::observe::{ConnId, Event, EventKind, RetransmitCause};
    use daytona_core::Duration;
    use daytona_wire::SeqNum;

    fn json(kind: EventKind) -> serde_json::Value {
        let ev = Event {
            time: Instant::from_micros(1_500),
            conn: ConnId(3),
            tag: 9,
            kind,
        };
        serde_json::to_value(&ev).expect("events serialize")
    }

    #[test]
    fn events_are_flat_json_objects_with_times_in_microseconds() {
        let v = json(EventKind::StateChange {
            from: State::SynSent,
            to: State::Established,
        });
        assert_eq!(
            v,
            serde_json::json!({"time_us": 1500, "conn": 3, "tag": 9,
                "event": "state_change", "from": "syn_sent", "to": "established"})
        );
        let v = json(EventKind::RttSample {
            rtt: Duration::from_micros(20_250),
            srtt: Duration::from_millis(20),
            rttvar: Duration::from_millis(10),
            rto: Duration::from_millis(220),
        });
        assert_eq!(v["rtt"], 20_250);
        assert_eq!(v["rto"], 220_000);
        let v = json(EventKind::Retransmit {
            seq: SeqNum::new(4_000_000_000),
            len: 1448,
            cause: RetransmitCause::FastRetransmit,
        });
        assert_eq!(v["seq"], 4_000_000_000u32);
        assert_eq!(v["cause"], "fast_retransmit");
    }

    #[test]
    fn null_pointers_and_bad_settings_are_einval() {
        let mut cfg = std::mem::MaybeUninit::<DtStackConfig>::uninit();
        let mut s: *mut DtStack = ptr::null_mut();
        // SAFETY: every pointer passed is NULL on purpose or points to a live
        // local; `s` is freed once at the end.
        unsafe {
            dt_stack_config_init(cfg.as_mut_ptr());
            let mut cfg = cfg.assume_init();
            assert_eq!(dt_stack_new(ptr::null(), &mut s), -libc::EINVAL);
            assert_eq!(dt_stack_new(&cfg, ptr::null_mut()), -libc::EINVAL);
            cfg.ethernet = 2;
            assert_eq!(dt_stack_new(&cfg, &mut s), -libc::EINVAL);
            cfg.ethernet = 0;
            cfg.mtu = 20;
            assert_eq!(dt_stack_new(&cfg, &mut s), -libc::EINVAL);
            cfg.mtu = 1500;
            assert_eq!(dt_stack_new(&cfg, &mut s), 0);
            assert!(!s.is_null());
            assert_eq!(dt_tcp_state(ptr::null_mut(), 0), -libc::EINVAL);
            assert_eq!(dt_tcp_state(s, 12345), -libc::EBADF);
            assert_eq!(dt_tcp_listen(s, 0, 1, &mut 0), -libc::EINVAL);
            assert_eq!(dt_tcp_listen(s, 80, 1, ptr::null_mut()), -libc::EINVAL);
            assert_eq!(dt_stack_handle_frame(s, 0, ptr::null(), 10), -libc::EINVAL);
            assert_eq!(
                dt_tcp_connect(s, 0, u32::from(Ipv4Addr::BROADCAST), 80, &mut 0),
                -libc::EINVAL
            );
            dt_stack_free(s);
        }
    }

    #[test]
    fn info_maps_linux_option_bits_and_missing_samples() {
        let mut info = TcpInfo::default();
        info.options.sack = true;
        info.options.window_scale = true;
        info.state = State::FinWait2;
        let c = c_info(&info);
        assert_eq!(c.options, 0b110);
        assert_eq!(c.state, 5);
        assert_eq!(c.min_rtt_us, u32::MAX);
        assert_eq!(c.delivery_rate, 0);
    }
}
