//! TIME_WAIT: the side that closes first keeps the connection's ports for 2×MSL after the
//! last ACK, and what that does to bind() and connect() on the same ports, with and without
//! SO_REUSEADDR and `tcp_tw_reuse`. The TIME_WAIT socket has no descriptor: it is observed with
//! sock_diag, and its 60 s are never waited out.
//!
//! The BSDs differ, read from their source (not yet run there): XNU's TIME_WAIT lasts 2 × 15 s,
//! FreeBSD's 2 × 30 s but by default not at all on a loopback connection
//! (`net.inet.tcp.nolocaltimewait`), and on both the new socket's SO_REUSEADDR alone decides
//! whether it may bind over a TIME_WAIT pcb. The cases that test the bind rules against a
//! TIME_WAIT socket declare `nolocaltimewait = 0` on FreeBSD.
//!
//! Every close here is a four-segment close: the side that closes first waits until its FIN is
//! acknowledged (FIN_WAIT2) before the peer closes, so no stale ACK can reach the TIME_WAIT
//! socket and draw the RST that would end it (see `close_first`).

use crate::script::{accept_one, connect_to_server};
use harness::judge::Kernel;
use harness::observe::sock::{local_port, peer_port, try_connect, KERNEL_WAIT};
use harness::{any_ms, is, Case, Ctx, Expect, Facts, Need, Os, Side, Variant};
use socket2::Socket;
use std::time::{Duration, Instant};

/// TIME_WAIT lasts TCP_TIMEWAIT_LEN = 60 s on Linux (`include/net/tcp.h`), fixed at build time;
/// judged as time left right after the connection entered it, with room for a slow machine.
pub(crate) const TIME_WAIT_LEFT: harness::Matcher = any_ms(50_000, 60_000);
/// FreeBSD: 2 × net.inet.tcp.msl, TCPTV_MSL = 30 s (`sys/netinet/tcp_timer.h`), so 60 s. XNU's
/// is 2 × 15 s (TCPTV_MSL in `bsd/netinet/tcp_timer.h`), but XNU's PCB list gives no time left
/// (its timers count from clocks it does not export), so there only the timer's kind is judged.
pub(crate) const FREEBSD_TIME_WAIT_LEFT: harness::Matcher = any_ms(50_000, 60_000);
/// The timer a TIME_WAIT socket runs, as each OS's socket table names it: Linux's
/// `idiag_timer` 3, the BSDs' 2MSL timer (`tt_2msl`, `t_timer[TCPT_2MSL]`).
pub(crate) const LINUX_TIME_WAIT_TIMER: harness::Matcher = is("time_wait");
pub(crate) const BSD_TIME_WAIT_TIMER: harness::Matcher = is("2msl");

/// FreeBSD skips TIME_WAIT for a connection whose peer is a local address, loopback included,
/// unless this is 0 (`tcp_twstart()`: `if (V_nolocaltimewait && in_localip(inp->inp_faddr))
/// tcp_close(tp)`; default true). The cases about binding over a TIME_WAIT socket need one.
pub(crate) const FREEBSD_LOCAL_TIME_WAIT: Need =
    Need::HostSysctl(Os::Freebsd, "net.inet.tcp.nolocaltimewait", "0");

/// The switches of the reuseaddr matrix: SO_REUSEADDR on the old listener, on the new socket.
pub(crate) const OLD_REUSEADDR: &str = "old_reuseaddr";
pub(crate) const NEW_REUSEADDR: &str = "new_reuseaddr";

/// tw_reuse: the only ephemeral port left, and the server's fixed port outside that range.
const ONLY_EPHEMERAL_PORT: &str = "40000 40000";
const TW_REUSE_SERVER_PORT: u16 = 7000;
/// How long the tw_reuse client keeps retrying its second connect(): past the 1 s default of
/// `tcp_tw_reuse_delay`, far short of TIME_WAIT's 60 s.
const TW_REUSE_RETRY_FOR: Duration = Duration::from_secs(2);
/// When the retries succeed, counted from TIME_WAIT's start, since Linux 6.14 ("tcp: Make
/// TIME-WAIT reuse delay deterministic and configurable"): the default tcp_tw_reuse_delay of
/// 1000 ms after TIME_WAIT's entry, plus a retry's 20 ms.
const REUSE_DELAY_PASSED: harness::Matcher = any_ms(900, 1_800);
/// The same before 6.14: tcp_twsk_unique() compared seconds (`ktime_get_seconds()` after
/// `tw_ts_recent_stamp`), so reuse came at the next tick of the seconds clock, anywhere from 0
/// to 1000 ms after TIME_WAIT began. `make matrix` observed 628 to 904 ms on Debian's 6.1.0-56
/// and 6.12.117 (under qemu), 1007 to 1010 ms on 6.18.
const REUSE_ON_NEXT_SECOND: harness::Matcher = any_ms(0, 1_100);
/// Where tw_reuse's behaviour is written down, before and since 6.14.
const TW_REUSE_SOURCE: &str =
    "Linux net/ipv4/tcp_ipv4.c tcp_twsk_unique() (tw_entry_stamp + reuse delay; before 6.14 \
     tw_ts_recent_stamp in seconds, changed by \"tcp: Make TIME-WAIT reuse delay deterministic \
     and configurable\"), net/ipv4/inet_hashtables.c __inet_hash_connect()";
/// The kernels whose tcp_tw_reuse waits in milliseconds, and those that count seconds; 6.12 is
/// the newest observed that does not, 6.18 the oldest observed that does.
const TW_REUSE_DELAY_IN_MS: Kernel = Kernel::from(6, 14);
const TW_REUSE_DELAY_IN_SECONDS: Kernel = Kernel::before(6, 14);

/// The client of the cases where the server closes first: it reads EOF, closes, and records
/// that nothing of its side is left once its FIN is acknowledged.
pub(crate) const PASSIVE_CLOSER: Side = Side::new(passive_close_client);
const PASSIVE_CLOSER_LEAVES_NOTHING: Facts = Facts {
    client: &[
        ("read", is("EOF")),
        ("close", is("ok(0)")),
        ("client conn.state", is("none")),
        ("exit", is("exit 0")),
    ],
    ..Facts::NONE
};

pub static CASES: &[Case] = &[
    Case {
        id: "timewait.active_closer_holds_time_wait",
        doc: "The server closes first. After the client's FIN is acknowledged, the server's \
              side of the connection is in TIME_WAIT with nearly 60 s left on its timer, held \
              by no process (found with sock_diag). The client, which closed second, goes \
              through LAST_ACK to CLOSED and leaves no socket behind. Read from the BSDs' \
              source: XNU's TIME_WAIT lasts 30 s, and FreeBSD by default keeps none for a \
              connection to a local address (net.inet.tcp.nolocaltimewait), so there the \
              server's side is gone at once.",
        source: "RFC 9293 §3.6.1 (TIME-WAIT after the active close, 2×MSL)",
        needs: &[Need::SockDiag],
        server: Side::new(holds_time_wait_server),
        client: PASSIVE_CLOSER,
        expect: &[
            Expect::linux(
                "Linux net/ipv4/tcp_minisocks.c tcp_time_wait() with TCP_TIMEWAIT_LEN \
                 (60 s, include/net/tcp.h); inet_diag idiag_timer 3 (time-wait)",
                Facts {
                    server: &[
                        ("close", is("ok(0)")),
                        ("server conn.state", is("TIME_WAIT")),
                        ("server conn.timer", is("time_wait")),
                        ("server conn.left", TIME_WAIT_LEFT),
                        ("exit", is("exit 0")),
                    ],
                    ..PASSIVE_CLOSER_LEAVES_NOTHING
                },
            ),
            // Differs from Linux: 30 s, not 60 s (TCPTV_MSL is 15 s); not judged (no time left
            // in XNU's PCB list).
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_input.c tcp_input(): FIN in \
                 FIN_WAIT_2 -> TIME_WAIT, add_to_time_wait(tp, 2 * tcp_msl); \
                 bsd/netinet/tcp_timer.h TCPTV_MSL (15*TCP_RETRANSHZ, 15 s); \
                 bsd/netinet/in_pcblist.c get_pcblist_n() -> get_tcp_inp_list() also \
                 lists tcp_tw_tailq; the passive closer: tcp_input() LAST_ACK, \
                 `if (ourfinisacked) tp = tcp_close(tp)`",
                Facts {
                    server: &[
                        ("close", is("ok(0)")),
                        ("server conn.state", is("TIME_WAIT")),
                        ("server conn.timer", BSD_TIME_WAIT_TIMER),
                        ("exit", is("exit 0")),
                    ],
                    ..PASSIVE_CLOSER_LEAVES_NOTHING
                },
            ),
            // Differs from Linux: no TIME_WAIT at all on a loopback connection by default.
            // tcp_twstart(): `if (V_nolocaltimewait && ... in_localip(inp->inp_faddr)) {
            // if ((tp = tcp_close(tp)) != NULL) ...; return; }`, before
            // `tcp_timer_activate(tp, TT_2MSL, 2 * V_tcp_msl)`; nolocaltimewait defaults to
            // true. The cases below that need a TIME_WAIT socket set it to 0.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) \
                 sys/netinet/tcp_timewait.c tcp_twstart(): `if (V_nolocaltimewait && \
                 in_localip(inp->inp_faddr))` tcp_close() instead of the 2MSL timer \
                 (net.inet.tcp.nolocaltimewait, default true); the passive closer: \
                 sys/netinet/tcp_input.c tcp_do_segment() LAST_ACK, `if \
                 (ourfinisacked) tp = tcp_close(tp)`",
                Facts {
                    server: &[
                        ("close", is("ok(0)")),
                        ("server conn.state", is("none")),
                        ("exit", is("exit 0")),
                    ],
                    ..PASSIVE_CLOSER_LEAVES_NOTHING
                },
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "timewait.rebind_without_reuseaddr",
        doc: "The server closes first, so its side is in TIME_WAIT; then it closes its listener \
              too. A new socket without SO_REUSEADDR cannot bind the port: EADDRINUSE, although \
              no process holds the port any more. The TIME_WAIT socket does.",
        source: "POSIX setsockopt() SO_REUSEADDR (bind()'s address validation allows reuse of \
                 local addresses); UNP §7.5",
        needs: &[Need::SockDiag, FREEBSD_LOCAL_TIME_WAIT],
        server: Side::new(rebind_without_reuseaddr_server),
        client: PASSIVE_CLOSER,
        expect: &[
            Expect::linux(
                "socket(7) SO_REUSEADDR; Linux net/ipv4/inet_connection_sock.c \
                 inet_csk_get_port() -> inet_csk_bind_conflict(): a TIME_WAIT socket in \
                 the port's bind bucket conflicts unless both sides reuse",
                Facts {
                    server: &[
                        ("close", is("ok(0)")),
                        ("server conn.state", is("TIME_WAIT")),
                        ("server conn.timer", is("time_wait")),
                        ("server conn.left", TIME_WAIT_LEFT),
                        ("close(listener)", is("ok(0)")),
                        ("bind", is("EADDRINUSE")),
                        ("exit", is("exit 0")),
                    ],
                    ..PASSIVE_CLOSER_LEAVES_NOTHING
                },
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/in_pcb.c in_pcbbind(): without \
                 SO_REUSEADDR|SO_REUSEPORT `wild = 1`; in_pcblookup_local(..., wild) \
                 finds the TIME_WAIT pcb in the port hash (add_to_time_wait_locked() \
                 takes it off the pcb list only), and `(reuseport & \
                 t->inp_socket->so_options) == 0` -> EADDRINUSE; TIME_WAIT: \
                 add_to_time_wait(tp, 2 * tcp_msl), TCPTV_MSL 15 s",
                Facts {
                    server: &[
                        ("close", is("ok(0)")),
                        ("server conn.state", is("TIME_WAIT")),
                        ("server conn.timer", BSD_TIME_WAIT_TIMER),
                        ("close(listener)", is("ok(0)")),
                        ("bind", is("EADDRINUSE")),
                        ("exit", is("exit 0")),
                    ],
                    ..PASSIVE_CLOSER_LEAVES_NOTHING
                },
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/in_pcb.c \
                 in_pcbbind_setup(): without SO_REUSEADDR|SO_REUSEPORT|SO_REUSEPORT_LB \
                 `lookupflags = INPLOOKUP_WILDCARD`; in_pcblookup_local() finds the \
                 TIME_WAIT pcb on the port, and `(reuseport & \
                 t->inp_socket->so_options) == 0` -> EADDRINUSE; \
                 sys/netinet/tcp_timewait.c tcp_twstart(): 2 * V_tcp_msl (TCPTV_MSL \
                 30 s), with nolocaltimewait = 0",
                Facts {
                    server: &[
                        ("close", is("ok(0)")),
                        ("server conn.state", is("TIME_WAIT")),
                        ("server conn.timer", BSD_TIME_WAIT_TIMER),
                        ("server conn.left", FREEBSD_TIME_WAIT_LEFT),
                        ("close(listener)", is("ok(0)")),
                        ("bind", is("EADDRINUSE")),
                        ("exit", is("exit 0")),
                    ],
                    ..PASSIVE_CLOSER_LEAVES_NOTHING
                },
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "timewait.reuseaddr_matrix",
        doc: "SO_REUSEADDR on the old listener (set or unset) × on the new socket (set or \
              unset), each a fresh connection in a namespace of its own: the server closes first \
              (TIME_WAIT), closes its listener, and binds a new socket to the port. On Linux the \
              bind succeeds only when both had SO_REUSEADDR: the TIME_WAIT socket inherits the \
              accepted socket's sk_reuse (from the listener), and inet_csk_bind_conflict() \
              requires it on both. The BSDs differ (read from XNU's and FreeBSD's source, not \
              observed: there is no BSD machine here yet): with SO_REUSEADDR on the new socket, \
              in_pcbbind() (XNU) and in_pcbbind_setup() (FreeBSD) look the port up without \
              the wildcard flag, which finds only unconnected pcbs, never a TIME_WAIT one; so \
              there the new socket's option alone decides, and old_unset.new_set succeeds too.",
        source: "POSIX setsockopt() SO_REUSEADDR; UNP §7.5",
        needs: &[Need::SockDiag, FREEBSD_LOCAL_TIME_WAIT],
        server: Side::new(reuseaddr_matrix_server),
        client: PASSIVE_CLOSER,
        expect: &[
            Expect::linux(
                "socket(7) SO_REUSEADDR; Linux net/ipv4/inet_connection_sock.c \
                 inet_csk_bind_conflict() (sk->sk_reuse && sk2->sk_reuse && sk2 not \
                 LISTEN)",
                Facts {
                    server: &reuseaddr_matrix_server_facts(
                        LINUX_TIME_WAIT_TIMER,
                        TIME_WAIT_LEFT,
                        LINUX_REUSEADDR_BINDS,
                    ),
                    ..REUSEADDR_MATRIX_CLIENT
                },
            ),
            // Differs from Linux: old_unset.new_set binds. in_pcbbind(): `if
            // (!(so->so_options & (SO_REUSEADDR | SO_REUSEPORT))) wild = 1;`, and
            // in_pcblookup_local() without wild_okay only matches `inp->inp_faddr.s_addr ==
            // INADDR_ANY`; the old socket's options only count through `reuseport &
            // t->inp_socket->so_options`, which SO_REUSEADDR does not enter.
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/in_pcb.c in_pcbbind(): `wild = 1` only \
                 without SO_REUSEADDR|SO_REUSEPORT on the new socket; \
                 in_pcblookup_local() without wild_okay finds only pcbs with \
                 `inp_faddr.s_addr == INADDR_ANY`, never the connected TIME_WAIT one; \
                 a pcb found conflicts when `(reuseport & t->inp_socket->so_options) == \
                 0` (SO_REUSEPORT only)",
                Facts {
                    server: XNU_REUSEADDR_MATRIX_SERVER,
                    ..REUSEADDR_MATRIX_CLIENT
                },
            ),
            // Differs from Linux: old_unset.new_set binds. in_pcbbind_setup(): `if
            // ((so->so_options & (SO_REUSEADDR|SO_REUSEPORT|SO_REUSEPORT_LB)) == 0)
            // lookupflags = INPLOOKUP_WILDCARD;`, and in_pcblookup_local() without it only
            // matches `inp->inp_faddr.s_addr == INADDR_ANY`. The accepted socket does not even
            // inherit SO_REUSEADDR (solisten_clone() keeps SO_KEEPALIVE, SO_DONTROUTE,
            // SO_LINGER, SO_OOBINLINE, SO_NOSIGPIPE).
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/in_pcb.c \
                 in_pcbbind_setup(): `lookupflags = INPLOOKUP_WILDCARD` only without \
                 SO_REUSEADDR|SO_REUSEPORT|SO_REUSEPORT_LB on the new socket; \
                 in_pcblookup_local() without it finds only pcbs with `inp_faddr.s_addr \
                 == INADDR_ANY`; a pcb found conflicts when `(reuseport & \
                 t->inp_socket->so_options) == 0`; TIME_WAIT kept with \
                 nolocaltimewait = 0 (sys/netinet/tcp_timewait.c tcp_twstart())",
                Facts {
                    server: &reuseaddr_matrix_server_facts(
                        BSD_TIME_WAIT_TIMER,
                        FREEBSD_TIME_WAIT_LEFT,
                        BSD_REUSEADDR_BINDS,
                    ),
                    ..REUSEADDR_MATRIX_CLIENT
                },
            ),
        ],
        variants: &[
            Variant {
                name: "old_unset.new_unset",
                needs: &[],
                switches: &[],
            },
            Variant {
                name: "old_unset.new_set",
                needs: &[],
                switches: &[NEW_REUSEADDR],
            },
            Variant {
                name: "old_set.new_unset",
                needs: &[],
                switches: &[OLD_REUSEADDR],
            },
            Variant {
                name: "old_set.new_set",
                needs: &[],
                switches: &[OLD_REUSEADDR, NEW_REUSEADDR],
            },
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "timewait.rebind_while_listening",
        doc: "As the matrix's old_set.new_set, but the old listener stays open: SO_REUSEADDR on \
              both sockets does not let a second socket bind a port that a listener holds. \
              EADDRINUSE (SO_REUSEPORT would be needed for that).",
        source: "POSIX setsockopt() SO_REUSEADDR; UNP §7.5",
        needs: &[Need::SockDiag, FREEBSD_LOCAL_TIME_WAIT],
        server: Side::new(rebind_while_listening_server),
        client: PASSIVE_CLOSER,
        expect: &[
            Expect::linux(
                "socket(7) SO_REUSEADDR (\"unless there is an active listening socket \
                 bound to the address\"); Linux net/ipv4/inet_connection_sock.c \
                 inet_csk_bind_conflict(): sk2 in LISTEN always conflicts",
                Facts {
                    server: &rebind_while_listening_facts(LINUX_TIME_WAIT_TIMER, TIME_WAIT_LEFT),
                    ..PASSIVE_CLOSER_LEAVES_NOTHING
                },
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/in_pcb.c in_pcbbind(): with SO_REUSEADDR \
                 the exact in_pcblookup_local() finds the listener (`inp_faddr.s_addr \
                 == INADDR_ANY`, same address and port), and `(reuseport & \
                 t->inp_socket->so_options) == 0` without SO_REUSEPORT -> EADDRINUSE",
                Facts {
                    server: &[
                        ("close", is("ok(0)")),
                        ("server conn.state", is("TIME_WAIT")),
                        ("server conn.timer", BSD_TIME_WAIT_TIMER),
                        ("bind", is("EADDRINUSE")),
                        ("exit", is("exit 0")),
                    ],
                    ..PASSIVE_CLOSER_LEAVES_NOTHING
                },
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/in_pcb.c \
                 in_pcbbind_setup(): with SO_REUSEADDR the exact in_pcblookup_local() \
                 finds the listener (`inp_faddr.s_addr == INADDR_ANY`, same address \
                 and port), and `(reuseport & t->inp_socket->so_options) == 0` without \
                 SO_REUSEPORT -> EADDRINUSE; TIME_WAIT kept with nolocaltimewait = 0",
                Facts {
                    server: &rebind_while_listening_facts(
                        BSD_TIME_WAIT_TIMER,
                        FREEBSD_TIME_WAIT_LEFT,
                    ),
                    ..PASSIVE_CLOSER_LEAVES_NOTHING
                },
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "timewait.passive_closer_can_rebind",
        doc: "The client closes first, so TIME_WAIT is on the client's side. The server, which \
              closed second, leaves no socket behind once its FIN is acknowledged; with its \
              listener closed, a new socket without SO_REUSEADDR binds the port at once.",
        source: "RFC 9293 §3.6 (only the active closer enters TIME-WAIT; the passive closer \
                 goes LAST-ACK -> CLOSED)",
        needs: &[Need::SockDiag, FREEBSD_LOCAL_TIME_WAIT],
        server: Side::new(passive_closer_rebinds_server),
        client: Side::new(active_close_client),
        expect: &[
            Expect::linux(
                "Linux net/ipv4/tcp_input.c tcp_rcv_state_process() LAST_ACK -> \
                 tcp_done(); the client: tcp_time_wait() with TCP_TIMEWAIT_LEN (60 s)",
                Facts {
                    client: &active_closer_time_wait_facts(LINUX_TIME_WAIT_TIMER, TIME_WAIT_LEFT),
                    ..PASSIVE_CLOSER_REBINDS
                },
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_input.c tcp_input(): LAST_ACK, `if \
                 (ourfinisacked) tp = tcp_close(tp)`; bsd/netinet/in_pcb.c \
                 in_pcbbind() -> in_pcblookup_local_and_cleanup() disposes of a closed \
                 pcb still hashed on the port (WNT_STOPUSING, so_usecount 0) and finds \
                 none; the client: FIN in FIN_WAIT_2 -> add_to_time_wait(tp, 2 * \
                 tcp_msl), TCPTV_MSL 15 s",
                Facts {
                    client: &[
                        ("close", is("ok(0)")),
                        ("client conn.state", is("TIME_WAIT")),
                        ("client conn.timer", BSD_TIME_WAIT_TIMER),
                        ("exit", is("exit 0")),
                    ],
                    ..PASSIVE_CLOSER_REBINDS
                },
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_input.c \
                 tcp_do_segment(): LAST_ACK, `if (ourfinisacked) tp = tcp_close(tp)`; \
                 the client: FIN in FIN_WAIT_2 -> sys/netinet/tcp_timewait.c \
                 tcp_twstart(), 2 * V_tcp_msl (TCPTV_MSL 30 s), with nolocaltimewait = \
                 0",
                Facts {
                    client: &active_closer_time_wait_facts(
                        BSD_TIME_WAIT_TIMER,
                        FREEBSD_TIME_WAIT_LEFT,
                    ),
                    ..PASSIVE_CLOSER_REBINDS
                },
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "timewait.tw_reuse",
        doc: "With one ephemeral port (ip_local_port_range 40000 40000), the client connects, \
              closes first (TIME_WAIT on 40000 -> server) and connects again to the same server: \
              the only free pair is the TIME_WAIT one. With tcp_tw_reuse = 0 connect() fails with \
              EADDRNOTAVAIL, and keeps failing. With 1 (and with 2, the default: loopback only) \
              the TIME_WAIT pair may be reused, but only once tcp_tw_reuse_delay (1000 ms by \
              default) has passed since the last timestamp it saw: the immediate retry fails the \
              same way, and the retries succeed about 1 s after TIME_WAIT began. Before Linux \
              6.14 that delay was counted on a seconds clock: the retries succeed at its next \
              tick, 0 to 1 s after TIME_WAIT began (and the immediate retry would succeed if the \
              tick fell between TIME_WAIT and it, a chance of the few ms between the two in a \
              second). Timestamps are on (tcp_timestamps = 1), which reuse requires.",
        source: "ip-sysctl.rst tcp_tw_reuse, tcp_tw_reuse_delay",
        needs: &[
            Need::NotOn(
                Os::Macos,
                "tcp_tw_reuse is a Linux sysctl: XNU has no switch to reuse a TIME_WAIT pair \
                 for connect() (tcp_connect() reuses one only with T/TCP's TF_RCVD_CC, which \
                 nothing sets: else EADDRINUSE), nor a per-case ip_local_port_range",
            ),
            Need::NotOn(
                Os::Freebsd,
                "tcp_tw_reuse is a Linux sysctl: FreeBSD has no switch to reuse a TIME_WAIT \
                 pair for connect(), nor a per-case ip_local_port_range (its \
                 net.inet.ip.portrange.* are host-wide)",
            ),
            Need::SockDiag,
            Need::Sysctl("net/ipv4/ip_local_port_range", ONLY_EPHEMERAL_PORT),
            Need::Sysctl("net/ipv4/tcp_timestamps", "1"),
        ],
        server: Side::new(tw_reuse_server),
        client: Side::new(tw_reuse_client),
        expect: &[
            Expect::linux(
                TW_REUSE_SOURCE,
                Facts {
                    client: &tw_reuse_client_facts(REUSE_DELAY_PASSED),
                    ..TW_REUSE_SERVER
                },
            )
            .observed(&["linux 6.18", "linux 7.2"])
            .kernel(TW_REUSE_DELAY_IN_MS),
            Expect::linux(
                TW_REUSE_SOURCE,
                Facts {
                    client: &tw_reuse_client_facts(REUSE_ON_NEXT_SECOND),
                    ..TW_REUSE_SERVER
                },
            )
            .observed(&["linux 5.10", "linux 6.1", "linux 6.12"])
            .kernel(TW_REUSE_DELAY_IN_SECONDS),
        ],
        variants: &[
            Variant {
                name: "tw_reuse_0",
                needs: &[Need::Sysctl("net/ipv4/tcp_tw_reuse", "0")],
                switches: &[],
            },
            Variant {
                name: "tw_reuse_1",
                needs: &[Need::Sysctl("net/ipv4/tcp_tw_reuse", "1")],
                switches: &[],
            },
            Variant {
                name: "tw_reuse_2",
                needs: &[Need::Sysctl("net/ipv4/tcp_tw_reuse", "2")],
                switches: &[],
            },
        ],
        ..Case::DEFAULTS
    },
];

/// What bind() returns in the reuseaddr matrix's variants, in their order: old_unset.new_unset,
/// old_unset.new_set, old_set.new_unset, old_set.new_set.
const LINUX_REUSEADDR_BINDS: [&str; 4] = ["EADDRINUSE", "EADDRINUSE", "EADDRINUSE", "ok(0)"];
/// On the BSDs the new socket's SO_REUSEADDR alone decides.
const BSD_REUSEADDR_BINDS: [&str; 4] = ["EADDRINUSE", "ok(0)", "EADDRINUSE", "ok(0)"];

/// The reuseaddr matrix's server: each variant closes into TIME_WAIT (its timer `timer`, with
/// `left` on it), closes its listener, and binds with the outcome in `binds`.
const fn reuseaddr_matrix_server_facts(
    timer: harness::Matcher,
    left: harness::Matcher,
    binds: [&'static str; 4],
) -> [(&'static str, harness::Matcher); 28] {
    [
        ("old_unset.new_unset: close", is("ok(0)")),
        ("old_unset.new_unset: server conn.state", is("TIME_WAIT")),
        ("old_unset.new_unset: server conn.timer", timer),
        ("old_unset.new_unset: server conn.left", left),
        ("old_unset.new_unset: close(listener)", is("ok(0)")),
        ("old_unset.new_unset: bind", is(binds[0])),
        ("old_unset.new_unset: exit", is("exit 0")),
        ("old_unset.new_set: close", is("ok(0)")),
        ("old_unset.new_set: server conn.state", is("TIME_WAIT")),
        ("old_unset.new_set: server conn.timer", timer),
        ("old_unset.new_set: server conn.left", left),
        ("old_unset.new_set: close(listener)", is("ok(0)")),
        ("old_unset.new_set: bind", is(binds[1])),
        ("old_unset.new_set: exit", is("exit 0")),
        ("old_set.new_unset: close", is("ok(0)")),
        ("old_set.new_unset: server conn.state", is("TIME_WAIT")),
        ("old_set.new_unset: server conn.timer", timer),
        ("old_set.new_unset: server conn.left", left),
        ("old_set.new_unset: close(listener)", is("ok(0)")),
        ("old_set.new_unset: bind", is(binds[2])),
        ("old_set.new_unset: exit", is("exit 0")),
        ("old_set.new_set: close", is("ok(0)")),
        ("old_set.new_set: server conn.state", is("TIME_WAIT")),
        ("old_set.new_set: server conn.timer", timer),
        ("old_set.new_set: server conn.left", left),
        ("old_set.new_set: close(listener)", is("ok(0)")),
        ("old_set.new_set: bind", is(binds[3])),
        ("old_set.new_set: exit", is("exit 0")),
    ]
}

/// The reuseaddr matrix's server on macOS: as [`reuseaddr_matrix_server_facts`] with the BSD
/// binds, and no time left on the timer (XNU's PCB list does not give it).
const XNU_REUSEADDR_MATRIX_SERVER: &[(&str, harness::Matcher)] = &[
    ("old_unset.new_unset: close", is("ok(0)")),
    ("old_unset.new_unset: server conn.state", is("TIME_WAIT")),
    (
        "old_unset.new_unset: server conn.timer",
        BSD_TIME_WAIT_TIMER,
    ),
    ("old_unset.new_unset: close(listener)", is("ok(0)")),
    ("old_unset.new_unset: bind", is(BSD_REUSEADDR_BINDS[0])),
    ("old_unset.new_unset: exit", is("exit 0")),
    ("old_unset.new_set: close", is("ok(0)")),
    ("old_unset.new_set: server conn.state", is("TIME_WAIT")),
    ("old_unset.new_set: server conn.timer", BSD_TIME_WAIT_TIMER),
    ("old_unset.new_set: close(listener)", is("ok(0)")),
    ("old_unset.new_set: bind", is(BSD_REUSEADDR_BINDS[1])),
    ("old_unset.new_set: exit", is("exit 0")),
    ("old_set.new_unset: close", is("ok(0)")),
    ("old_set.new_unset: server conn.state", is("TIME_WAIT")),
    ("old_set.new_unset: server conn.timer", BSD_TIME_WAIT_TIMER),
    ("old_set.new_unset: close(listener)", is("ok(0)")),
    ("old_set.new_unset: bind", is(BSD_REUSEADDR_BINDS[2])),
    ("old_set.new_unset: exit", is("exit 0")),
    ("old_set.new_set: close", is("ok(0)")),
    ("old_set.new_set: server conn.state", is("TIME_WAIT")),
    ("old_set.new_set: server conn.timer", BSD_TIME_WAIT_TIMER),
    ("old_set.new_set: close(listener)", is("ok(0)")),
    ("old_set.new_set: bind", is(BSD_REUSEADDR_BINDS[3])),
    ("old_set.new_set: exit", is("exit 0")),
];

/// The reuseaddr matrix's client, the same on every OS.
const REUSEADDR_MATRIX_CLIENT: Facts = Facts {
    client: &[
        ("old_unset.new_unset: read", is("EOF")),
        ("old_unset.new_unset: close", is("ok(0)")),
        ("old_unset.new_unset: client conn.state", is("none")),
        ("old_unset.new_unset: exit", is("exit 0")),
        ("old_unset.new_set: read", is("EOF")),
        ("old_unset.new_set: close", is("ok(0)")),
        ("old_unset.new_set: client conn.state", is("none")),
        ("old_unset.new_set: exit", is("exit 0")),
        ("old_set.new_unset: read", is("EOF")),
        ("old_set.new_unset: close", is("ok(0)")),
        ("old_set.new_unset: client conn.state", is("none")),
        ("old_set.new_unset: exit", is("exit 0")),
        ("old_set.new_set: read", is("EOF")),
        ("old_set.new_set: close", is("ok(0)")),
        ("old_set.new_set: client conn.state", is("none")),
        ("old_set.new_set: exit", is("exit 0")),
    ],
    ..Facts::NONE
};

/// rebind_while_listening's server, with its TIME_WAIT timer `timer` and `left` on it.
const fn rebind_while_listening_facts(
    timer: harness::Matcher,
    left: harness::Matcher,
) -> [(&'static str, harness::Matcher); 6] {
    [
        ("close", is("ok(0)")),
        ("server conn.state", is("TIME_WAIT")),
        ("server conn.timer", timer),
        ("server conn.left", left),
        ("bind", is("EADDRINUSE")),
        ("exit", is("exit 0")),
    ]
}

/// passive_closer_can_rebind's server: nothing left once its FIN is acknowledged, so the port
/// is free.
const PASSIVE_CLOSER_REBINDS: Facts = Facts {
    server: &[
        ("read", is("EOF")),
        ("close", is("ok(0)")),
        ("server conn.state", is("none")),
        ("close(listener)", is("ok(0)")),
        ("bind", is("ok(0)")),
        ("exit", is("exit 0")),
    ],
    ..Facts::NONE
};

/// passive_closer_can_rebind's client, with its TIME_WAIT timer `timer` and `left` on it.
const fn active_closer_time_wait_facts(
    timer: harness::Matcher,
    left: harness::Matcher,
) -> [(&'static str, harness::Matcher); 5] {
    [
        ("close", is("ok(0)")),
        ("client conn.state", is("TIME_WAIT")),
        ("client conn.timer", timer),
        ("client conn.left", left),
        ("exit", is("exit 0")),
    ]
}

/// tw_reuse's server: each variant's connection ends the same way.
const TW_REUSE_SERVER: Facts = Facts {
    server: &[
        ("tw_reuse_0: read", is("EOF")),
        ("tw_reuse_0: close", is("ok(0)")),
        ("tw_reuse_0: exit", is("exit 0")),
        ("tw_reuse_1: read", is("EOF")),
        ("tw_reuse_1: close", is("ok(0)")),
        ("tw_reuse_1: exit", is("exit 0")),
        ("tw_reuse_2: read", is("EOF")),
        ("tw_reuse_2: close", is("ok(0)")),
        ("tw_reuse_2: exit", is("exit 0")),
    ],
    ..Facts::NONE
};

/// tw_reuse's client, with when the TIME_WAIT pair became reusable (which moved in 6.14).
const fn tw_reuse_client_facts(
    reuse_passed: harness::Matcher,
) -> [(&'static str, harness::Matcher); 27] {
    [
        ("tw_reuse_0: port#1", is("40000")),
        ("tw_reuse_0: close", is("ok(0)")),
        ("tw_reuse_0: conn#1.state", is("TIME_WAIT")),
        ("tw_reuse_0: conn#1.timer", is("time_wait")),
        ("tw_reuse_0: conn#1.left", TIME_WAIT_LEFT),
        ("tw_reuse_0: connect#2", is("EADDRNOTAVAIL")),
        ("tw_reuse_0: connect#2 retried", is("EADDRNOTAVAIL")),
        ("tw_reuse_0: connect#2 retried.ms", any_ms(2_000, 3_000)),
        ("tw_reuse_0: exit", is("exit 0")),
        ("tw_reuse_1: port#1", is("40000")),
        ("tw_reuse_1: close", is("ok(0)")),
        ("tw_reuse_1: conn#1.state", is("TIME_WAIT")),
        ("tw_reuse_1: conn#1.timer", is("time_wait")),
        ("tw_reuse_1: conn#1.left", TIME_WAIT_LEFT),
        ("tw_reuse_1: connect#2", is("EADDRNOTAVAIL")),
        ("tw_reuse_1: connect#2 retried", is("ok, port 40000")),
        ("tw_reuse_1: connect#2 retried.ms", reuse_passed),
        ("tw_reuse_1: exit", is("exit 0")),
        ("tw_reuse_2: port#1", is("40000")),
        ("tw_reuse_2: close", is("ok(0)")),
        ("tw_reuse_2: conn#1.state", is("TIME_WAIT")),
        ("tw_reuse_2: conn#1.timer", is("time_wait")),
        ("tw_reuse_2: conn#1.left", TIME_WAIT_LEFT),
        ("tw_reuse_2: connect#2", is("EADDRNOTAVAIL")),
        ("tw_reuse_2: connect#2 retried", is("ok, port 40000")),
        ("tw_reuse_2: connect#2 retried.ms", reuse_passed),
        ("tw_reuse_2: exit", is("exit 0")),
    ]
}

/// A socket with SO_REUSEADDR set or not (never left to a library's default).
pub(crate) fn socket_with_reuseaddr(ctx: &Ctx, on: bool) -> Socket {
    let sock = ctx.tcp_socket();
    sock.set_reuse_address(on)
        .expect("setsockopt(SO_REUSEADDR)");
    sock
}

/// Close first, then wait, unrecorded, until the peer's ACK of this FIN has been processed: the
/// orphaned socket from `local` to `remote` is in FIN_WAIT2. Only then may the peer close.
///
/// Why: the peer's kernel may acknowledge the FIN in a segment of its own (its delayed-ACK
/// timer), and loopback does not keep order across CPUs: traced under load, that pure ACK was
/// queued on one CPU's backlog by the timer's softirq, left there for ksoftirqd, and delivered
/// after the peer's FIN, which the peer's close() had sent from the other CPU in the meantime.
/// By then TIME_WAIT had begun and the peer's socket was gone: TIME_WAIT answered the stale
/// ACK with an ACK, the peer's kernel had no socket for it and answered RST (tcp:tcp_send_reset,
/// reason NO_SOCKET), and with tcp_rfc1337 = 0 that RST ends TIME_WAIT (RFC 1337's TIME-WAIT
/// assassination): sock_diag then found nothing. With both cores busy, 7 runs in 600 of the
/// timewait family lost a TIME_WAIT that way; none in 300 once the ACK is waited for.
fn close_first(ctx: &mut Ctx, conn: Socket, local: u16, remote: u16) {
    ctx.close("close", conn);
    ctx.await_sock(local, remote, Some("FIN_WAIT2"), KERNEL_WAIT);
}

/// Server: accept on a listener with SO_REUSEADDR `reuseaddr`, close first, and wait until its
/// side is in TIME_WAIT; records it. Returns the listener and its port. Barriers: `listening`,
/// `server closed`, `client closed`.
pub(crate) fn close_into_time_wait(ctx: &mut Ctx, reuseaddr: bool) -> (Socket, u16) {
    let (listener, port) = ctx.listen_with(socket_with_reuseaddr(ctx, reuseaddr), 8);
    ctx.sync_with("listening", port.into());
    let conn = ctx.accept(&listener);
    let client_port = peer_port(&conn);
    close_first(ctx, conn, port, client_port);
    ctx.sync("server closed");
    ctx.sync("client closed");
    ctx.await_sock(port, client_port, Some("TIME_WAIT"), KERNEL_WAIT);
    ctx.sock_diag("server conn", port, client_port);
    (listener, port)
}

/// Client: the server closes first; read its EOF, close, and record that nothing is left of
/// the client's side once its FIN is acknowledged.
fn passive_close_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    let (port, server_port) = (local_port(&conn), peer_port(&conn));
    ctx.sync("server closed");
    ctx.await_readable(&conn);
    ctx.read("read", &conn, 64);
    ctx.close("close", conn);
    ctx.sync("client closed");
    ctx.await_sock(port, server_port, None, KERNEL_WAIT);
    ctx.sock_diag("client conn", port, server_port);
}

fn holds_time_wait_server(ctx: &mut Ctx) {
    close_into_time_wait(ctx, false);
}

fn rebind_without_reuseaddr_server(ctx: &mut Ctx) {
    let (listener, port) = close_into_time_wait(ctx, false);
    ctx.close("close(listener)", listener);
    ctx.bind("bind", &ctx.tcp_socket(), port);
}

fn reuseaddr_matrix_server(ctx: &mut Ctx) {
    let (listener, port) = close_into_time_wait(ctx, ctx.variant_has(OLD_REUSEADDR));
    ctx.close("close(listener)", listener);
    let new = socket_with_reuseaddr(ctx, ctx.variant_has(NEW_REUSEADDR));
    ctx.bind("bind", &new, port);
}

fn rebind_while_listening_server(ctx: &mut Ctx) {
    let (_listener, port) = close_into_time_wait(ctx, true);
    ctx.bind("bind", &socket_with_reuseaddr(ctx, true), port);
}

/// Client: close first, and record its side in TIME_WAIT. Barriers: `listening`,
/// `client closed`, `server closed`.
fn active_close_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    let (port, server_port) = (local_port(&conn), peer_port(&conn));
    close_first(ctx, conn, port, server_port);
    ctx.sync("client closed");
    ctx.sync("server closed");
    ctx.await_sock(port, server_port, Some("TIME_WAIT"), KERNEL_WAIT);
    ctx.sock_diag("client conn", port, server_port);
}

fn passive_closer_rebinds_server(ctx: &mut Ctx) {
    let (listener, conn) = accept_one(ctx);
    let (port, client_port) = (local_port(&conn), peer_port(&conn));
    ctx.sync("client closed");
    ctx.await_readable(&conn);
    ctx.read("read", &conn, 64);
    ctx.close("close", conn);
    ctx.sync("server closed");
    ctx.await_sock(port, client_port, None, KERNEL_WAIT);
    ctx.sock_diag("server conn", port, client_port);
    ctx.close("close(listener)", listener);
    ctx.bind("bind", &ctx.tcp_socket(), port);
}

fn tw_reuse_server(ctx: &mut Ctx) {
    let (listener, _) = ctx.bind_and_listen(ctx.tcp_socket(), TW_REUSE_SERVER_PORT, 8);
    ctx.sync_with("listening", TW_REUSE_SERVER_PORT.into());
    let conn = ctx.accept(&listener);
    ctx.sync("client closed");
    ctx.await_readable(&conn);
    ctx.read("read", &conn, 64);
    ctx.close("close", conn);
    ctx.sync("server closed");
    // The listener stays open until the client has tried again; a second connection that
    // completes waits in its accept queue, unaccepted.
    ctx.sync("reconnected");
}

fn tw_reuse_client(ctx: &mut Ctx) {
    let server_port = ctx.sync_with("listening", 0) as u16;
    let conn = ctx.connect(server_port);
    let port = local_port(&conn);
    ctx.record("port#1", harness::Value::Count(port.into()));
    close_first(ctx, conn, port, server_port);
    ctx.sync("client closed");
    ctx.sync("server closed");
    ctx.await_sock(port, server_port, Some("TIME_WAIT"), KERNEL_WAIT);
    let in_time_wait = Instant::now();
    ctx.sock_diag("conn#1", port, server_port);
    ctx.begin("connect#2");
    let first = try_connect(ctx.kind(), server_port);
    record_connect(ctx, "connect#2", &first);
    if first.is_err() {
        // Retry, unrecorded, until it works or TW_REUSE_RETRY_FOR has passed; then record the
        // last outcome and when it came, counted from TIME_WAIT's start.
        ctx.begin("connect#2 retries");
        let last = loop {
            let attempt = try_connect(ctx.kind(), server_port);
            if attempt.is_ok() || in_time_wait.elapsed() >= TW_REUSE_RETRY_FOR {
                break attempt;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        record_connect(ctx, "connect#2 retried", &last);
        ctx.record(
            "connect#2 retried.ms",
            harness::Value::Millis(in_time_wait.elapsed().as_millis() as u64),
        );
    }
    ctx.sync("reconnected");
}

fn record_connect(ctx: &mut Ctx, name: &str, outcome: &Result<Socket, nix::errno::Errno>) {
    let value = match outcome {
        Ok(sock) => harness::Value::Text(format!("ok, port {}", local_port(sock))),
        Err(e) => harness::Value::errno(*e),
    };
    ctx.record(name, value);
}
