//! The TCP state of a socket a side still holds.

use super::Value;
use std::os::fd::AsFd;

/// Linux: `tcpi_state` from TCP_INFO, named as in `include/net/tcp_states.h`.
#[cfg(target_os = "linux")]
pub fn of(sock: &impl AsFd) -> Value {
    use std::os::fd::AsRawFd;
    match tcp_info(sock.as_fd().as_raw_fd()) {
        Ok(info) => Value::State(linux_state_name(info.tcpi_state).to_string()),
        Err(e) => Value::errno(e),
    }
}

/// TCP_INFO for a socket (Linux).
#[cfg(target_os = "linux")]
pub fn tcp_info(fd: std::os::fd::RawFd) -> nix::Result<libc::tcp_info> {
    // SAFETY: tcp_info is plain old data; the kernel fills at most `len` bytes of it.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut _ as *mut libc::c_void,
            &mut len,
        );
        nix::errno::Errno::result(rc).map(|_| info)
    }
}

/// Linux's TCP state numbers (`TCP_ESTABLISHED` = 1 …) by name.
pub fn linux_state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// Elsewhere the state is not read yet: the fact says so rather than guessing.
#[cfg(not(target_os = "linux"))]
pub fn of(_sock: &impl AsFd) -> Value {
    Value::Text("state unavailable on this OS".into())
}
