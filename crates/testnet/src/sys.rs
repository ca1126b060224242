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
