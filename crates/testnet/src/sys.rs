//! The system calls the scaffolding needs: entering a namespace, the
//! effective uid, and TCP_CONGESTION on a kernel socket.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// Whether the process runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Moves the calling thread into the network namespace at `path`
/// (`/var/run/netns/<name>`).
pub(crate) fn enter_netns(path: &str) -> io::Result<()> {
    let f = File::open(path)?;
    // SAFETY: `f` is an open namespace file for the duration of the call;
    // setns only changes the calling thread's namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets TCP_CONGESTION on a kernel TCP socket (listener or stream).
pub fn set_congestion_control(sock: &impl AsRawFd, name: &str) -> io::Result<()> {
    let fd: RawFd = sock.as_raw_fd();
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let bytes = name.as_bytes();
    // SAFETY: `fd` is a valid socket borrowed from `sock`; the option value
    // points to `bytes.len()` readable bytes that outlive the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            bytes.as_ptr().cast(),
            bytes.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `close` of a kernel TCP socket send a RST (SO_LINGER with a zero
/// timeout), for tests of resets.
pub fn reset_on_close(sock: &impl AsRawFd) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid socket fd borrowed from `sock`; the option value is a
    // `linger` that lives across the call, with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The kernel's retransmission count for a TCP socket (TCP_INFO
/// `tcpi_total_retrans`).
pub fn kernel_total_retrans(sock: &impl AsRawFd) -> io::Result<u32> {
    // SAFETY: tcp_info is plain old data; all-zero is a valid value.
    let mut ti: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: valid socket fd; `ti` and `len` are writable and `len` holds
    // the size of `ti`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut ti as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ti.tcpi_total_retrans)
}
