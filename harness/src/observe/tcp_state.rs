//! The TCP state of a socket a side still holds.
//!
//! Each OS has its own getsockopt and its own numbering; the state is always named the way the
//! Linux facts name it (`include/net/tcp_states.h`), so that one expectation can be compared
//! across OSes. The byte parsers compile everywhere and are tested on Linux over fixtures built
//! from the structure definitions; only the getsockopt calls are per OS.

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

/// The BSD `TCPS_*` numbers. FreeBSD (sys/netinet/tcp_fsm.h, stable/14 at
/// ilnp/ilnp-freebsd14 2f2a4162) and XNU (bsd/netinet/tcp_fsm.h, xnu-11417.121.6) define the
/// same eleven states with the same numbers. libc has no constants for them.
pub mod tcps {
    pub const CLOSED: u8 = 0;
    pub const LISTEN: u8 = 1;
    pub const SYN_SENT: u8 = 2;
    pub const SYN_RECEIVED: u8 = 3;
    pub const ESTABLISHED: u8 = 4;
    pub const CLOSE_WAIT: u8 = 5;
    pub const FIN_WAIT_1: u8 = 6;
    pub const CLOSING: u8 = 7;
    pub const LAST_ACK: u8 = 8;
    pub const FIN_WAIT_2: u8 = 9;
    pub const TIME_WAIT: u8 = 10;
}

/// A BSD `TCPS_*` state, named as the Linux facts name it. The spellings differ from the BSD
/// headers' in four places: TCPS_CLOSED is Linux's `CLOSE` (TCP_CLOSE), TCPS_SYN_RECEIVED is
/// `SYN_RECV`, TCPS_FIN_WAIT_1 and TCPS_FIN_WAIT_2 are `FIN_WAIT1` and `FIN_WAIT2`.
pub fn bsd_state_name(state: u8) -> &'static str {
    match state {
        tcps::CLOSED => "CLOSE",
        tcps::LISTEN => "LISTEN",
        tcps::SYN_SENT => "SYN_SENT",
        tcps::SYN_RECEIVED => "SYN_RECV",
        tcps::ESTABLISHED => "ESTABLISHED",
        tcps::CLOSE_WAIT => "CLOSE_WAIT",
        tcps::FIN_WAIT_1 => "FIN_WAIT1",
        tcps::CLOSING => "CLOSING",
        tcps::LAST_ACK => "LAST_ACK",
        tcps::FIN_WAIT_2 => "FIN_WAIT2",
        tcps::TIME_WAIT => "TIME_WAIT",
        _ => "UNKNOWN",
    }
}

/// FreeBSD's `struct tcp_info` (sys/netinet/tcp.h, stable/14): `u_int8_t tcpi_state` is its
/// first member, filled by `tcp_fill_info()` (sys/netinet/tcp_usrreq.c) from `tp->t_state`.
/// The kernel copies out at most the buffer given (`sooptcopyout()`), so a buffer of the
/// struct's size in 14 (240 bytes) is all that is needed, whichever FreeBSD version libc's
/// copy of the struct follows.
pub const FREEBSD_TCP_INFO_SIZE: usize = 240;
pub const FREEBSD_TCPI_STATE_AT: usize = 0;

/// XNU's `struct tcp_connection_info` (bsd/netinet/tcp.h, xnu-11417.121.6), returned by
/// getsockopt(IPPROTO_TCP, TCP_CONNECTION_INFO = 0x106): `u_int8_t tcpi_state` is its first
/// member, filled by `tcp_connection_fill_info()` (bsd/netinet/tcp_usrreq.c) from
/// `tp->t_state`. 112 bytes on LP64.
pub const XNU_TCP_CONNECTION_INFO_SIZE: usize = 112;
pub const XNU_TCPI_STATE_AT: usize = 0;

/// The state named in a BSD tcp_info-like buffer whose `tcpi_state` byte is at `state_at`, or
/// `None` if the kernel returned fewer bytes than that.
pub fn bsd_state_of_info(info: &[u8], state_at: usize) -> Option<&'static str> {
    info.get(state_at).map(|&s| bsd_state_name(s))
}

/// FreeBSD: `tcpi_state` from TCP_INFO, in the BSD numbering.
#[cfg(target_os = "freebsd")]
pub fn of(sock: &impl AsFd) -> Value {
    bsd_of(
        sock,
        libc::TCP_INFO,
        FREEBSD_TCP_INFO_SIZE,
        FREEBSD_TCPI_STATE_AT,
    )
}

/// macOS: `tcpi_state` from TCP_CONNECTION_INFO, in the BSD numbering.
#[cfg(target_os = "macos")]
pub fn of(sock: &impl AsFd) -> Value {
    bsd_of(
        sock,
        libc::TCP_CONNECTION_INFO,
        XNU_TCP_CONNECTION_INFO_SIZE,
        XNU_TCPI_STATE_AT,
    )
}

#[cfg(any(target_os = "freebsd", target_os = "macos"))]
fn bsd_of(sock: &impl AsFd, option: libc::c_int, size: usize, state_at: usize) -> Value {
    use std::os::fd::AsRawFd;
    // u64s, so that the buffer is aligned as the kernel's struct is.
    let mut buf = vec![0u64; size.div_ceil(8)];
    let mut len = size as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into a buffer of at least that many.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            option,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if let Err(e) = nix::errno::Errno::result(rc) {
        return Value::errno(e);
    }
    let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match bsd_state_of_info(&bytes[..len as usize], state_at) {
        Some(name) => Value::State(name.to_string()),
        None => Value::Text(format!("tcp info of {len} bytes has no tcpi_state")),
    }
}

/// Elsewhere the state is not read: the fact says so rather than guessing.
#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "macos")))]
pub fn of(_sock: &impl AsFd) -> Value {
    Value::Text("state unavailable on this OS".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Every BSD state, by the number its tcp_fsm.h gives it, and the Linux spelling.
    #[rstest]
    #[case(0, "CLOSE")]
    #[case(1, "LISTEN")]
    #[case(2, "SYN_SENT")]
    #[case(3, "SYN_RECV")]
    #[case(4, "ESTABLISHED")]
    #[case(5, "CLOSE_WAIT")]
    #[case(6, "FIN_WAIT1")]
    #[case(7, "CLOSING")]
    #[case(8, "LAST_ACK")]
    #[case(9, "FIN_WAIT2")]
    #[case(10, "TIME_WAIT")]
    #[case(11, "UNKNOWN")]
    fn names_bsd_states_as_linux_does(#[case] number: u8, #[case] name: &str) {
        assert_eq!(bsd_state_name(number), name);
    }

    /// The same state by number means different things on Linux and the BSDs: 4 is
    /// FIN_WAIT1 on Linux and ESTABLISHED on the BSDs.
    #[test]
    fn numberings_differ() {
        assert_eq!(linux_state_name(4), "FIN_WAIT1");
        assert_eq!(bsd_state_name(4), "ESTABLISHED");
    }

    /// A FreeBSD tcp_info as the kernel fills it for a socket in FIN_WAIT_2: tcpi_state first,
    /// then `__tcpi_ca_state`, `__tcpi_retransmits`, ... (nonzero here, to show they are not
    /// read), `tcpi_rto` at 8.
    #[test]
    fn reads_tcpi_state_from_a_freebsd_tcp_info() {
        let mut info = vec![0u8; 240];
        info[0] = tcps::FIN_WAIT_2;
        info[1..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
        info[8..12].copy_from_slice(&200_000u32.to_ne_bytes());
        assert_eq!(
            bsd_state_of_info(&info, FREEBSD_TCPI_STATE_AT),
            Some("FIN_WAIT2")
        );
    }

    /// An XNU tcp_connection_info for a socket in CLOSE_WAIT: tcpi_state, then the window
    /// scales, a pad byte, and `tcpi_options` at 4.
    #[test]
    fn reads_tcpi_state_from_a_tcp_connection_info() {
        let mut info = vec![0u8; 112];
        info[0] = tcps::CLOSE_WAIT;
        info[1] = 6;
        info[2] = 6;
        info[4..8].copy_from_slice(&7u32.to_ne_bytes());
        assert_eq!(
            bsd_state_of_info(&info, XNU_TCPI_STATE_AT),
            Some("CLOSE_WAIT")
        );
        assert_eq!(bsd_state_of_info(&[], XNU_TCPI_STATE_AT), None);
    }
}
