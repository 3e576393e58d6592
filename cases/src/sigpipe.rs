//! SIGPIPE: who dies, and when, writing to a connection that can no longer send.
//!
//! The connection is reset by the server (SO_LINGER {1,0}) before the client writes twice. On
//! Linux the first write reports the reset itself (ECONNRESET, no signal); only the second,
//! which finds the socket shut for sending, is EPIPE and raises SIGPIPE.

use crate::script::{abort, accept_and_read_eof, accept_one, connect_to_server};
use harness::judge::{Kernel, Provenance, LINUX_MATRIX};
use harness::{is, Case, Ctx, Expect, Need, Os, Side, SigPipe};
use nix::sys::socket::{MsgFlags, Shutdown};

pub static CASES: &[Case] = &[
    Case {
        id: "sigpipe.default_kills",
        doc: "Under SIG_DFL, writing to a reset connection: the first write returns the pending \
              ECONNRESET without a signal; the second write raises SIGPIPE, which kills the \
              process before write() returns. The runner sees it in the wait status.",
        source: "POSIX write(): EPIPE and SIGPIPE; signal(7); Linux sk_stream_error(): SIGPIPE \
                 only for EPIPE, and a pending sk_err is returned first",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: resetting_server,
        },
        client: Side {
            sigpipe: SigPipe::Default,
            run: write_twice_after_reset,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[("close(linger 0)", is("ok(0)")), ("exit", is("exit 0"))],
            client: &[
                ("write#1", is("ECONNRESET")),
                ("exit", is("killed by SIGPIPE")),
            ],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "sigpipe.ignored_returns_epipe",
        doc: "Under SIG_IGN the same two writes return ECONNRESET, then EPIPE, and the process \
              lives on.",
        source: "POSIX write(): EPIPE; signal(7) SIG_IGN",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: resetting_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: write_twice_after_reset,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[("close(linger 0)", is("ok(0)")), ("exit", is("exit 0"))],
            client: &[
                ("write#1", is("ECONNRESET")),
                ("write#2", is("EPIPE")),
                ("exit", is("exit 0")),
            ],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "sigpipe.handler_runs",
        doc: "With a SIGPIPE handler installed, the handler runs once (for the EPIPE write only, \
              not for the ECONNRESET one), and write() then returns EPIPE.",
        source: "POSIX write(): EPIPE and SIGPIPE; sigaction(2); Linux sk_stream_error()",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: resetting_server,
        },
        client: Side {
            sigpipe: SigPipe::CountingHandler,
            run: write_twice_after_reset,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[("close(linger 0)", is("ok(0)")), ("exit", is("exit 0"))],
            client: &[
                ("write#1", is("ECONNRESET")),
                ("write#2", is("EPIPE")),
                ("sigpipe.handler_runs", is("1")),
                ("exit", is("exit 0")),
            ],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "sigpipe.msg_nosignal",
        doc: "Under SIG_DFL, send() with MSG_NOSIGNAL: ECONNRESET, then EPIPE, and no signal: the \
              process lives.",
        source: "send(2) MSG_NOSIGNAL; POSIX.1-2008 send()",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: resetting_server,
        },
        client: Side {
            sigpipe: SigPipe::Default,
            run: send_nosignal_twice_after_reset,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[("close(linger 0)", is("ok(0)")), ("exit", is("exit 0"))],
            client: &[
                ("send#1", is("ECONNRESET")),
                ("send#2", is("EPIPE")),
                ("exit", is("exit 0")),
            ],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "sigpipe.so_nosigpipe",
        doc: "Under SIG_DFL, with the socket option SO_NOSIGPIPE set, writes to a reset \
              connection fail without a signal. macOS and FreeBSD have the option; Linux does \
              not (it has MSG_NOSIGNAL per call instead).",
        source: "macOS and FreeBSD setsockopt(2) SO_NOSIGPIPE",
        needs: &[Need::NotOn(
            Os::Linux,
            "no SO_NOSIGPIPE on Linux (MSG_NOSIGNAL is its per-call equivalent)",
        )],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: resetting_server,
        },
        client: Side {
            sigpipe: SigPipe::Default,
            run: so_nosigpipe_client,
        },
        // Not confirmed on a macOS or FreeBSD kernel yet: there the case runs and reports its
        // observations, and is skipped as unjudged.
        expect: &[],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "sigpipe.after_own_shutdown",
        doc: "Under SIG_DFL, a write after the process's own shutdown(SHUT_WR) raises SIGPIPE and \
              kills it: no reset is needed, the socket is simply shut for sending.",
        source: "shutdown(2); POSIX send(): EPIPE 'shut down for writing', SIGPIPE; Linux \
                 tcp_sendmsg_locked(): SEND_SHUTDOWN -> sk_stream_error(-EPIPE)",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: accept_and_read_eof,
        },
        client: Side {
            sigpipe: SigPipe::Default,
            run: write_after_own_shutdown,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[("read", is("EOF")), ("exit", is("exit 0"))],
            client: &[
                ("shutdown(SHUT_WR)", is("ok(0)")),
                ("exit", is("killed by SIGPIPE")),
            ],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
];

fn resetting_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.sync("connected");
    abort(ctx, conn);
    ctx.sync("reset");
}

/// Connect, wait for the server's RST to land, and hand over the reset socket.
fn reset_connection(ctx: &mut Ctx) -> socket2::Socket {
    let conn = connect_to_server(ctx);
    ctx.sync("connected");
    ctx.sync("reset");
    ctx.await_reset(&conn);
    conn
}

fn write_twice_after_reset(ctx: &mut Ctx) {
    let conn = reset_connection(ctx);
    ctx.write("write#1", &conn, b"hello");
    ctx.write("write#2", &conn, b"hello");
}

fn send_nosignal_twice_after_reset(ctx: &mut Ctx) {
    let conn = reset_connection(ctx);
    ctx.send("send#1", &conn, b"hello", MSG_NOSIGNAL);
    ctx.send("send#2", &conn, b"hello", MSG_NOSIGNAL);
}

/// MSG_NOSIGNAL does not exist on macOS; the case's need keeps it from running there.
#[cfg(not(target_os = "macos"))]
const MSG_NOSIGNAL: MsgFlags = MsgFlags::MSG_NOSIGNAL;
#[cfg(target_os = "macos")]
const MSG_NOSIGNAL: MsgFlags = MsgFlags::empty();

fn so_nosigpipe_client(ctx: &mut Ctx) {
    let conn = reset_connection(ctx);
    set_nosigpipe(&conn);
    ctx.write("write#1", &conn, b"hello");
    ctx.write("write#2", &conn, b"hello");
}

/// SO_NOSIGPIPE exists only on the BSD family; the case's need keeps it from running elsewhere.
#[cfg(any(target_os = "macos", target_os = "freebsd"))]
fn set_nosigpipe(sock: &socket2::Socket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to an int that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NOSIGPIPE,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_NOSIGPIPE)");
}

#[cfg(not(any(target_os = "macos", target_os = "freebsd")))]
fn set_nosigpipe(_sock: &socket2::Socket) {
    panic!("SO_NOSIGPIPE does not exist on this OS");
}

fn write_after_own_shutdown(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.shutdown("shutdown(SHUT_WR)", &conn, Shutdown::Write);
    ctx.write("write", &conn, b"hello");
}
