//! The runtime's one contact with raw file descriptors: links report their
//! wait fd as a `RawFd` (`Link::wait_fd`), and the runtime keeps its own
//! duplicate of it, so it can wait on the fd (epoll, poll) independently of
//! the link's lifetime. Everything else uses `rustix`'s safe calls.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

/// Duplicates `fd` (close-on-exec). The duplicate refers to the same open
/// file description, so it becomes readable exactly when the original does.
pub(crate) fn dup_wait_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "link reported a negative wait fd",
        ));
    }
    // SAFETY: `fd` comes from `Link::wait_fd` of a link we own and hold
    // (not yet moved into the stack thread) for the whole duration of this
    // call, so it is open; the borrow ends before this function returns, and
    // the duplicate we keep is a new descriptor we own.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(rustix::io::fcntl_dupfd_cloexec(borrowed, 0)?)
}
