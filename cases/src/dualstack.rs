//! Dual stack: one AF_INET6 socket with IPV6_V6ONLY off serves IPv4 too, through v4-mapped
//! addresses (`::ffff:127.0.0.1`). What that does to bind()'s conflicts with IPv4 sockets on the
//! same port, a TIME_WAIT one included, and what an IPv4 peer looks like from such a socket.
//!
//! Every AF_INET6 socket here sets IPV6_V6ONLY explicitly, on or off: its default is a system
//! setting (Linux net.ipv6.bindv6only, 0 by default; FreeBSD net.inet6.ip6.v6only, 1 by default;
//! XNU's ip6_v6only, 0), and a case that left it alone would test the setting, not the socket.
//! The IPv4 sockets are AF_INET on 127.0.0.1 (the instance's kind, [`Kind::DualStack`], starts
//! from IPv4's loopback).
//!
//! The BSDs differ from Linux where SO_REUSEADDR is on the new socket: their bind looks the port
//! up without the wildcard flag then, which finds neither a connected (TIME_WAIT) pcb nor one
//! bound to another address, so the new socket's option alone decides, as in
//! timewait.reuseaddr_matrix. Linux's conflict test compares the two sockets' addresses with
//! the wildcard matching both ways and lets SO_REUSEADDR through only when both sockets have it
//! and the old one is not listening. FreeBSD's readings are confirmed by the matrix's FreeBSD
//! column (14.0-STABLE under qemu); macOS's are read in xnu-11417.121.6 and not yet run.

use crate::facts::CLIENT_CLOSES_FIRST_ORDERLY;
use crate::script::{connect_to_server, io_outcome};
use crate::timewait::{
    close_into_time_wait, socket_with_reuseaddr, BSD_TIME_WAIT_TIMER, FREEBSD_LOCAL_TIME_WAIT,
    FREEBSD_TIME_WAIT_LEFT, LINUX_TIME_WAIT_TIMER, NEW_REUSEADDR, OLD_REUSEADDR, PASSIVE_CLOSER,
    TIME_WAIT_LEFT,
};
use harness::observe::sock::local_port;
use harness::{is, Case, Ctx, Expect, Facts, Kind, Matcher, Need, Side, Value, Variant};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv6Addr, SocketAddr};

/// The switch that turns IPV6_V6ONLY on for the variant's AF_INET6 socket (off otherwise,
/// explicitly).
const V6ONLY: &str = "v6only";
/// The switch that sets SO_REUSEADDR on both sockets of v4_bind_under_v6_listener.
const REUSEADDR: &str = "reuseaddr";

pub static CASES: &[Case] = &[
    Case {
        id: "dualstack.v6_bind_over_v4_time_wait",
        doc: "An IPv4 connection on 127.0.0.1:P ends with the server closing first, so the \
              server's side is in TIME_WAIT on P; the server closes its listener too. Then an \
              AF_INET6 socket binds [::]:P, with IPV6_V6ONLY off (the wildcard covers \
              0.0.0.0:P too) and on (IPv6 only), and with SO_REUSEADDR on neither socket, on \
              the new one only, or on both. On Linux a dual-stack [::] conflicts with the \
              TIME_WAIT socket's 127.0.0.1 unless both sockets had SO_REUSEADDR, as two IPv4 \
              sockets would; with IPV6_V6ONLY on, [::] does not cover any IPv4 address and binds \
              whatever the options. On FreeBSD (and macOS, read from XNU's source) the new \
              socket's SO_REUSEADDR alone decides, as it does for IPv4 \
              (timewait.reuseaddr_matrix): v6only_off.reuseaddr_new binds there.",
        source: "RFC 3493 §5.3 (IPV6_V6ONLY); ipv6(7) IPV6_V6ONLY; socket(7) SO_REUSEADDR",
        needs: &[Need::SockDiag, FREEBSD_LOCAL_TIME_WAIT],
        server: Side::new(v6_bind_over_v4_time_wait_server),
        client: PASSIVE_CLOSER,
        expect: &[
            Expect::linux(
                "Linux net/ipv6/af_inet6.c __inet6_bind() -> inet_csk_get_port(); \
                 net/ipv4/inet_connection_sock.c inet_csk_bind_conflict(): the TIME_WAIT \
                 socket on the port's bind bucket conflicts unless `sk->sk_reuse && \
                 sk2->sk_reuse` (it inherited the listener's), when inet_rcv_saddr_equal() -> \
                 ipv6_rcv_saddr_equal() matches: [::] against an IPv4 socket (`addr_type2 = \
                 IPV6_ADDR_MAPPED`) matches `!(sk1_ipv6only && addr_type2 == \
                 IPV6_ADDR_MAPPED)`, that is only with IPV6_V6ONLY off. Since 6.1 the same \
                 test runs over the bhash2 table too (inet_bhash2_conflict()); the outcome is \
                 the same on every matrix kernel, 5.10 to 7.2",
                Facts {
                    server: &v6_bind_over_time_wait_server(
                        LINUX_TIME_WAIT_TIMER,
                        TIME_WAIT_LEFT,
                        V6_BINDS_WHERE_BOTH_REUSE,
                    ),
                    ..V6_BIND_OVER_TIME_WAIT
                },
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet6/in6_pcb.c in6_pcbbind(): `wild = 1` only \
                 without SO_REUSEADDR|SO_REUSEPORT on the new socket; with IPV6_V6ONLY off and \
                 the unspecified address it also looks up the IPv4 side, \
                 in_pcblookup_local(0.0.0.0, lport, wild), which with wild finds the \
                 TIME_WAIT pcb on 127.0.0.1 (still in the port hash) and without it only pcbs \
                 bound to 0.0.0.0 and unconnected; a pcb found conflicts when `(reuseport & \
                 t->inp_socket->so_options) == 0`; with IPV6_V6ONLY on only \
                 in6_pcblookup_local() is asked, which skips pcbs without INP_IPV6; the \
                 Skywalk netns_reserve_in() of 0.0.0.0 conflicts only with Skywalk flows \
                 (bsd/skywalk/namespace/netns.c _netns_reserve_common(), NETNS_BSD)",
                Facts {
                    server: XNU_V6_BIND_OVER_TIME_WAIT_SERVER,
                    ..V6_BIND_OVER_TIME_WAIT
                },
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet6/in6_pcb.c \
                 in6_pcbbind(): `lookupflags = INPLOOKUP_WILDCARD` only \
                 without SO_REUSEADDR|SO_REUSEPORT|SO_REUSEPORT_LB; with IN6P_IPV6_V6ONLY off \
                 and the unspecified address it also asks in_pcblookup_local() for \
                 0.0.0.0:lport, which with the wildcard flag finds the TIME_WAIT pcb on \
                 127.0.0.1 and without it only pcbs bound to 0.0.0.0 and unconnected; a pcb \
                 found conflicts when `(reuseport & t->inp_socket->so_options) == 0`; \
                 in6_pcblookup_local() skips pcbs without INP_IPV6; TIME_WAIT kept with \
                 nolocaltimewait = 0",
                Facts {
                    server: &v6_bind_over_time_wait_server(
                        BSD_TIME_WAIT_TIMER,
                        FREEBSD_TIME_WAIT_LEFT,
                        V6_BINDS_WHERE_NEW_REUSES,
                    ),
                    ..V6_BIND_OVER_TIME_WAIT
                },
            ),
        ],
        variants: &[
            Variant {
                name: "v6only_off.reuseaddr_neither",
                needs: &[],
                switches: &[],
            },
            Variant {
                name: "v6only_off.reuseaddr_new",
                needs: &[],
                switches: &[NEW_REUSEADDR],
            },
            Variant {
                name: "v6only_off.reuseaddr_both",
                needs: &[],
                switches: &[OLD_REUSEADDR, NEW_REUSEADDR],
            },
            Variant {
                name: "v6only_on.reuseaddr_neither",
                needs: &[],
                switches: &[V6ONLY],
            },
            Variant {
                name: "v6only_on.reuseaddr_new",
                needs: &[],
                switches: &[V6ONLY, NEW_REUSEADDR],
            },
            Variant {
                name: "v6only_on.reuseaddr_both",
                needs: &[],
                switches: &[V6ONLY, OLD_REUSEADDR, NEW_REUSEADDR],
            },
        ],
        kinds: &[Kind::DualStack],
        ..Case::DEFAULTS
    },
    Case {
        id: "dualstack.v4_bind_under_v6_listener",
        doc: "A listener on [::]:P, then a fresh AF_INET socket binds 127.0.0.1:P; with \
              IPV6_V6ONLY off and on, and with SO_REUSEADDR on both sockets or on neither. \
              With IPV6_V6ONLY off the listener holds 0.0.0.0:P too, and on Linux the bind \
              fails with EADDRINUSE even with SO_REUSEADDR on both (a listener always \
              conflicts); with it on, the listener holds no IPv4 address and the bind succeeds. \
              On FreeBSD (and macOS, read from XNU's source) SO_REUSEADDR lets the specific \
              address bind under the wildcard listener, as it does under an IPv4 wildcard \
              listener: v6only_off.reuseaddr_both binds there.",
        source: "RFC 3493 §5.3 (IPV6_V6ONLY); ipv6(7) IPV6_V6ONLY; socket(7) SO_REUSEADDR",
        server: Side::new(v4_bind_under_v6_listener_server),
        client: Side::new(idle_client),
        expect: &[
            Expect::linux(
                "Linux net/ipv4/af_inet.c __inet_bind() -> inet_csk_get_port(); \
                 net/ipv4/inet_connection_sock.c inet_csk_bind_conflict(): a LISTEN socket \
                 conflicts whatever SO_REUSEADDR says, when inet_rcv_saddr_equal() matches: an \
                 IPv4 address against an AF_INET6 [::] (ipv6_rcv_saddr_equal(), \
                 `addr_type2 == IPV6_ADDR_ANY && !(sk2_ipv6only && addr_type == \
                 IPV6_ADDR_MAPPED)`) matches only with IPV6_V6ONLY off. Since 6.1 \
                 inet_csk_get_port() also asks inet_bhash2_addr_any_conflict() for the \
                 wildcard buckets (0.0.0.0 and [::]); the outcome is the same on every matrix \
                 kernel, 5.10 to 7.2",
                Facts {
                    server: &v4_bind_under_v6_listener_server_facts(V4_BINDS_LINUX),
                    ..V4_BIND_UNDER_V6_LISTENER
                },
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/in_pcb.c in_pcbbind(): `wild = 1` only without \
                 SO_REUSEADDR|SO_REUSEPORT; in_pcblookup_local(127.0.0.1, lport, wild) \
                 matches the [::] listener (INP_IPV4 in inp_vflag, which \
                 bsd/netinet/tcp_usrreq.c tcp6_usr_bind() sets for the unspecified address \
                 unless IN6P_IPV6_V6ONLY) only as a wildcard, so only with wild; a pcb found conflicts when `(reuseport & \
                 t->inp_socket->so_options) == 0`",
                Facts {
                    server: &v4_bind_under_v6_listener_server_facts(V4_BINDS_BSD),
                    ..V4_BIND_UNDER_V6_LISTENER
                },
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/in_pcb.c \
                 in_pcbbind_setup(): `lookupflags = INPLOOKUP_WILDCARD` only without \
                 SO_REUSEADDR|SO_REUSEPORT|SO_REUSEPORT_LB; in_pcblookup_local(127.0.0.1, \
                 lport) matches the [::] listener (INP_IPV4 in inp_vflag, set by \
                 sys/netinet/tcp_usrreq.c tcp6_usr_bind() for the unspecified address unless \
                 IN6P_IPV6_V6ONLY) only as a wildcard; a pcb found conflicts when `(reuseport & t->inp_socket->so_options) == 0`",
                Facts {
                    server: &v4_bind_under_v6_listener_server_facts(V4_BINDS_BSD),
                    ..V4_BIND_UNDER_V6_LISTENER
                },
            ),
        ],
        variants: &[
            Variant {
                name: "v6only_off.reuseaddr_neither",
                needs: &[],
                switches: &[],
            },
            Variant {
                name: "v6only_off.reuseaddr_both",
                needs: &[],
                switches: &[REUSEADDR],
            },
            Variant {
                name: "v6only_on.reuseaddr_neither",
                needs: &[],
                switches: &[V6ONLY],
            },
            Variant {
                name: "v6only_on.reuseaddr_both",
                needs: &[],
                switches: &[V6ONLY, REUSEADDR],
            },
        ],
        kinds: &[Kind::DualStack],
        ..Case::DEFAULTS
    },
    Case {
        id: "dualstack.v4_client_on_v6_listener",
        doc: "An AF_INET client connects to 127.0.0.1:P, where an AF_INET6 listener on [::]:P \
              with IPV6_V6ONLY off accepts it. The accepted socket is AF_INET6: accept() and \
              getpeername() report the client as the v4-mapped address ::ffff:127.0.0.1, and \
              getsockname() its own address as ::ffff:127.0.0.1 too; the client sees plain \
              AF_INET 127.0.0.1. The segments on the wire are IPv4. The client closes, the \
              server reads EOF and closes: FIN both ways, each acknowledged.",
        source: "RFC 4291 §2.5.5.2 (IPv4-mapped IPv6 address); RFC 3493 §3.7 \
                 (interoperability with IPv4 applications); ipv6(7)",
        server: Side::new(v4_client_on_v6_listener_server),
        client: Side::new(v4_client_on_v6_listener_client),
        expect: &[
            Expect::linux(
                "Linux net/ipv6/tcp_ipv6.c tcp_v6_syn_recv_sock(): an skb of ETH_P_IP goes to \
                 tcp_v4_syn_recv_sock() and the child gets `ipv6_addr_set_v4mapped()` \
                 addresses and the mapped af_ops; net/ipv6/af_inet6.c inet6_getname() \
                 reports sk_v6_daddr / sk_v6_rcv_saddr as AF_INET6",
                V4_CLIENT_ON_V6_LISTENER,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_input.c tcp_input(): a SYN for an \
                 INP_IPV6 listener arriving over IPv4 makes the new pcb `inp_vflag &= \
                 ~INP_IPV6; inp_vflag |= INP_IPV4`; bsd/netinet/tcp_usrreq.c \
                 tcp6_usr_accept() -> in6_mapped_peeraddr(); bsd/netinet6/in6_pcb.c \
                 in6_mapped_peeraddr()/in6_mapped_sockaddr(): an INP_IPV4 pcb of an AF_INET6 \
                 socket is reported as in6_sin_2_v4mapsin6_in_sock(), ::ffff:a.b.c.d",
                V4_CLIENT_ON_V6_LISTENER,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_syncache.c \
                 syncache_socket(): for an IPv4 SYN on an INP_IPV6 listener, `inp->inp_vflag \
                 &= ~INP_IPV6; inp->inp_vflag |= INP_IPV4`; sys/netinet/tcp_usrreq.c \
                 tcp6_usr_accept() maps an INP_IPV4 peer (in6_v4mapsin6_sockaddr()); \
                 sys/netinet6/in6_pcb.c in6_mapped_peeraddr()/in6_mapped_sockaddr(): an \
                 INP_IPV4 pcb of an AF_INET6 socket is reported as in6_sin_2_v4mapsin6_in_sock(), \
                 ::ffff:a.b.c.d",
                V4_CLIENT_ON_V6_LISTENER,
            ),
        ],
        kinds: &[Kind::DualStack],
        ..Case::DEFAULTS
    },
];

/// The binds of [::] in v6_bind_over_v4_time_wait, in its variants' order (v6only_off:
/// neither, new, both; v6only_on: neither, new, both), where a dual-stack [::] conflicts with
/// the TIME_WAIT socket unless both sockets reuse (Linux).
const V6_BINDS_WHERE_BOTH_REUSE: [&str; 6] = [
    "EADDRINUSE",
    "EADDRINUSE",
    "ok(0)",
    "ok(0)",
    "ok(0)",
    "ok(0)",
];
/// The same where the new socket's SO_REUSEADDR alone decides (the BSDs).
const V6_BINDS_WHERE_NEW_REUSES: [&str; 6] =
    ["EADDRINUSE", "ok(0)", "ok(0)", "ok(0)", "ok(0)", "ok(0)"];

/// v6_bind_over_v4_time_wait: the client, the same on every OS.
const V6_BIND_OVER_TIME_WAIT: Facts = Facts {
    server: &[],
    client: &[
        ("v6only_off.reuseaddr_neither: read", is("EOF")),
        ("v6only_off.reuseaddr_neither: close", is("ok(0)")),
        (
            "v6only_off.reuseaddr_neither: client conn.state",
            is("none"),
        ),
        ("v6only_off.reuseaddr_neither: exit", is("exit 0")),
        ("v6only_off.reuseaddr_new: read", is("EOF")),
        ("v6only_off.reuseaddr_new: close", is("ok(0)")),
        ("v6only_off.reuseaddr_new: client conn.state", is("none")),
        ("v6only_off.reuseaddr_new: exit", is("exit 0")),
        ("v6only_off.reuseaddr_both: read", is("EOF")),
        ("v6only_off.reuseaddr_both: close", is("ok(0)")),
        ("v6only_off.reuseaddr_both: client conn.state", is("none")),
        ("v6only_off.reuseaddr_both: exit", is("exit 0")),
        ("v6only_on.reuseaddr_neither: read", is("EOF")),
        ("v6only_on.reuseaddr_neither: close", is("ok(0)")),
        ("v6only_on.reuseaddr_neither: client conn.state", is("none")),
        ("v6only_on.reuseaddr_neither: exit", is("exit 0")),
        ("v6only_on.reuseaddr_new: read", is("EOF")),
        ("v6only_on.reuseaddr_new: close", is("ok(0)")),
        ("v6only_on.reuseaddr_new: client conn.state", is("none")),
        ("v6only_on.reuseaddr_new: exit", is("exit 0")),
        ("v6only_on.reuseaddr_both: read", is("EOF")),
        ("v6only_on.reuseaddr_both: close", is("ok(0)")),
        ("v6only_on.reuseaddr_both: client conn.state", is("none")),
        ("v6only_on.reuseaddr_both: exit", is("exit 0")),
    ],
    wire: &[],
};

/// v6_bind_over_v4_time_wait's server: each variant closes into TIME_WAIT (its timer `timer`,
/// with `left` on it), closes its listener, and binds [::] with the outcome in `binds`.
const fn v6_bind_over_time_wait_server(
    timer: Matcher,
    left: Matcher,
    binds: [&'static str; 6],
) -> [(&'static str, Matcher); 42] {
    [
        ("v6only_off.reuseaddr_neither: close", is("ok(0)")),
        (
            "v6only_off.reuseaddr_neither: server conn.state",
            is("TIME_WAIT"),
        ),
        ("v6only_off.reuseaddr_neither: server conn.timer", timer),
        ("v6only_off.reuseaddr_neither: server conn.left", left),
        ("v6only_off.reuseaddr_neither: close(listener)", is("ok(0)")),
        ("v6only_off.reuseaddr_neither: bind([::])", is(binds[0])),
        ("v6only_off.reuseaddr_neither: exit", is("exit 0")),
        ("v6only_off.reuseaddr_new: close", is("ok(0)")),
        (
            "v6only_off.reuseaddr_new: server conn.state",
            is("TIME_WAIT"),
        ),
        ("v6only_off.reuseaddr_new: server conn.timer", timer),
        ("v6only_off.reuseaddr_new: server conn.left", left),
        ("v6only_off.reuseaddr_new: close(listener)", is("ok(0)")),
        ("v6only_off.reuseaddr_new: bind([::])", is(binds[1])),
        ("v6only_off.reuseaddr_new: exit", is("exit 0")),
        ("v6only_off.reuseaddr_both: close", is("ok(0)")),
        (
            "v6only_off.reuseaddr_both: server conn.state",
            is("TIME_WAIT"),
        ),
        ("v6only_off.reuseaddr_both: server conn.timer", timer),
        ("v6only_off.reuseaddr_both: server conn.left", left),
        ("v6only_off.reuseaddr_both: close(listener)", is("ok(0)")),
        ("v6only_off.reuseaddr_both: bind([::])", is(binds[2])),
        ("v6only_off.reuseaddr_both: exit", is("exit 0")),
        ("v6only_on.reuseaddr_neither: close", is("ok(0)")),
        (
            "v6only_on.reuseaddr_neither: server conn.state",
            is("TIME_WAIT"),
        ),
        ("v6only_on.reuseaddr_neither: server conn.timer", timer),
        ("v6only_on.reuseaddr_neither: server conn.left", left),
        ("v6only_on.reuseaddr_neither: close(listener)", is("ok(0)")),
        ("v6only_on.reuseaddr_neither: bind([::])", is(binds[3])),
        ("v6only_on.reuseaddr_neither: exit", is("exit 0")),
        ("v6only_on.reuseaddr_new: close", is("ok(0)")),
        (
            "v6only_on.reuseaddr_new: server conn.state",
            is("TIME_WAIT"),
        ),
        ("v6only_on.reuseaddr_new: server conn.timer", timer),
        ("v6only_on.reuseaddr_new: server conn.left", left),
        ("v6only_on.reuseaddr_new: close(listener)", is("ok(0)")),
        ("v6only_on.reuseaddr_new: bind([::])", is(binds[4])),
        ("v6only_on.reuseaddr_new: exit", is("exit 0")),
        ("v6only_on.reuseaddr_both: close", is("ok(0)")),
        (
            "v6only_on.reuseaddr_both: server conn.state",
            is("TIME_WAIT"),
        ),
        ("v6only_on.reuseaddr_both: server conn.timer", timer),
        ("v6only_on.reuseaddr_both: server conn.left", left),
        ("v6only_on.reuseaddr_both: close(listener)", is("ok(0)")),
        ("v6only_on.reuseaddr_both: bind([::])", is(binds[5])),
        ("v6only_on.reuseaddr_both: exit", is("exit 0")),
    ]
}

/// v6_bind_over_v4_time_wait's server on macOS: the BSD binds, and no time left on the timer
/// (XNU's PCB list does not give it).
const XNU_V6_BIND_OVER_TIME_WAIT_SERVER: &[(&str, Matcher)] = &[
    ("v6only_off.reuseaddr_neither: close", is("ok(0)")),
    (
        "v6only_off.reuseaddr_neither: server conn.state",
        is("TIME_WAIT"),
    ),
    (
        "v6only_off.reuseaddr_neither: server conn.timer",
        BSD_TIME_WAIT_TIMER,
    ),
    ("v6only_off.reuseaddr_neither: close(listener)", is("ok(0)")),
    (
        "v6only_off.reuseaddr_neither: bind([::])",
        is(V6_BINDS_WHERE_NEW_REUSES[0]),
    ),
    ("v6only_off.reuseaddr_neither: exit", is("exit 0")),
    ("v6only_off.reuseaddr_new: close", is("ok(0)")),
    (
        "v6only_off.reuseaddr_new: server conn.state",
        is("TIME_WAIT"),
    ),
    (
        "v6only_off.reuseaddr_new: server conn.timer",
        BSD_TIME_WAIT_TIMER,
    ),
    ("v6only_off.reuseaddr_new: close(listener)", is("ok(0)")),
    (
        "v6only_off.reuseaddr_new: bind([::])",
        is(V6_BINDS_WHERE_NEW_REUSES[1]),
    ),
    ("v6only_off.reuseaddr_new: exit", is("exit 0")),
    ("v6only_off.reuseaddr_both: close", is("ok(0)")),
    (
        "v6only_off.reuseaddr_both: server conn.state",
        is("TIME_WAIT"),
    ),
    (
        "v6only_off.reuseaddr_both: server conn.timer",
        BSD_TIME_WAIT_TIMER,
    ),
    ("v6only_off.reuseaddr_both: close(listener)", is("ok(0)")),
    (
        "v6only_off.reuseaddr_both: bind([::])",
        is(V6_BINDS_WHERE_NEW_REUSES[2]),
    ),
    ("v6only_off.reuseaddr_both: exit", is("exit 0")),
    ("v6only_on.reuseaddr_neither: close", is("ok(0)")),
    (
        "v6only_on.reuseaddr_neither: server conn.state",
        is("TIME_WAIT"),
    ),
    (
        "v6only_on.reuseaddr_neither: server conn.timer",
        BSD_TIME_WAIT_TIMER,
    ),
    ("v6only_on.reuseaddr_neither: close(listener)", is("ok(0)")),
    (
        "v6only_on.reuseaddr_neither: bind([::])",
        is(V6_BINDS_WHERE_NEW_REUSES[3]),
    ),
    ("v6only_on.reuseaddr_neither: exit", is("exit 0")),
    ("v6only_on.reuseaddr_new: close", is("ok(0)")),
    (
        "v6only_on.reuseaddr_new: server conn.state",
        is("TIME_WAIT"),
    ),
    (
        "v6only_on.reuseaddr_new: server conn.timer",
        BSD_TIME_WAIT_TIMER,
    ),
    ("v6only_on.reuseaddr_new: close(listener)", is("ok(0)")),
    (
        "v6only_on.reuseaddr_new: bind([::])",
        is(V6_BINDS_WHERE_NEW_REUSES[4]),
    ),
    ("v6only_on.reuseaddr_new: exit", is("exit 0")),
    ("v6only_on.reuseaddr_both: close", is("ok(0)")),
    (
        "v6only_on.reuseaddr_both: server conn.state",
        is("TIME_WAIT"),
    ),
    (
        "v6only_on.reuseaddr_both: server conn.timer",
        BSD_TIME_WAIT_TIMER,
    ),
    ("v6only_on.reuseaddr_both: close(listener)", is("ok(0)")),
    (
        "v6only_on.reuseaddr_both: bind([::])",
        is(V6_BINDS_WHERE_NEW_REUSES[5]),
    ),
    ("v6only_on.reuseaddr_both: exit", is("exit 0")),
];

/// The binds of 127.0.0.1 in v4_bind_under_v6_listener, in its variants' order (v6only_off:
/// neither, both; v6only_on: neither, both). Linux: the dual-stack listener conflicts whatever
/// SO_REUSEADDR says.
const V4_BINDS_LINUX: [&str; 4] = ["EADDRINUSE", "EADDRINUSE", "ok(0)", "ok(0)"];
/// The BSDs: SO_REUSEADDR lets a specific address bind under the wildcard listener.
const V4_BINDS_BSD: [&str; 4] = ["EADDRINUSE", "ok(0)", "ok(0)", "ok(0)"];

/// v4_bind_under_v6_listener: the client does nothing, the same on every OS.
const V4_BIND_UNDER_V6_LISTENER: Facts = Facts {
    server: &[],
    client: &[
        ("v6only_off.reuseaddr_neither: exit", is("exit 0")),
        ("v6only_off.reuseaddr_both: exit", is("exit 0")),
        ("v6only_on.reuseaddr_neither: exit", is("exit 0")),
        ("v6only_on.reuseaddr_both: exit", is("exit 0")),
    ],
    wire: &[],
};

/// v4_bind_under_v6_listener's server, with the outcome of each variant's bind in `binds`.
const fn v4_bind_under_v6_listener_server_facts(
    binds: [&'static str; 4],
) -> [(&'static str, Matcher); 8] {
    [
        (
            "v6only_off.reuseaddr_neither: bind(127.0.0.1)",
            is(binds[0]),
        ),
        ("v6only_off.reuseaddr_neither: exit", is("exit 0")),
        ("v6only_off.reuseaddr_both: bind(127.0.0.1)", is(binds[1])),
        ("v6only_off.reuseaddr_both: exit", is("exit 0")),
        ("v6only_on.reuseaddr_neither: bind(127.0.0.1)", is(binds[2])),
        ("v6only_on.reuseaddr_neither: exit", is("exit 0")),
        ("v6only_on.reuseaddr_both: bind(127.0.0.1)", is(binds[3])),
        ("v6only_on.reuseaddr_both: exit", is("exit 0")),
    ]
}

/// v4_client_on_v6_listener: the addresses each end reports, and an orderly close both ways.
const V4_CLIENT_ON_V6_LISTENER: Facts = Facts {
    server: &[
        ("accept.family", is("AF_INET6")),
        ("accept.addr", is("::ffff:127.0.0.1")),
        ("getpeername.family", is("AF_INET6")),
        ("getpeername.addr", is("::ffff:127.0.0.1")),
        ("getsockname.family", is("AF_INET6")),
        ("getsockname.addr", is("::ffff:127.0.0.1")),
        ("read", is("EOF")),
        ("close", is("ok(0)")),
        ("exit", is("exit 0")),
    ],
    client: &[
        ("getsockname.family", is("AF_INET")),
        ("getsockname.addr", is("127.0.0.1")),
        ("getpeername.family", is("AF_INET")),
        ("getpeername.addr", is("127.0.0.1")),
        ("close", is("ok(0)")),
        ("exit", is("exit 0")),
    ],
    wire: CLIENT_CLOSES_FIRST_ORDERLY,
};

/// A fresh AF_INET6 TCP socket with IPV6_V6ONLY and SO_REUSEADDR set as given: both always set
/// explicitly, never left to the system's default.
fn v6_socket(v6only: bool, reuseaddr: bool) -> Socket {
    let sock = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))
        .expect("socket(AF_INET6, SOCK_STREAM)");
    sock.set_only_v6(v6only).expect("setsockopt(IPV6_V6ONLY)");
    sock.set_reuse_address(reuseaddr)
        .expect("setsockopt(SO_REUSEADDR)");
    sock
}

/// [::]:`port`.
fn v6_any(port: u16) -> SockAddr {
    SockAddr::from(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
}

/// bind() `sock` to [::]:`port`, the behaviour under test; records `ok(0)` or the errno.
fn bind_v6_any(ctx: &mut Ctx, name: &str, sock: &Socket, port: u16) -> Value {
    ctx.begin(name);
    let value = io_outcome(sock.bind(&v6_any(port)));
    ctx.record(name, value.clone());
    value
}

/// Bind `sock` to [::]:0 and listen: a setup step, not under test. Returns the port.
fn listen_on_v6_any(ctx: &mut Ctx, sock: &Socket) -> u16 {
    sock.bind(&v6_any(0)).expect("bind([::]:0)");
    sock.listen(8).expect("listen");
    let port = local_port(sock);
    ctx.claim_port(port);
    port
}

/// Record an address as two facts: `name.family` (`AF_INET`, `AF_INET6`) and `name.addr` (the
/// IP address as text, `::ffff:127.0.0.1`; the port is left out, the kernel chose it).
fn record_addr(ctx: &mut Ctx, name: &str, addr: io::Result<SockAddr>) {
    let (family, ip) = match addr {
        Ok(addr) => match addr.as_socket() {
            Some(SocketAddr::V4(a)) => ("AF_INET".to_string(), a.ip().to_string()),
            Some(SocketAddr::V6(a)) => ("AF_INET6".to_string(), a.ip().to_string()),
            None => (format!("family {}", addr.family()), "-".to_string()),
        },
        Err(e) => {
            let errno = io_outcome(Err(e)).to_string();
            (errno.clone(), errno)
        }
    };
    ctx.record(&format!("{name}.family"), Value::Text(family));
    ctx.record(&format!("{name}.addr"), Value::Text(ip));
}

fn v6_bind_over_v4_time_wait_server(ctx: &mut Ctx) {
    let (listener, port) = close_into_time_wait(ctx, ctx.variant_has(OLD_REUSEADDR));
    ctx.close("close(listener)", listener);
    let new = v6_socket(ctx.variant_has(V6ONLY), ctx.variant_has(NEW_REUSEADDR));
    bind_v6_any(ctx, "bind([::])", &new, port);
}

fn v4_bind_under_v6_listener_server(ctx: &mut Ctx) {
    let reuseaddr = ctx.variant_has(REUSEADDR);
    let listener = v6_socket(ctx.variant_has(V6ONLY), reuseaddr);
    let port = listen_on_v6_any(ctx, &listener);
    // An AF_INET socket: this instance's kind starts from IPv4's 127.0.0.1.
    ctx.bind(
        "bind(127.0.0.1)",
        &socket_with_reuseaddr(ctx, reuseaddr),
        port,
    );
}

/// The client of a case whose experiment is all on the server's side.
fn idle_client(_ctx: &mut Ctx) {}

fn v4_client_on_v6_listener_server(ctx: &mut Ctx) {
    let listener = v6_socket(false, false);
    let port = listen_on_v6_any(ctx, &listener);
    ctx.sync_with("listening", port.into());
    ctx.begin("accept");
    let (conn, peer) = listener.accept().expect("accept");
    record_addr(ctx, "accept", Ok(peer));
    record_addr(ctx, "getpeername", conn.peer_addr());
    record_addr(ctx, "getsockname", conn.local_addr());
    ctx.read("read", &conn, 64);
    ctx.close("close", conn);
}

fn v4_client_on_v6_listener_client(ctx: &mut Ctx) {
    // AF_INET to 127.0.0.1: this instance's kind starts from IPv4.
    let conn = connect_to_server(ctx);
    record_addr(ctx, "getsockname", conn.local_addr());
    record_addr(ctx, "getpeername", conn.peer_addr());
    ctx.close("close", conn);
}
