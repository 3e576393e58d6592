//! close(): what the peer sees when a connection is closed, with and without unread data,
//! explicitly, by exit, by SIGKILL, or by an abort.

use crate::script::{abort, accept_one, connect_to_server};
use harness::judge::Kernel;
use harness::{is, Case, Ctx, Expect, Os, Side, SigPipe};
use nix::sys::signal::{raise, Signal};

pub static CASES: &[Case] = &[
    Case {
        id: "close.fin_then_eof",
        doc: "The client writes 5 bytes and close()s. The server reads the 5 bytes, then EOF: an \
              orderly close sends FIN after the data, and FIN reads as end-of-file.",
        source:
            "RFC 9293 §3.6 (closing a connection); close(2); Linux tcp_close() -> tcp_send_fin()",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: fin_then_eof_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: fin_then_eof_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            server: &[
                ("read#1", is("ok(5)")),
                ("read#2", is("EOF")),
                ("exit", is("exit 0")),
            ],
            client: &[
                ("write", is("ok(5)")),
                ("close", is("ok(0)")),
                ("exit", is("exit 0")),
            ],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "close.unread_data_sends_rst",
        doc: "The server close()s while 5 bytes it never read sit in its receive buffer. Instead \
              of FIN the kernel sends RST, so the client's first read fails with ECONNRESET; the \
              reset is reported once, after which reads see EOF and writes fail with EPIPE \
              (SIGPIPE ignored).",
        source: "RFC 2525 §2.17 (failure to RST on close with data pending); Linux tcp_close(): \
                 data_was_unread -> tcp_send_active_reset()",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: unread_data_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: unread_data_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            server: &[("close", is("ok(0)")), ("exit", is("exit 0"))],
            client: &[
                ("write", is("ok(5)")),
                ("read#1", is("ECONNRESET")),
                ("read#2", is("EOF")),
                ("write#2", is("EPIPE")),
                ("exit", is("exit 0")),
            ],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "close.peer_writes_after_close",
        doc: "The client close()s. The server reads EOF and writes anyway: the first write \
              succeeds (the data is queued and sent), the client's kernel answers it with RST, \
              and only the second write fails. On Linux a RST received in CLOSE_WAIT is reported \
              as EPIPE, not ECONNRESET; the read after it sees EOF. SIGPIPE is ignored.",
        source: "RFC 9293 §3.10.7.4 (segment for a closed connection elicits RST); Linux \
                 tcp_reset(): CLOSE_WAIT -> sk_err = EPIPE",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: peer_writes_after_close_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: peer_writes_after_close_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            server: &[
                ("read", is("EOF")),
                ("write#1", is("ok(5)")),
                ("write#2", is("EPIPE")),
                ("read#2", is("EOF")),
                ("exit", is("exit 0")),
            ],
            client: &[("close", is("ok(0)")), ("exit", is("exit 0"))],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "close.read_after_reset",
        doc: "The client aborts (SO_LINGER {1,0}, then close()), which sends RST. The server's \
              first read reports ECONNRESET; the error is consumed, and the second read sees EOF.",
        source: "socket(7) SO_LINGER; RFC 9293 §3.10.7 (RST processing); Linux tcp_reset() sets \
                 sk_err = ECONNRESET, sock_error() clears it",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: read_after_reset_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: abort_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            server: &[
                ("read#1", is("ECONNRESET")),
                ("read#2", is("EOF")),
                ("exit", is("exit 0")),
            ],
            client: &[("close(linger 0)", is("ok(0)")), ("exit", is("exit 0"))],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "close.write_after_reset",
        doc: "The client aborts with SO_LINGER {1,0}. The server's first write reports the reset \
              (ECONNRESET); the second finds the connection shut for sending and fails with EPIPE \
              (SIGPIPE ignored).",
        source: "socket(7) SO_LINGER; Linux sk_stream_error(): a pending sk_err wins over EPIPE",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: write_after_reset_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: abort_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            server: &[
                ("write#1", is("ECONNRESET")),
                ("write#2", is("EPIPE")),
                ("exit", is("exit 0")),
            ],
            client: &[("close(linger 0)", is("ok(0)")), ("exit", is("exit 0"))],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "close.exit_sends_fin",
        doc: "The client process exits without calling close(). The kernel closes its descriptors \
              at exit exactly as close() would: FIN, and the server reads EOF.",
        source: "_exit(2): open file descriptors are closed; Linux do_exit() -> close_files()",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: read_eof_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: exit_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            server: &[("read", is("EOF")), ("exit", is("exit 0"))],
            client: &[("exit", is("exit 0"))],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "close.kill_sends_fin",
        doc: "The client is killed by SIGKILL while connected. Its descriptors are closed like \
              any other's: FIN, not RST, and the server reads EOF.",
        source: "signal(7) SIGKILL; Linux do_exit() -> close_files() -> tcp_close()",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: read_eof_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: killed_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            server: &[("read", is("EOF")), ("exit", is("exit 0"))],
            client: &[("exit", is("killed by SIGKILL"))],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "close.kill_with_unread_data_sends_rst",
        doc: "The server writes 5 bytes; the client never reads them and is killed by SIGKILL. \
              The implicit close finds unread data and sends RST: the server's read fails with \
              ECONNRESET, then sees EOF.",
        source: "RFC 2525 §2.17; Linux tcp_close(): data_was_unread -> tcp_send_active_reset()",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: kill_with_unread_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: kill_with_unread_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            server: &[
                ("write", is("ok(5)")),
                ("read#1", is("ECONNRESET")),
                ("read#2", is("EOF")),
                ("exit", is("exit 0")),
            ],
            client: &[("exit", is("killed by SIGKILL"))],
            wire: &[],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
];

fn fin_then_eof_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.read("read#1", &conn, 64);
    ctx.read("read#2", &conn, 64);
}

fn fin_then_eof_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.write("write", &conn, b"hello");
    ctx.close("close", conn);
}

fn unread_data_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.sync("sent");
    ctx.await_readable(&conn);
    ctx.close("close", conn);
    ctx.sync("closed");
}

fn unread_data_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.write("write", &conn, b"hello");
    ctx.sync("sent");
    ctx.sync("closed");
    ctx.await_reset(&conn);
    ctx.read("read#1", &conn, 64);
    ctx.read("read#2", &conn, 64);
    ctx.write("write#2", &conn, b"hello");
}

fn peer_writes_after_close_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.sync("closed");
    ctx.read("read", &conn, 64);
    ctx.write("write#1", &conn, b"hello");
    ctx.await_reset(&conn);
    ctx.write("write#2", &conn, b"hello");
    ctx.read("read#2", &conn, 64);
}

fn peer_writes_after_close_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.close("close", conn);
    ctx.sync("closed");
}

fn abort_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.sync("connected");
    abort(ctx, conn);
    ctx.sync("aborted");
}

fn read_after_reset_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.sync("connected");
    ctx.sync("aborted");
    ctx.await_reset(&conn);
    ctx.read("read#1", &conn, 64);
    ctx.read("read#2", &conn, 64);
}

fn write_after_reset_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.sync("connected");
    ctx.sync("aborted");
    ctx.await_reset(&conn);
    ctx.write("write#1", &conn, b"hello");
    ctx.write("write#2", &conn, b"hello");
}

fn read_eof_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.sync("connected");
    ctx.read("read", &conn, 64);
}

/// Returns with the connection open: the side exits, and the kernel closes it.
fn exit_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.sync("connected");
    std::mem::forget(conn);
}

fn killed_client(ctx: &mut Ctx) {
    let _conn = connect_to_server(ctx);
    ctx.sync("connected");
    ctx.begin("raise(SIGKILL)");
    let _ = raise(Signal::SIGKILL);
}

fn kill_with_unread_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.write("write", &conn, b"hello");
    // The client is killed in this step; the barrier opens when it is gone.
    ctx.sync("client killed");
    ctx.await_reset(&conn);
    ctx.read("read#1", &conn, 64);
    ctx.read("read#2", &conn, 64);
}

fn kill_with_unread_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.await_readable(&conn);
    ctx.begin("raise(SIGKILL)");
    let _ = raise(Signal::SIGKILL);
}
