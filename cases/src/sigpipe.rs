//! SIGPIPE: who dies, and when, writing to a connection that can no longer send.
//!
//! The connection is reset by the server (SO_LINGER {1,0}) before the client writes twice. On
//! Linux the first write reports the reset itself (ECONNRESET, no signal); only the second,
//! which finds the socket shut for sending, is EPIPE and raises SIGPIPE. On macOS and FreeBSD
//! both writes are EPIPE: their send path tests "cannot send more" (set when the RST closed
//! the connection) before the pending ECONNRESET, so the first write already raises SIGPIPE.
//! Expectations for them are read in xnu-11417.121.6 and FreeBSD 14.0-STABLE
//! (ilnp-freebsd14 2f2a416); see `close.rs` for the trees.

use crate::facts::{ABORT_EXIT, READ_EOF_EXIT};
use crate::script::{
    abort, accept_and_read_eof, accept_one, connect_to_server, send_nosignal_twice, write_twice,
};
use harness::{is, Case, Ctx, Expect, Facts, Need, Os, Side, SigPipe};
use nix::sys::socket::Shutdown;

pub static CASES: &[Case] = &[
    Case {
        id: "sigpipe.default_kills",
        doc: "Under SIG_DFL, writing to a reset connection. On Linux the first write returns the \
              pending ECONNRESET without a signal, and the second raises SIGPIPE; on macOS and \
              FreeBSD the first write already fails with EPIPE and raises SIGPIPE. The signal \
              kills the process before write() returns; the runner sees it in the wait status.",
        source: "POSIX write(): EPIPE and SIGPIPE; signal(7)",
        server: Side::new(resetting_server),
        client: Side::with_sigpipe(SigPipe::Default, write_twice_after_reset),
        expect: &[
            Expect::linux(
                "Linux sk_stream_error(): SIGPIPE only for EPIPE, and a pending sk_err \
                 is returned first",
                Facts {
                    client: &[
                        ("write#1", is("ECONNRESET")),
                        ("exit", is("killed by SIGPIPE")),
                    ],
                    ..SERVER_RESETS
                },
            ),
            // Differs from Linux: sosendcheck() returns EPIPE for SS_CANTSENDMORE before it
            // looks at so_error, and soo_write(): `if (stat == EPIPE && !(so->so_flags &
            // SOF_NOSIGPIPE)) psignal(procp, SIGPIPE)`.
            Expect::macos(XNU_WRITE_EPIPE_SIGPIPE, BSD_DEFAULT_KILLS),
            // Differs from Linux: sosend_generic() returns EPIPE for SBS_CANTSENDMORE before it
            // looks at so_error, and sousrsend(): `if (error == EPIPE && (so->so_options &
            // SO_NOSIGPIPE) == 0 && (flags & MSG_NOSIGNAL) == 0) ... tdsignal(td, SIGPIPE)`.
            Expect::freebsd(FREEBSD_WRITE_EPIPE_SIGPIPE, BSD_DEFAULT_KILLS),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "sigpipe.ignored_returns_epipe",
        doc: "Under SIG_IGN the same two writes return ECONNRESET, then EPIPE (macOS and \
              FreeBSD: EPIPE twice), and the process lives on.",
        source: "POSIX write(): EPIPE; signal(7) SIG_IGN",
        server: Side::new(resetting_server),
        client: Side::new(write_twice_after_reset),
        expect: &[
            Expect::linux(
                "Linux sk_stream_error(): a pending sk_err is returned first",
                Facts {
                    client: &[
                        ("write#1", is("ECONNRESET")),
                        ("write#2", is("EPIPE")),
                        ("exit", is("exit 0")),
                    ],
                    ..SERVER_RESETS
                },
            ),
            // Differs from Linux: EPIPE before the pending error, as in sigpipe.default_kills.
            Expect::macos(XNU_WRITE_EPIPE_SIGPIPE, BSD_IGNORED_RETURNS_EPIPE),
            // Differs from Linux: EPIPE before the pending error, as in sigpipe.default_kills.
            Expect::freebsd(FREEBSD_WRITE_EPIPE_SIGPIPE, BSD_IGNORED_RETURNS_EPIPE),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "sigpipe.handler_runs",
        doc: "With a SIGPIPE handler installed, the handler runs once per write that fails with \
              EPIPE, and write() then returns EPIPE: on Linux once (for the second write only, \
              not for the ECONNRESET one), on macOS and FreeBSD twice.",
        source: "POSIX write(): EPIPE and SIGPIPE; sigaction(2)",
        server: Side::new(resetting_server),
        client: Side::with_sigpipe(SigPipe::CountingHandler, write_twice_after_reset),
        expect: &[
            Expect::linux(
                "Linux sk_stream_error()",
                Facts {
                    client: &[
                        ("write#1", is("ECONNRESET")),
                        ("write#2", is("EPIPE")),
                        ("sigpipe.handler_runs", is("1")),
                        ("exit", is("exit 0")),
                    ],
                    ..SERVER_RESETS
                },
            ),
            // Differs from Linux: both writes are EPIPE, and each raises SIGPIPE.
            Expect::macos(XNU_WRITE_EPIPE_SIGPIPE, BSD_HANDLER_RUNS),
            // Differs from Linux: both writes are EPIPE, and each raises SIGPIPE.
            Expect::freebsd(FREEBSD_WRITE_EPIPE_SIGPIPE, BSD_HANDLER_RUNS),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "sigpipe.msg_nosignal",
        doc: "Under SIG_DFL, send() with MSG_NOSIGNAL: ECONNRESET, then EPIPE (macOS and \
              FreeBSD: EPIPE twice), and no signal: the process lives.",
        source: "send(2) MSG_NOSIGNAL; POSIX.1-2008 send()",
        server: Side::new(resetting_server),
        client: Side::with_sigpipe(SigPipe::Default, send_nosignal_twice_after_reset),
        expect: &[
            Expect::linux(
                "Linux tcp_sendmsg_locked() -> sk_stream_error(): no send_sig() with \
                 MSG_NOSIGNAL",
                Facts {
                    client: &[
                        ("send#1", is("ECONNRESET")),
                        ("send#2", is("EPIPE")),
                        ("exit", is("exit 0")),
                    ],
                    ..SERVER_RESETS
                },
            ),
            // Differs from Linux in send#1 (EPIPE before the pending error). MSG_NOSIGNAL is
            // XNU's too (bsd/sys/socket.h `#define MSG_NOSIGNAL 0x80000`), honoured by send().
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_syscalls.c sendit(): `if (error == \
                 EPIPE && !(so->so_flags & SOF_NOSIGPIPE) && !(flags & MSG_NOSIGNAL)) \
                 psignal(p, SIGPIPE)`; bsd/kern/uipc_socket.c sosendcheck(): \
                 SS_CANTSENDMORE -> EPIPE before so_error",
                BSD_MSG_NOSIGNAL,
            ),
            // Differs from Linux in send#1 (EPIPE before the pending error).
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 sousrsend(): SIGPIPE only `if (error == EPIPE && (so->so_options & \
                 SO_NOSIGPIPE) == 0 && (flags & MSG_NOSIGNAL) == 0)`; sosend_generic(): \
                 SBS_CANTSENDMORE -> EPIPE before so_error",
                BSD_MSG_NOSIGNAL,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "sigpipe.so_nosigpipe",
        doc: "Under SIG_DFL, with the socket option SO_NOSIGPIPE set, writes to a reset \
              connection fail with EPIPE without a signal. macOS and FreeBSD have the option; \
              Linux does not (it has MSG_NOSIGNAL per call instead).",
        source: "macOS and FreeBSD setsockopt(2) SO_NOSIGPIPE",
        needs: &[Need::NotOn(
            Os::Linux,
            "no SO_NOSIGPIPE on Linux (MSG_NOSIGNAL is its per-call equivalent)",
        )],
        server: Side::new(resetting_server),
        client: Side::with_sigpipe(SigPipe::Default, so_nosigpipe_client),
        expect: &[
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c sosetoptlock(): SO_NOSIGPIPE \
                 sets SOF_NOSIGPIPE; bsd/kern/sys_socket.c soo_write(): `if (stat == \
                 EPIPE && !(so->so_flags & SOF_NOSIGPIPE)) psignal(procp, SIGPIPE)`",
                BSD_IGNORED_RETURNS_EPIPE,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 sosetopt(): SO_NOSIGPIPE is an so_options bit; sousrsend(): SIGPIPE \
                 only `if (error == EPIPE && (so->so_options & SO_NOSIGPIPE) == 0 ...)`",
                BSD_IGNORED_RETURNS_EPIPE,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "sigpipe.after_own_shutdown",
        doc: "Under SIG_DFL, a write after the process's own shutdown(SHUT_WR) raises SIGPIPE and \
              kills it: no reset is needed, the socket is simply shut for sending.",
        source: "shutdown(2); POSIX send(): EPIPE 'shut down for writing', SIGPIPE",
        server: Side::new(accept_and_read_eof),
        client: Side::with_sigpipe(SigPipe::Default, write_after_own_shutdown),
        expect: &[
            Expect::linux(
                "Linux tcp_sendmsg_locked(): SEND_SHUTDOWN -> sk_stream_error(-EPIPE)",
                AFTER_OWN_SHUTDOWN,
            ),
            Expect::macos(XNU_WRITE_EPIPE_SIGPIPE, AFTER_OWN_SHUTDOWN),
            Expect::freebsd(FREEBSD_WRITE_EPIPE_SIGPIPE, AFTER_OWN_SHUTDOWN),
        ],
        ..Case::DEFAULTS
    },
];

// Facts that several OSes share. A list used by one OS only is written in its expectation.

/// The server aborts the connection (SO_LINGER {1,0}, then close()), and the client writes to
/// it: each case names what the client sees.
const SERVER_RESETS: Facts = Facts {
    server: ABORT_EXIT,
    ..Facts::NONE
};

/// `sigpipe.default_kills` on macOS and FreeBSD.
const BSD_DEFAULT_KILLS: Facts = Facts {
    client: &[("exit", is("killed by SIGPIPE"))],
    ..SERVER_RESETS
};

/// `sigpipe.ignored_returns_epipe` on macOS and FreeBSD.
const BSD_IGNORED_RETURNS_EPIPE: Facts = Facts {
    client: &[
        ("write#1", is("EPIPE")),
        ("write#2", is("EPIPE")),
        ("exit", is("exit 0")),
    ],
    ..SERVER_RESETS
};

/// `sigpipe.handler_runs` on macOS and FreeBSD.
const BSD_HANDLER_RUNS: Facts = Facts {
    client: &[
        ("write#1", is("EPIPE")),
        ("write#2", is("EPIPE")),
        ("sigpipe.handler_runs", is("2")),
        ("exit", is("exit 0")),
    ],
    ..SERVER_RESETS
};

/// `sigpipe.msg_nosignal` on macOS and FreeBSD.
const BSD_MSG_NOSIGNAL: Facts = Facts {
    client: &[
        ("send#1", is("EPIPE")),
        ("send#2", is("EPIPE")),
        ("exit", is("exit 0")),
    ],
    ..SERVER_RESETS
};

/// `sigpipe.after_own_shutdown`, the same on every OS.
const AFTER_OWN_SHUTDOWN: Facts = Facts {
    server: READ_EOF_EXIT,
    client: &[
        ("shutdown(SHUT_WR)", is("ok(0)")),
        ("exit", is("killed by SIGPIPE")),
    ],
    wire: &[],
};

/// Where a write(2) on a socket that cannot send more fails, and SIGPIPE is raised.
const XNU_WRITE_EPIPE_SIGPIPE: &str = "xnu-11417.121.6 bsd/kern/uipc_socket.c sosendcheck(): \
                                       `so->so_state & SS_CANTSENDMORE` -> EPIPE, tested \
                                       before so_error; bsd/kern/sys_socket.c soo_write(): \
                                       `if (stat == EPIPE && !(so->so_flags & SOF_NOSIGPIPE)) \
                                       psignal(procp, SIGPIPE)`";
const FREEBSD_WRITE_EPIPE_SIGPIPE: &str =
    "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c sosend_generic(): \
     `so->so_snd.sb_state & SBS_CANTSENDMORE` -> EPIPE, tested before so_error; sousrsend(): \
     `if (error == EPIPE && (so->so_options & SO_NOSIGPIPE) == 0 && (flags & MSG_NOSIGNAL) == \
     0) ... tdsignal(td, SIGPIPE)`";

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
    write_twice(ctx, &conn);
}

fn send_nosignal_twice_after_reset(ctx: &mut Ctx) {
    let conn = reset_connection(ctx);
    send_nosignal_twice(ctx, &conn);
}

fn so_nosigpipe_client(ctx: &mut Ctx) {
    let conn = reset_connection(ctx);
    set_nosigpipe(&conn);
    write_twice(ctx, &conn);
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
