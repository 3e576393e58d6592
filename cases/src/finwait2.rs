//! FIN_WAIT_2: the active closer's FIN is acknowledged, and it waits for the peer's FIN. An
//! orphaned socket (closed by its process) waits only `tcp_fin_timeout`; a socket still held
//! (after shutdown(SHUT_WR)) waits as long as it is held. Both observed with sock_diag, with
//! `tcp_fin_timeout` set to 2 s in the case's namespace.

use crate::script::{accept_one, connect_to_server};
use harness::judge::{Kernel, Provenance, LINUX_MATRIX};
use harness::observe::sock::{local_port, peer_port, KERNEL_WAIT};
use harness::{any_ms, is, Case, Ctx, Expect, Need, Os, Side, SigPipe, Value};
use nix::sys::socket::Shutdown;
use std::time::Duration;

/// `tcp_fin_timeout` in the case's namespace, in seconds.
const FIN_TIMEOUT: &str = "2";
/// How long the cases watch: past the 2 s fin timeout, with room for a loaded machine.
const WATCH_FOR: Duration = Duration::from_secs(4);
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
              with EPIPE (RST in CLOSE_WAIT; SIGPIPE ignored).",
        source: "ip-sysctl.rst tcp_fin_timeout; Linux __tcp_close(): FIN_WAIT2 with \
                 tcp_fin_time() <= TCP_TIMEWAIT_LEN -> tcp_time_wait(sk, TCP_FIN_WAIT2, tmo); \
                 inet_twsk_diag_fill() reports tw_substate; tcp_reset(): CLOSE_WAIT -> EPIPE",
        needs: &[
            Need::SockDiag,
            Need::Sysctl("net/ipv4/tcp_fin_timeout", FIN_TIMEOUT),
        ],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: orphan_timeout_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: orphan_timeout_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[
                ("read", is("EOF")),
                ("client conn.state", is("FIN_WAIT2")),
                ("client conn.timer", is("time_wait")),
                ("client conn.left", any_ms(1_500, 2_000)),
                ("client conn later.state", is("none")),
                ("client conn gone.ms", any_ms(1_500, 3_000)),
                ("write#1", is("ok(5)")),
                ("write#2", is("EPIPE")),
                ("exit", is("exit 0")),
            ],
            client: &[("close", is("ok(0)")), ("exit", is("exit 0"))],
            wire: &[],
        }],
        step_deadline: STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "finwait2.held_socket_stays",
        doc: "tcp_fin_timeout is 2 s. The client shutdown(SHUT_WR)s and keeps its descriptor. Its \
              socket enters FIN_WAIT_2 and stays there past the timeout, with no timer: the fin \
              timeout applies only to orphans. The half-open connection still carries data from \
              the server to the client, and the server's close() ends it with EOF.",
        source: "ip-sysctl.rst tcp_fin_timeout (\"orphaned (not referenced by any application) \
                 connection\"); Linux tcp_rcv_state_process() FIN_WAIT1: a socket that is not \
                 SOCK_DEAD only moves to FIN_WAIT2",
        needs: &[
            Need::SockDiag,
            Need::Sysctl("net/ipv4/tcp_fin_timeout", FIN_TIMEOUT),
        ],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: held_socket_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: held_socket_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[
                ("read", is("EOF")),
                ("write", is("ok(5)")),
                ("close", is("ok(0)")),
                ("exit", is("exit 0")),
            ],
            client: &[
                ("shutdown(SHUT_WR)", is("ok(0)")),
                ("conn.state", is("FIN_WAIT2")),
                ("poll", is("timeout")),
                ("conn later.state", is("FIN_WAIT2")),
                ("tcp_info state", is("FIN_WAIT2")),
                ("read#1", is("ok(5)")),
                ("read#2", is("EOF")),
                ("exit", is("exit 0")),
            ],
            wire: &[],
        }],
        step_deadline: STEP_DEADLINE,
        variants: &[],
    },
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
