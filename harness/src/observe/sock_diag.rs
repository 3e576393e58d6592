//! Sockets that no process holds: a TIME_WAIT socket or an orphaned FIN_WAIT_2 socket has no
//! file descriptor, so TCP_INFO cannot reach it. The kernel's socket table lists it with its
//! state and running timer: on Linux sock_diag (a netlink dump of the namespace's TCP sockets,
//! what `ss -tan` reads), on FreeBSD and macOS the PCB list sysctl ([`super::pcblist`], what
//! `netstat -an` reads). Cases that read it declare [`crate::Need::SockDiag`].
//!
//! What `timer` and `left` mean differs by OS, because each kernel exports its timers
//! differently:
//! - Linux: `idiag_timer`'s kind (`retransmit`, `keepalive`, `time_wait` — also the timer of an
//!   orphaned FIN_WAIT_2 socket, kept as a time-wait socket —, `zero_window_probe`) and
//!   `idiag_expires`, the milliseconds left;
//! - FreeBSD: the first running one of the 2MSL, retransmit, persist and keepalive timers of
//!   `struct xtcpcb` (`2msl`, `rexmt`, `persist`, `keep`, named after its `tt_*` fields), and the
//!   milliseconds left, which `tcp_inptoxtp()` computes as (expiry - now) / SBT_1MS;
//! - macOS: the same choice among `struct xtcpcb_n`'s `t_timer[]` (`2msl`, `rexmt`, `persist`,
//!   `keep`), but no time left: XNU exports the raw timer values, which count from the
//!   connection's `tentry.timer_start` (tcp_timer.h `OFFSET_FROM_START`), or for TIME_WAIT from
//!   boot (`add_to_time_wait_locked()`: `tcp_now + delay`), and neither clock is exported. The
//!   fact `left` is then not recorded, rather than guessed.

use super::{Ctx, Value};
use crate::kind::{Family, Kind};
use std::time::{Duration, Instant};

/// The timer a socket has running: its kind, as its OS names it (above), and the time left
/// where the OS exports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    pub kind: &'static str,
    pub left: Option<Duration>,
}

/// One TCP socket of the namespace (the host, where there is no namespace), as the
/// kernel's socket table reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSock {
    /// Named as in Linux's `include/net/tcp_states.h` (`TIME_WAIT`, `FIN_WAIT2`, …) on every
    /// OS ([`super::tcp_state::bsd_state_name`]).
    pub state: &'static str,
    pub local_port: u16,
    pub remote_port: u16,
    /// `None` when no timer runs.
    pub timer: Option<Timer>,
}

/// The call a hang in reading the table is reported in.
const TABLE: &str = if cfg!(target_os = "linux") {
    "sock_diag"
} else {
    "pcblist"
};

/// How often [`Ctx::await_sock`] asks the kernel again: cheap in a private namespace, and fine
/// enough for timers judged in hundreds of milliseconds.
const POLL_EVERY: Duration = Duration::from_millis(10);

impl Ctx {
    /// Find the namespace's TCP socket from `local` to `remote` port and record what it is:
    /// `name.state` (its state, or `none` when there is no such socket) and, when it has a
    /// timer running, `name.timer` (its kind) and, where the OS exports it, `name.left` (the
    /// time left, a duration judged with a range); see the module's documentation.
    pub fn sock_diag(&mut self, name: &str, local: u16, remote: u16) -> Option<TcpSock> {
        self.begin(TABLE);
        let found = find(self.kind(), local, remote);
        let state = found.map_or("none", |s| s.state);
        self.record(&format!("{name}.state"), Value::State(state.to_string()));
        if let Some(timer) = found.and_then(|s| s.timer) {
            self.record(&format!("{name}.timer"), Value::Text(timer.kind.into()));
            if let Some(left) = timer.left {
                self.record(
                    &format!("{name}.left"),
                    Value::Millis(left.as_millis() as u64),
                );
            }
        }
        found
    }

    /// Wait, unrecorded, until the socket from `local` to `remote` is in `state` (`None`: until
    /// there is no such socket), for at most `within`. Returns how long that took, or `None` if
    /// it did not happen in time (the step after it then records what there is instead).
    pub fn await_sock(
        &mut self,
        local: u16,
        remote: u16,
        state: Option<&str>,
        within: Duration,
    ) -> Option<Duration> {
        self.begin(&format!(
            "await {TABLE} {local}->{remote} {}",
            state.unwrap_or("gone")
        ));
        let start = Instant::now();
        loop {
            if find(self.kind(), local, remote).map(|s| s.state) == state {
                return Some(start.elapsed());
            }
            if start.elapsed() >= within {
                return None;
            }
            // Polling with a deadline: the kernel gives no notification of a timer's expiry.
            std::thread::sleep(POLL_EVERY);
        }
    }
}

/// The socket of `kind`'s families from `local` to `remote` port, if the namespace has one. A
/// failed dump panics: it is the harness's failure, not an observation of the behaviour under
/// test.
fn find(kind: Kind, local: u16, remote: u16) -> Option<TcpSock> {
    tcp_sockets(Family::of(kind))
        .expect("a dump of the kernel's TCP socket table")
        .into_iter()
        .find(|s| s.local_port == local && s.remote_port == remote)
}

/// Every TCP socket of `families` in this network namespace, in every state: one dump per
/// family.
#[cfg(target_os = "linux")]
pub fn tcp_sockets(families: &[Family]) -> std::io::Result<Vec<TcpSock>> {
    let mut sockets = vec![];
    for family in families {
        sockets.extend(imp::dump(*family)?);
    }
    Ok(sockets)
}

/// Every TCP socket of `families` on the host, from FreeBSD's `net.inet.tcp.pcblist`.
#[cfg(target_os = "freebsd")]
pub fn tcp_sockets(families: &[Family]) -> std::io::Result<Vec<TcpSock>> {
    let table = super::pcblist::read_sysctl(super::pcblist::freebsd::SYSCTL)?;
    super::pcblist::freebsd::parse(&table, families)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Every TCP socket of `families` on the host, from XNU's `net.inet.tcp.pcblist_n`.
#[cfg(target_os = "macos")]
pub fn tcp_sockets(families: &[Family]) -> std::io::Result<Vec<TcpSock>> {
    let table = super::pcblist::read_sysctl(super::pcblist::xnu::SYSCTL)?;
    super::pcblist::xnu::parse(&table, families)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// No socket table here; cases that need it are skipped before they run
/// ([`crate::Need::SockDiag`]).
#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "macos")))]
pub fn tcp_sockets(_families: &[Family]) -> std::io::Result<Vec<TcpSock>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "no socket table reader for this OS",
    ))
}

/// Whether this OS has a reader of the kernel's socket table.
pub const AVAILABLE: bool = cfg!(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "macos"
));

#[cfg(target_os = "linux")]
mod imp {
    use super::{Family, TcpSock, Timer};
    use crate::observe::tcp_state::linux_state_name;
    use netlink_packet_core::{
        NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
    };
    use netlink_packet_sock_diag::{
        constants::{AF_INET, AF_INET6, IPPROTO_TCP},
        inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
        SockDiagMessage,
    };
    use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
    use std::io;
    use std::time::Duration;

    /// Where `idiag_expires` sits in a response: after the 16-byte `nlmsghdr`, and in
    /// `inet_diag_msg` after family, state, timer, retrans (1 byte each) and the 48-byte
    /// `inet_diag_sockid`. Read from the bytes because the crate's `Timer::TimeWait` drops it,
    /// and the time TIME_WAIT has left is what the cases record.
    const EXPIRES_AT: usize = 16 + 4 + 48;

    pub fn dump(family: Family) -> io::Result<Vec<TcpSock>> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;

        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut request = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family: match family {
                    Family::Inet => AF_INET,
                    Family::Inet6 => AF_INET6,
                },
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::all(),
                socket_id: match family {
                    Family::Inet => SocketId::new_v4(),
                    Family::Inet6 => SocketId::new_v6(),
                },
            })
            .into(),
        );
        request.finalize();
        let mut buf = vec![0; request.buffer_len()];
        request.serialize(&mut buf);
        socket.send(&buf, 0)?;

        let mut sockets = vec![];
        let mut recv = vec![0u8; 64 * 1024];
        loop {
            let size = socket.recv(&mut &mut recv[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let bytes = &recv[offset..size];
                let message = NetlinkMessage::<SockDiagMessage>::deserialize(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let length = message.header.length as usize;
                match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                        let h = &response.header;
                        let left = bytes
                            .get(EXPIRES_AT..EXPIRES_AT + 4)
                            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .map_or(Duration::ZERO, |ms| Duration::from_millis(ms.into()));
                        // Named as `idiag_timer` is in inet_diag.h's comment, in snake case.
                        use netlink_packet_sock_diag::inet::Timer as T;
                        let kind = h.timer.as_ref().map(|t| match t {
                            T::Retransmit(..) => "retransmit",
                            T::KeepAlive(_) => "keepalive",
                            T::TimeWait => "time_wait",
                            T::Probe(_) => "zero_window_probe",
                        });
                        let timer = kind.map(|kind| Timer {
                            kind,
                            left: Some(left),
                        });
                        sockets.push(TcpSock {
                            state: linux_state_name(h.state),
                            local_port: h.socket_id.source_port,
                            remote_port: h.socket_id.destination_port,
                            timer,
                        });
                    }
                    NetlinkPayload::Done(_) => return Ok(sockets),
                    NetlinkPayload::Error(e) => {
                        return Err(io::Error::other(format!("sock_diag: {e:?}")))
                    }
                    _ => {}
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

/// Runs where the socket table is read: Linux here, FreeBSD and macOS where the tests run there.
#[cfg(all(
    test,
    any(target_os = "linux", target_os = "freebsd", target_os = "macos")
))]
mod tests {
    use super::*;
    use crate::observe::sock::{local_port, tcp_socket};

    /// A listener on 127.0.0.1 and one on [::1], on other ports: each kind's families list
    /// its own and not the other's (matching on ports alone, as the cases do), the dual-stack
    /// kind both, an AF_UNIX kind neither.
    #[test]
    fn lists_the_listeners_of_each_kinds_families() {
        let listen = |kind: Kind| {
            let listener = tcp_socket(kind);
            listener
                .bind(&kind.loopback(0).into())
                .expect("bind an ephemeral port");
            listener.listen(1).expect("listen");
            let port = local_port(&listener);
            (listener, port)
        };
        let (_v4, v4_port) = listen(Kind::Ipv4);
        // Another family may be given the same ephemeral port: ask again until it is not.
        let (_v6, v6_port) = std::iter::repeat_with(|| listen(Kind::Ipv6))
            .take(8)
            .find(|(_, port)| *port != v4_port)
            .expect("an IPv6 port other than the IPv4 listener's");
        let listening = |kind: Kind| {
            let mut ports: Vec<u16> = tcp_sockets(Family::of(kind))
                .expect("a dump of the socket table")
                .into_iter()
                .filter(|s| s.state == "LISTEN" && [v4_port, v6_port].contains(&s.local_port))
                .map(|s| s.local_port)
                .collect();
            ports.sort_unstable();
            ports
        };
        let mut both = vec![v4_port, v6_port];
        both.sort_unstable();
        assert_eq!(listening(Kind::Ipv4), [v4_port]);
        assert_eq!(listening(Kind::Ipv6), [v6_port]);
        assert_eq!(listening(Kind::DualStack), both);
        assert!(listening(Kind::UnixStream).is_empty());
    }
}
