//! FIN_WAIT_2: the active closer's FIN is acknowledged, and it waits for the peer's FIN. An
//! orphaned socket (closed by its process) waits only `tcp_fin_timeout`; a socket still held
//! (after shutdown(SHUT_WR)) waits as long as it is held. Both observed with sock_diag, with
//! `tcp_fin_timeout` set to 2 s in the case's namespace.
//!
//! The BSDs have the same split, read from their source (not yet run there), each with its own
//! sysctls, set to 2 s too: XNU's `net.inet.tcp.fin_timeout` (60 s by default), and FreeBSD's
//! `net.inet.tcp.finwait2_timeout`, which applies only with `net.inet.tcp.fast_finwait2_recycle`
//! (off by default: an orphan then waits TP_MAXIDLE, keepcnt × keepintvl = 8 × 75 s).

use crate::facts::CLOSE_EXIT;
use crate::script::{accept_one, connect_to_server};
use harness::observe::sock::{local_port, peer_port, KERNEL_WAIT};
use harness::{any_ms, is, Case, Ctx, Expect, Facts, Need, Os, Side, Value};
use nix::sys::socket::Shutdown;
use std::time::Duration;

/// `tcp_fin_timeout` in the case's namespace, in seconds.
const FIN_TIMEOUT: &str = "2";

/// What both cases need: the socket table (sock_diag on Linux), and the same 2 s fin timeout
/// on each OS: Linux's in the case's namespace, the BSDs' host-wide (in milliseconds: XNU's
/// sysctl_tcp_fin_timeout() converts from ms, FreeBSD's is a sysctl_msec_to_ticks).
const SOCK_TABLE_AND_FIN_TIMEOUT_2S: &[Need] = &[
    Need::SockDiag,
    Need::Sysctl("net/ipv4/tcp_fin_timeout", FIN_TIMEOUT),
    Need::HostSysctl(Os::Macos, "net.inet.tcp.fin_timeout", "2000"),
    Need::HostSysctl(Os::Freebsd, "net.inet.tcp.fast_finwait2_recycle", "1"),
    Need::HostSysctl(Os::Freebsd, "net.inet.tcp.finwait2_timeout", "2000"),
];
/// How long the cases watch: past the 2 s fin timeout, with room for a loaded machine.
const WATCH_FOR: Duration = Duration::from_secs(4);
/// FreeBSD's keepalive timer on a connection a few seconds old: TCPTV_KEEP_IDLE, 2 h (the
/// default of net.inet.tcp.keepidle), less the seconds since it was armed.
const FREEBSD_KEEPIDLE_LEFT: harness::Matcher = any_ms(7_100_000, 7_200_000);
/// A step watches for WATCH_FOR, then acts: this covers both.
const STEP_DEADLINE: Duration = Duration::from_secs(10);

pub static CASES: &[Case] = &[
    Case {
        id: "finwait2.orphan_timeout",
        doc: "tcp_fin_timeout is 2 s. The client close()s; the server reads EOF but never closes \
              (CLOSE_WAIT), so the client's orphaned socket sits in FIN_WAIT_2. Linux keeps it as \
              a time-wait socket whose substate is FIN_WAIT_2: sock_diag shows state FIN_WAIT2 \
              on the TIME_WAIT timer, with about 2 s left, and then no socket at all about 2 s \
              after the close. The server's next write still succeeds (it is queued and sent); \
              the segment finds no socket and is answered with RST, so the write after it fails \
              with EPIPE (RST in CLOSE_WAIT; SIGPIPE ignored). Read from XNU's source: there \
              the timeout drops the orphan with tcp_drop(), which sends RST itself, so the \
              server's connection is reset before its first write, and both writes fail with \
              EPIPE.",
        source: "RFC 9293 §3.6 (FIN-WAIT-2 waits for the remote FIN; the RFC sets no time \
                 limit, each stack adds its own for orphans)",
        needs: SOCK_TABLE_AND_FIN_TIMEOUT_2S,
        server: Side::new(orphan_timeout_server),
        client: Side::new(orphan_timeout_client),
        expect: &[
            Expect::linux(
                "ip-sysctl.rst tcp_fin_timeout; Linux net/ipv4/tcp.c __tcp_close(): \
                 FIN_WAIT2 with tcp_fin_time() <= TCP_TIMEWAIT_LEN -> tcp_time_wait(sk, \
                 TCP_FIN_WAIT2, tmo); inet_twsk_diag_fill() reports tw_substate; \
                 net/ipv4/tcp_input.c tcp_reset(): CLOSE_WAIT -> EPIPE",
                Facts {
                    server: &orphan_timeout_server_facts(is("time_wait"), "ok(5)"),
                    ..ORPHAN_CLIENT_CLOSES
                },
            ),
            // Differs from Linux: write#1 fails. The fin timeout ends the orphan with
            // tcp_timers() TCPT_2MSL: `if (tp->t_state == TCPS_FIN_WAIT_2) { ... tp =
            // tcp_drop(tp, 0); }`, and tcp_drop(): `if (TCPS_HAVERCVDSYN(tp->t_state)) {
            // tp->t_state = TCPS_CLOSED; (void) tcp_output(tp); }` sends tcp_outflags[CLOSED]
            // = TH_RST|TH_ACK. The server, in CLOSE_WAIT, takes it (`so->so_error =
            // ECONNRESET; ... tcp_close(tp)`), and sosendcheck() returns EPIPE for
            // SS_CANTSENDMORE before it looks at so_error.
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_input.c tcp_input(): FIN_WAIT_1 -> \
                 FIN_WAIT_2 with SS_CANTRCVMORE -> tcp_set_finwait_timeout(): \
                 t_timer[TCPT_2MSL] = tcp_fin_timeout (net.inet.tcp.fin_timeout); \
                 bsd/netinet/tcp_timer.c tcp_timers() TCPT_2MSL: FIN_WAIT_2 -> \
                 tcp_drop(tp, 0); bsd/netinet/tcp_subr.c tcp_drop(): tcp_output() in \
                 CLOSED sends RST; the server's CLOSE_WAIT takes it (ECONNRESET, \
                 tcp_close()); bsd/kern/uipc_socket.c sosendcheck(): SS_CANTSENDMORE \
                 -> EPIPE",
                Facts {
                    server: &[
                        ("read", is("EOF")),
                        ("client conn.state", is("FIN_WAIT2")),
                        ("client conn.timer", is("2msl")),
                        ("client conn later.state", is("none")),
                        ("client conn gone.ms", any_ms(1_500, 3_000)),
                        ("write#1", is("EPIPE")),
                        ("write#2", is("EPIPE")),
                        ("exit", is("exit 0")),
                    ],
                    ..ORPHAN_CLIENT_CLOSES
                },
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_input.c \
                 tcp_do_segment(): FIN_WAIT_1 -> FIN_WAIT_2 with SBS_CANTRCVMORE -> \
                 TT_2MSL = tcp_fast_finwait2_recycle ? tcp_finwait2_timeout : \
                 TP_MAXIDLE(tp); sys/netinet/tcp_timer.c tcp_timer_2msl(): FIN_WAIT_2 \
                 && tcp_fast_finwait2_recycle -> tcp_close() (no RST); the server's \
                 write draws RST from tcp_dropwithreset(), CLOSE_WAIT takes it \
                 (ECONNRESET, tcp_close()); sys/kern/uipc_socket.c sosend_generic(): \
                 SBS_CANTSENDMORE -> EPIPE",
                Facts {
                    server: &orphan_timeout_server_facts(is("2msl"), "ok(5)"),
                    ..ORPHAN_CLIENT_CLOSES
                },
            ),
        ],
        step_deadline: STEP_DEADLINE,
        ..Case::DEFAULTS
    },
    Case {
        id: "finwait2.held_socket_stays",
        doc: "tcp_fin_timeout is 2 s. The client shutdown(SHUT_WR)s and keeps its descriptor. Its \
              socket enters FIN_WAIT_2 and stays there past the timeout, with no timer: the fin \
              timeout applies only to orphans. The half-open connection still carries data from \
              the server to the client, and the server's close() ends it with EOF. The BSDs' \
              timeouts, set to 2 s too, likewise apply only to a socket that can receive no \
              more (read from their source).",
        source: "RFC 9293 §3.6 (a half-closed connection goes on carrying data the other way); \
                 POSIX shutdown()",
        needs: SOCK_TABLE_AND_FIN_TIMEOUT_2S,
        server: Side::new(held_socket_server),
        client: Side::new(held_socket_client),
        expect: &[
            Expect::linux(
                "ip-sysctl.rst tcp_fin_timeout (\"orphaned (not referenced by any \
                 application) connection\"); Linux net/ipv4/tcp_input.c \
                 tcp_rcv_state_process() FIN_WAIT1: a socket that is not SOCK_DEAD only \
                 moves to FIN_WAIT2",
                Facts {
                    client: HELD_CLIENT,
                    ..HELD_SERVER_WRITES
                },
            ),
            // The BSDs arm a keepalive timer on every established connection, SO_KEEPALIVE or
            // not (it sends probes only with SO_KEEPALIVE), and the socket table reports it
            // when no 2MSL timer runs.
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_input.c tcp_input(): FIN_WAIT_1 -> \
                 FIN_WAIT_2 calls tcp_set_finwait_timeout() only `if (so->so_state & \
                 SS_CANTRCVMORE)`, which shutdown(SHUT_WR) does not set; \
                 bsd/netinet/tcp_usrreq.c tcp_usrclosed() arms it only for a \
                 socket already in FIN_WAIT_2; the keepalive timer: tcp_input() \
                 arms t_timer[TCPT_KEEP] on ESTABLISHED, tcp_timers() TCPT_KEEP re-arms \
                 it without SO_KEEPALIVE",
                Facts {
                    client: &[
                        ("shutdown(SHUT_WR)", is("ok(0)")),
                        ("conn.state", is("FIN_WAIT2")),
                        ("conn.timer", is("keep")),
                        ("poll", is("timeout")),
                        ("conn later.state", is("FIN_WAIT2")),
                        ("conn later.timer", is("keep")),
                        ("tcp_info state", is("FIN_WAIT2")),
                        ("read#1", is("ok(5)")),
                        ("read#2", is("EOF")),
                        ("exit", is("exit 0")),
                    ],
                    ..HELD_SERVER_WRITES
                },
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_input.c \
                 tcp_do_segment(): FIN_WAIT_1 -> FIN_WAIT_2 arms TT_2MSL only `if \
                 (so->so_rcv.sb_state & SBS_CANTRCVMORE)`, which shutdown(SHUT_WR) \
                 does not set; sys/netinet/tcp_timer.c tcp_timer_2msl() recycles only \
                 with SBS_CANTRCVMORE too; the keepalive timer: tcp_do_segment() arms \
                 TT_KEEP = TP_KEEPIDLE on ESTABLISHED (net.inet.tcp.keepidle, 2 h by \
                 default), tcp_timer_keep() re-arms it without SO_KEEPALIVE",
                Facts {
                    client: &[
                        ("shutdown(SHUT_WR)", is("ok(0)")),
                        ("conn.state", is("FIN_WAIT2")),
                        ("conn.timer", is("keep")),
                        ("conn.left", FREEBSD_KEEPIDLE_LEFT),
                        ("poll", is("timeout")),
                        ("conn later.state", is("FIN_WAIT2")),
                        ("conn later.timer", is("keep")),
                        ("conn later.left", FREEBSD_KEEPIDLE_LEFT),
                        ("tcp_info state", is("FIN_WAIT2")),
                        ("read#1", is("ok(5)")),
                        ("read#2", is("EOF")),
                        ("exit", is("exit 0")),
                    ],
                    ..HELD_SERVER_WRITES
                },
            ),
        ],
        step_deadline: STEP_DEADLINE,
        ..Case::DEFAULTS
    },
];

/// orphan_timeout's server where the socket table gives the time left: the orphan's timer
/// (`timer`: Linux keeps it as a time-wait socket, FreeBSD runs its 2MSL timer), and what the
/// first write after the orphan is gone returns. (XNU's table gives no time left.)
const fn orphan_timeout_server_facts(
    timer: harness::Matcher,
    write_1: &'static str,
) -> [(&'static str, harness::Matcher); 9] {
    [
        ("read", is("EOF")),
        ("client conn.state", is("FIN_WAIT2")),
        ("client conn.timer", timer),
        ("client conn.left", any_ms(1_500, 2_000)),
        ("client conn later.state", is("none")),
        ("client conn gone.ms", any_ms(1_500, 3_000)),
        ("write#1", is(write_1)),
        ("write#2", is("EPIPE")),
        ("exit", is("exit 0")),
    ]
}

/// orphan_timeout's client closes and is done; each OS names what the server sees.
const ORPHAN_CLIENT_CLOSES: Facts = Facts {
    client: CLOSE_EXIT,
    ..Facts::NONE
};

/// held_socket_stays's server reads EOF, writes and closes; each OS names what the client
/// sees.
const HELD_SERVER_WRITES: Facts = Facts {
    server: &[
        ("read", is("EOF")),
        ("write", is("ok(5)")),
        ("close", is("ok(0)")),
        ("exit", is("exit 0")),
    ],
    ..Facts::NONE
};

const HELD_CLIENT: &[(&str, harness::Matcher)] = &[
    ("shutdown(SHUT_WR)", is("ok(0)")),
    ("conn.state", is("FIN_WAIT2")),
    ("poll", is("timeout")),
    ("conn later.state", is("FIN_WAIT2")),
    ("tcp_info state", is("FIN_WAIT2")),
    ("read#1", is("ok(5)")),
    ("read#2", is("EOF")),
    ("exit", is("exit 0")),
];

fn orphan_timeout_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    let (port, client_port) = (local_port(&conn), peer_port(&conn));
    ctx.sync("client closed");
    ctx.await_readable(&conn);
    ctx.read("read", &conn, 64);
    ctx.await_sock(client_port, port, Some("FIN_WAIT2"), KERNEL_WAIT);
    ctx.sock_diag("client conn", client_port, port);
    let gone_after = ctx.await_sock(client_port, port, None, WATCH_FOR);
    ctx.sock_diag("client conn later", client_port, port);
    if let Some(after) = gone_after {
        ctx.record(
            "client conn gone.ms",
            Value::Millis(after.as_millis() as u64),
        );
    }
    ctx.write("write#1", &conn, b"hello");
    ctx.await_reset(&conn);
    ctx.write("write#2", &conn, b"hello");
}

fn orphan_timeout_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.close("close", conn);
    ctx.sync("client closed");
}

fn held_socket_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    ctx.sync("client shut down");
    ctx.await_readable(&conn);
    ctx.read("read", &conn, 64);
    ctx.sync("watched");
    ctx.write("write", &conn, b"hello");
    ctx.sync("written");
    ctx.close("close", conn);
    ctx.sync("closed");
}

fn held_socket_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    let (port, server_port) = (local_port(&conn), peer_port(&conn));
    ctx.shutdown("shutdown(SHUT_WR)", &conn, Shutdown::Write);
    ctx.sync("client shut down");
    ctx.await_sock(port, server_port, Some("FIN_WAIT2"), KERNEL_WAIT);
    ctx.sock_diag("conn", port, server_port);
    // Watch the socket for twice the fin timeout: nothing arrives, nothing changes.
    ctx.poll("poll", &conn, libc::POLLIN, WATCH_FOR);
    ctx.sock_diag("conn later", port, server_port);
    ctx.tcp_state("tcp_info state", &conn);
    ctx.sync("watched");
    ctx.sync("written");
    ctx.read("read#1", &conn, 64);
    ctx.sync("closed");
    ctx.await_readable(&conn);
    ctx.read("read#2", &conn, 64);
}
