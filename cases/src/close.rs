//! close(): what the peer sees when a connection is closed, with and without unread data,
//! explicitly, by exit, by SIGKILL, or by an abort.

use crate::script::{abort, accept_one, connect_to_server};
use harness::judge::{Kernel, Provenance, LINUX_MATRIX};
use harness::Role::{Client, Server};
use harness::{is, Case, Ctx, Expect, Os, Seg, Side, SigPipe, WireFact};
use nix::sys::signal::{raise, Signal};
use nix::sys::socket::Shutdown;

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
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
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
            wire: &[
                WireFact::Before((Client, Seg::Fin), (Server, Seg::Fin)),
                WireFact::FinAcked(Client),
                WireFact::FinAcked(Server),
                WireFact::Count(Client, Seg::Rst, 0),
                WireFact::Count(Server, Seg::Rst, 0),
            ],
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
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[("close", is("ok(0)")), ("exit", is("exit 0"))],
            client: &[
                ("write", is("ok(5)")),
                ("read#1", is("ECONNRESET")),
                ("read#2", is("EOF")),
                ("write#2", is("EPIPE")),
                ("exit", is("exit 0")),
            ],
            wire: &[
                WireFact::ResetNotFin(Server),
                WireFact::Count(Server, Seg::Rst, 1),
                WireFact::Count(Client, Seg::Fin, 0),
            ],
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
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[
                ("read", is("EOF")),
                ("write#1", is("ok(5)")),
                ("write#2", is("EPIPE")),
                ("read#2", is("EOF")),
                ("exit", is("exit 0")),
            ],
            client: &[("close", is("ok(0)")), ("exit", is("exit 0"))],
            wire: &[
                // Only the first write travels; the client's kernel answers it with RST.
                WireFact::Before((Client, Seg::Fin), (Server, Seg::Data)),
                WireFact::Before((Server, Seg::Data), (Client, Seg::Rst)),
                WireFact::Count(Server, Seg::Data, 1),
                WireFact::Count(Client, Seg::Rst, 1),
                WireFact::Count(Server, Seg::Fin, 0),
            ],
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
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[
                ("read#1", is("ECONNRESET")),
                ("read#2", is("EOF")),
                ("exit", is("exit 0")),
            ],
            client: &[("close(linger 0)", is("ok(0)")), ("exit", is("exit 0"))],
            wire: &[WireFact::ResetNotFin(Client)],
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
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[
                ("write#1", is("ECONNRESET")),
                ("write#2", is("EPIPE")),
                ("exit", is("exit 0")),
            ],
            client: &[("close(linger 0)", is("ok(0)")), ("exit", is("exit 0"))],
            wire: &[WireFact::ResetNotFin(Client)],
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
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[("read", is("EOF")), ("exit", is("exit 0"))],
            client: &[("exit", is("exit 0"))],
            wire: &[
                // The kernel closes the dead process's socket with FIN, never RST. (What the
                // server's own close sends is not this case's point.)
                WireFact::Count(Client, Seg::Fin, 1),
                WireFact::FinAcked(Client),
                WireFact::Count(Client, Seg::Rst, 0),
            ],
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
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[("read", is("EOF")), ("exit", is("exit 0"))],
            client: &[("exit", is("killed by SIGKILL"))],
            wire: &[
                // The kernel closes the dead process's socket with FIN, never RST. (What the
                // server's own close sends is not this case's point.)
                WireFact::Count(Client, Seg::Fin, 1),
                WireFact::FinAcked(Client),
                WireFact::Count(Client, Seg::Rst, 0),
            ],
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
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[
                ("write", is("ok(5)")),
                ("read#1", is("ECONNRESET")),
                ("read#2", is("EOF")),
                ("exit", is("exit 0")),
            ],
            client: &[("exit", is("killed by SIGKILL"))],
            wire: &[WireFact::ResetNotFin(Client)],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "close.three_segment_close",
        doc: "The client close()s; the server, blocked in read(), reads EOF and close()s at once. \
              Receiving a FIN puts Linux's receiver into delayed-ACK (pingpong) mode, so the ACK \
              of the client's FIN is still pending when the server's close() sends its own FIN, \
              and rides on it: the four-way close takes three segments, FIN, FIN|ACK, ACK. \
              Whether it does is a race between the server's wake-up and the delayed-ACK timer, \
              which on this kernel's loopback fires about 3 ms after the FIN (observed; not the \
              textbook 40 ms). Idle, the server wins every time; with both cores busy it loses \
              about one run in four and its ACK goes alone, FIN, ACK, FIN|ACK, ACK. So the case \
              asserts what holds either way (the client's FIN first, the server's FIN \
              acknowledging it, no RST, no separate ACK from the client before the last) and \
              records which of the two it saw.",
        source: "RFC 9293 §3.6 (a FIN may carry the ACK of the peer's FIN); Linux tcp_fin() -> \
                 inet_csk_enter_pingpong_mode(), tcp_send_delayed_ack() (TCP_DELACK_MIN = 40 ms)",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: three_segment_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: three_segment_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[
                ("read", is("EOF")),
                ("state", is("CLOSE_WAIT")),
                ("close", is("ok(0)")),
                ("exit", is("exit 0")),
            ],
            client: &[("close", is("ok(0)")), ("exit", is("exit 0"))],
            wire: &[WireFact::TeardownOneOf(&[
                &[(Client, "FIN|ACK"), (Server, "FIN|ACK"), (Client, "ACK")],
                &[
                    (Client, "FIN|ACK"),
                    (Server, "ACK"),
                    (Server, "FIN|ACK"),
                    (Client, "ACK"),
                ],
            ])],
        }],
        step_deadline: Case::STEP_DEADLINE,
        variants: &[],
    },
    Case {
        id: "close.four_segment_close",
        doc: "The client sends its FIN with shutdown(SHUT_WR) and waits until it is in FIN_WAIT2, \
              that is until the server's kernel has acknowledged the FIN on its own (after the \
              delayed-ACK timer); only then does the server close(). Each FIN is acknowledged by \
              a segment of its own: FIN, ACK, FIN, ACK, deterministic on any load since the \
              server cannot close before its ACK is on the wire. The client's connection goes on \
              in TIME_WAIT as a timewait socket; the descriptor's own socket reads CLOSE.",
        source: "RFC 9293 §3.6 figure 12 (normal close sequence); Linux tcp_rcv_state_process(): \
                 FIN_WAIT1 + ACK of FIN -> FIN_WAIT2; tcp_fin(): FIN_WAIT2 -> tcp_time_wait(), \
                 which hands the connection to a timewait socket and tcp_done()s the original",
        needs: &[],
        server: Side {
            sigpipe: SigPipe::Ignore,
            run: four_segment_server,
        },
        client: Side {
            sigpipe: SigPipe::Ignore,
            run: four_segment_client,
        },
        expect: &[Expect {
            os: Os::Linux,
            kernel: Kernel::ANY,
            source: "",
            provenance: Provenance::Observed(LINUX_MATRIX),
            server: &[
                ("read", is("EOF")),
                ("state", is("CLOSE_WAIT")),
                ("close", is("ok(0)")),
                ("exit", is("exit 0")),
            ],
            client: &[
                ("shutdown(SHUT_WR)", is("ok(0)")),
                ("state#1", is("FIN_WAIT2")),
                ("read", is("EOF")),
                ("state#2", is("CLOSE")),
                ("close", is("ok(0)")),
                ("exit", is("exit 0")),
            ],
            wire: &[WireFact::Teardown(&[
                (Client, "FIN|ACK"),
                (Server, "ACK"),
                (Server, "FIN|ACK"),
                (Client, "ACK"),
            ])],
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

fn three_segment_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.sync("connected");
    ctx.read("read", &conn, 64);
    ctx.tcp_state("state", &conn);
    ctx.close("close", conn);
}

fn three_segment_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.sync("connected");
    ctx.close("close", conn);
}

fn four_segment_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.sync("connected");
    ctx.read("read", &conn, 64);
    ctx.tcp_state("state", &conn);
    ctx.sync("fin acknowledged");
    ctx.close("close", conn);
}

fn four_segment_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.sync("connected");
    ctx.shutdown("shutdown(SHUT_WR)", &conn, Shutdown::Write);
    // The server's ACK of our FIN moves us to FIN_WAIT2, however long its kernel delays it.
    ctx.await_tcp_state(&conn, "FIN_WAIT2");
    ctx.tcp_state("state#1", &conn);
    ctx.sync("fin acknowledged");
    ctx.await_readable(&conn);
    ctx.read("read", &conn, 64);
    ctx.tcp_state("state#2", &conn);
    ctx.close("close", conn);
}
