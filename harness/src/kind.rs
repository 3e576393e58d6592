//! The socket kind a case runs over: part of its identity everywhere (`close.fin_then_eof@ipv6`
//! in the CLI, the report, `compare`, JUnit, make and the cargo tests).

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What the two sides of a case talk over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// TCP over 127.0.0.1.
    Ipv4,
    /// TCP over ::1.
    Ipv6,
    /// TCP across the IPv4/IPv6 boundary of one AF_INET6 socket (IPV6_V6ONLY off): the
    /// dual-stack family's cases, which choose their addresses themselves.
    DualStack,
    /// AF_UNIX SOCK_STREAM over a pathname in the case's private temporary directory.
    UnixStream,
    /// AF_UNIX SOCK_SEQPACKET over a pathname, likewise.
    UnixSeqpacket,
}

impl Kind {
    /// Every kind, in the order instances are listed.
    pub const ALL: &'static [Kind] = &[
        Kind::Ipv4,
        Kind::Ipv6,
        Kind::DualStack,
        Kind::UnixStream,
        Kind::UnixSeqpacket,
    ];

    /// The kinds a TCP case runs over unless it says otherwise: IPv4 and IPv6 loopback.
    pub const TCP: &'static [Kind] = &[Kind::Ipv4, Kind::Ipv6];

    /// The name in instance ids, reports and make targets.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::DualStack => "dual_stack",
            Kind::UnixStream => "unix_stream",
            Kind::UnixSeqpacket => "unix_seqpacket",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Whether segments go over a wire the harness can capture: every IP kind; an AF_UNIX
    /// socket never makes a segment.
    pub fn has_wire(self) -> bool {
        !self.is_unix()
    }

    /// Why there is nothing on the wire, for the report's notes; None for the IP kinds.
    pub fn no_wire_because(self) -> Option<&'static str> {
        (!self.has_wire()).then_some(
            "an AF_UNIX socket sends no segments: the kernel moves its data between the two \
             sockets' buffers directly (net/unix/af_unix.c), so there is no wire to capture",
        )
    }

    /// The loopback address of an IP kind: 127.0.0.1, or ::1 for IPv6. The dual-stack cases
    /// start from IPv4's; AF_UNIX has none (also IPv4's, never used).
    pub fn loopback_ip(self) -> IpAddr {
        match self {
            Kind::Ipv6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    /// `loopback_ip():port`.
    pub fn loopback(self, port: u16) -> SocketAddr {
        SocketAddr::new(self.loopback_ip(), port)
    }

    /// Whether this kind's sockets are AF_UNIX (over a pathname in the instance's private
    /// directory, `harness::spawn::unix_dir`).
    pub fn is_unix(self) -> bool {
        matches!(self, Kind::UnixStream | Kind::UnixSeqpacket)
    }

    /// socket2's socket type for this kind: SOCK_SEQPACKET for AF_UNIX's, else SOCK_STREAM.
    pub fn socket_type(self) -> socket2::Type {
        match self {
            Kind::UnixSeqpacket => socket2::Type::SEQPACKET,
            _ => socket2::Type::STREAM,
        }
    }

    /// Why no case can run over this kind on `os` at all (a property of the OS, not of the
    /// machine or the case): the instance is skipped, and ignored in `cargo test`, with it.
    pub fn cannot_apply_on(self, os: crate::platform::Os) -> Option<&'static str> {
        match (self, os) {
            (Kind::UnixSeqpacket, crate::platform::Os::Macos) => Some(
                "macOS has no SOCK_SEQPACKET for AF_UNIX: xnu-11417.121.6 \
                 bsd/kern/uipc_proto.c localsw[] declares SOCK_STREAM and SOCK_DGRAM only, so \
                 socket() fails with EPROTONOSUPPORT (bsd/kern/uipc_socket.c \
                 socreate_internal(): pffindtype() finds no protocol)",
            ),
            _ => None,
        }
    }

    /// socket2's domain for this kind's sockets.
    pub fn domain(self) -> socket2::Domain {
        match self {
            Kind::Ipv4 | Kind::DualStack => socket2::Domain::IPV4,
            Kind::Ipv6 => socket2::Domain::IPV6,
            Kind::UnixStream | Kind::UnixSeqpacket => socket2::Domain::UNIX,
        }
    }
}

/// An IP address family, as the harness looks for a kind's sockets and segments: in the
/// kernel's socket table (Linux's sock_diag dumps one family per request,
/// `inet_diag_dump_icsk()` skipping a socket whose `sk_family` is not the request's; the BSDs
/// list every PCB and mark each with the families it carries, `inp_vflag`) and in a capture
/// on a shared loopback (by the IP version of each frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    /// The families an instance of `kind` makes its sockets and segments in, so the ones
    /// the harness looks for: AF_INET for IPv4, AF_INET6 for IPv6, and both for the dual-stack
    /// kind, whose AF_INET6 sockets carry v4-mapped traffic (listed under AF_INET6 on Linux;
    /// on the BSDs such a connected PCB is marked INP_IPV4 instead of INP_IPV6) and whose
    /// peers may be AF_INET sockets. AF_INET6 is 10 on Linux, 28 on FreeBSD, 30 on XNU; an
    /// AF_UNIX kind has no TCP sockets.
    pub fn of(kind: Kind) -> &'static [Family] {
        match kind {
            Kind::Ipv4 => &[Family::Inet],
            Kind::Ipv6 => &[Family::Inet6],
            Kind::DualStack => &[Family::Inet, Family::Inet6],
            Kind::UnixStream | Kind::UnixSeqpacket => &[],
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(*k));
            assert_eq!(
                serde_json::to_string(k).unwrap(),
                format!("\"{}\"", k.name())
            );
        }
        assert_eq!(Kind::from_name("ipv5"), None);
    }
}
