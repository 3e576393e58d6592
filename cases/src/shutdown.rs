//! shutdown(): half-closing a connection, in either direction, and what each end sees.
//!
//! macOS and FreeBSD expectations are read in xnu-11417.121.6 and FreeBSD 14.0-STABLE
//! (ilnp-freebsd14 2f2a416); see `close.rs` for the trees. They differ from Linux in one place:
//! SHUT_RD, which both BSDs implement by flushing the receive buffer (sorflush()).

use crate::facts::{EXIT_ONLY, READ_EOF_EXIT};
use crate::script::{accept_and_read_eof, accept_one, connect_to_server};
use harness::observe::sock::POLL_PEER_CLOSED;
use harness::Role::{Client, Server};
use harness::{is, Case, Ctx, Expect, Facts, Matcher, Seg, Side, WireFact};
use nix::sys::socket::Shutdown;
use std::time::Duration;

/// How long a side watches for an EOF that must not come.
const NO_EOF_WATCH: Duration = Duration::from_millis(200);

/// The reply of `shutdown.wr_half_close`: larger than one segment and than the default socket
/// buffers' first window, so that it really streams after the client's FIN.
const REPLY_LEN: usize = 100_000;

pub static CASES: &[Case] = &[
    Case {
        id: "shutdown.wr_half_close",
        doc: "The client sends a request and shutdown(SHUT_WR)s. The server reads the request, \
              then EOF, and only then writes its 100000-byte reply and closes. The client, \
              which can no longer send, still reads the whole reply, then EOF: a half-closed \
              connection carries data the other way until the other side closes too.",
        source: "RFC 9293 §3.6 (half-close: CLOSE means 'I have no more to send'); shutdown(2)",
        server: Side::new(wr_half_close_server),
        client: Side::new(wr_half_close_client),
        expect: &[
            Expect::linux("Linux tcp_shutdown() -> tcp_send_fin()", WR_HALF_CLOSE),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c soshutdownlock_final(): SHUT_WR \
                 -> bsd/netinet/tcp_usrreq.c tcp_usr_shutdown(): socantsendmore(), \
                 tcp_usrclosed() -> FIN_WAIT_1, FIN; the receive side is untouched \
                 (bsd/netinet/tcp_input.c: FIN_WAIT_2 disconnects only `if \
                 (so->so_state & SS_CANTRCVMORE)`)",
                WR_HALF_CLOSE,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 soshutdown(): SHUT_WR -> sys/netinet/tcp_usrreq.c tcp_usr_shutdown(): \
                 socantsendmore(), tcp_usrclosed() -> FIN_WAIT_1, FIN; no sorflush() \
                 for SHUT_WR",
                WR_HALF_CLOSE,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "shutdown.wr_then_write",
        doc: "After its own shutdown(SHUT_WR), a write fails with EPIPE (SIGPIPE is ignored \
              here; see sigpipe.after_own_shutdown for SIG_DFL). The peer reads EOF.",
        source: "shutdown(2); POSIX send(): EPIPE 'the socket is shut down for writing'",
        server: Side::new(accept_and_read_eof),
        client: Side::new(wr_then_write_client),
        expect: &[
            Expect::linux(
                "Linux tcp_sendmsg_locked(): SEND_SHUTDOWN -> -EPIPE",
                WR_THEN_WRITE,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c sosendcheck(): \
                 `so->so_state & SS_CANTSENDMORE` -> EPIPE (set by tcp_usr_shutdown() \
                 -> socantsendmore())",
                WR_THEN_WRITE,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 sosend_generic(): `so->so_snd.sb_state & SBS_CANTSENDMORE` -> EPIPE \
                 (set by tcp_usr_shutdown() -> socantsendmore())",
                WR_THEN_WRITE,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "shutdown.wr_with_unread_data_sends_fin",
        doc: "The client has 5 unread bytes queued and shutdown(SHUT_WR)s. Unlike close() with \
              unread data, this is an orderly FIN: the server reads EOF, not ECONNRESET, and the \
              client can still read its 5 bytes afterwards.",
        source: "shutdown(2); RFC 2525 §2.17 concerns close() only",
        server: Side::new(wr_unread_server),
        client: Side::new(wr_unread_client),
        expect: &[
            Expect::linux(
                "Linux tcp_shutdown() sends FIN without looking at the receive queue",
                WR_WITH_UNREAD_DATA_SENDS_FIN,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_usrreq.c tcp_usr_shutdown(): \
                 socantsendmore(), tcp_usrclosed(), FIN; the unread-data test that \
                 sends RST is in tcp_disconnect(), which only close() reaches",
                WR_WITH_UNREAD_DATA_SENDS_FIN,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_usrreq.c \
                 tcp_usr_shutdown(): socantsendmore(), tcp_usrclosed(), FIN; the \
                 receive buffer is flushed only by tcp_disconnect() (close) and \
                 sorflush() (SHUT_RD)",
                WR_WITH_UNREAD_DATA_SENDS_FIN,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "shutdown.rd_sends_nothing",
        doc: "The client shutdown(SHUT_RD)s with 5 bytes queued. Nothing goes to the peer: the \
              server sees no EOF within 200 ms. Locally, Linux still returns the queued bytes, \
              then EOF; and data the server sends afterwards is still accepted and readable \
              (Linux only marks the socket). The BSDs discard the queued bytes at once, so the \
              client reads EOF; data arriving later is discarded too (FreeBSD) or answered \
              with RST (macOS), and the client reads EOF again.",
        source: "shutdown(2); RFC 9293 has no receive-side shutdown",
        server: Side::new(rd_server),
        client: Side::new(rd_client),
        expect: &[
            Expect::linux(
                "Linux inet_shutdown() sets RCV_SHUTDOWN and tcp_shutdown() acts only \
                 on SEND_SHUTDOWN",
                Facts {
                    server: RD_SERVER,
                    client: &[
                        ("shutdown(SHUT_RD)", is("ok(0)")),
                        ("read#1", is("ok(5)")),
                        ("read#2", is("EOF")),
                        ("read after peer wrote", is("ok(5)")),
                        ("exit", is("exit 0")),
                    ],
                    wire: &[
                        // The step in which the client calls shutdown(SHUT_RD), and the 200 ms the
                        // server then watches: not a segment, in either direction.
                        WireFact::Silent {
                            from: "queued",
                            to: "shut",
                        },
                        WireFact::Silent {
                            from: "shut",
                            to: "watched",
                        },
                    ],
                },
            ),
            // Differs from Linux: soshutdownlock_final(): `if (how != SHUT_WR) { ...
            // sorflush(so); }`; sorflush() calls socantrcvmore(), empties the buffer and sets
            // SB_DROP, so both reads see EOF. Data arriving later is answered with RST by
            // tcp_input(): `if (so->so_state & SS_CANTRCVMORE) { ... close_it = TRUE; }` ->
            // tcp_close(), dropwithreset (no so_error: the read after it sees EOF).
            // SHUT_RD itself sends nothing (sorflush() calls no tcp_output()), and the ACK of
            // the 5 bytes is not delayed into the silent steps: a new tcpcb starts with
            // `tp->t_forced_acks = TCP_FORCED_ACKS_COUNT` (16, tcp_newtcpcb()), and
            // tcp_cc_delay_ack() delays none while `tp->t_forced_acks == 0` does not hold.
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c soshutdownlock_final(): \
                 SHUT_RD -> sorflush(): socantrcvmore(), buffer emptied, SB_DROP; \
                 bsd/netinet/tcp_input.c tcp_input(): data with `so->so_state & \
                 SS_CANTRCVMORE` -> tcp_close(), dropwithreset",
                Facts {
                    server: RD_SERVER,
                    client: BSD_RD_CLIENT,
                    wire: &[
                        WireFact::Silent {
                            from: "queued",
                            to: "shut",
                        },
                        WireFact::Silent {
                            from: "shut",
                            to: "watched",
                        },
                        WireFact::ResetNotFin(Client),
                        // SHUT_RD sent no RST: the data written after it did.
                        WireFact::AfterStep((Client, Seg::Rst), "client read"),
                    ],
                },
            ),
            // Differs from Linux: soshutdown(): `if (how != SHUT_WR) sorflush(so);`;
            // sorflush() calls socantrcvmore() and sbrelease(), so both reads see EOF. Data
            // arriving later is acknowledged and freed by tcp_do_segment(): `if
            // (so->so_rcv.sb_state & SBS_CANTRCVMORE) m_freem(m);`. Linux's Silent facts are
            // left out: SHUT_RD sends nothing, but FreeBSD delays the ACK of the 5 bytes
            // (DELAY_ACK(), TCPTV_DELACK = hz/25, 40 ms), which then lands in those steps.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 soshutdown(): `if (how != SHUT_WR) sorflush(so)`; sorflush(): \
                 socantrcvmore(), sbrelease(); sys/netinet/tcp_input.c \
                 tcp_do_segment(): SBS_CANTRCVMORE -> m_freem(m)",
                Facts {
                    server: RD_SERVER,
                    client: BSD_RD_CLIENT,
                    wire: &[
                        // SHUT_RD sent no FIN: the client's comes with its close at exit.
                        WireFact::AfterStep((Client, Seg::Fin), "watched"),
                    ],
                },
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "shutdown.rdwr",
        doc: "The client shutdown(SHUT_RDWR)s. The server reads EOF (a FIN went out); the client \
              reads EOF and its write fails with EPIPE (SIGPIPE ignored).",
        source: "shutdown(2)",
        server: Side::new(accept_and_read_eof),
        client: Side::new(rdwr_client),
        expect: &[
            Expect::linux("Linux inet_shutdown() with SHUTDOWN_MASK", RDWR),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c soshutdownlock_final(): \
                 SHUT_RDWR -> sorflush() then tcp_usr_shutdown() (FIN); soreceive(): \
                 SS_CANTRCVMORE -> 0; sosendcheck(): SS_CANTSENDMORE -> EPIPE",
                RDWR,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 soshutdown(): SHUT_RDWR -> sorflush() then tcp_usr_shutdown() (FIN); \
                 soreceive_generic(): SBS_CANTRCVMORE -> 0; sosend_generic(): \
                 SBS_CANTSENDMORE -> EPIPE",
                RDWR,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "shutdown.unconnected",
        doc: "shutdown() on a TCP socket that was never connected fails with ENOTCONN, in every \
              direction.",
        source: "POSIX shutdown(): ENOTCONN 'the socket is not connected'",
        server: Side::new(idle_server),
        client: Side::new(unconnected_client),
        expect: &[
            Expect::linux("Linux inet_shutdown(): TCP_CLOSE -> -ENOTCONN", UNCONNECTED),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c soshutdown(): none of \
                 SS_ISCONNECTED | SS_ISCONNECTING | SS_ISDISCONNECTING -> ENOTCONN",
                UNCONNECTED,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 soshutdown(): not connected, `so->so_type != SOCK_DGRAM && \
                 !SOLISTENING(so)` -> ENOTCONN",
                UNCONNECTED,
            ),
        ],
        ..Case::DEFAULTS
    },
];

// Facts that several OSes share. A list used by one OS only is written in its expectation.

/// `shutdown.wr_half_close`, the same on every OS.
const WR_HALF_CLOSE: Facts = Facts {
    server: &[
        ("read request", is("ok(7)")),
        ("read#2", is("EOF")),
        ("state after EOF", is("CLOSE_WAIT")),
        ("write reply", is("ok(100000)")),
        ("close", is("ok(0)")),
        ("exit", is("exit 0")),
    ],
    client: &[
        ("write request", is("ok(7)")),
        ("shutdown(SHUT_WR)", is("ok(0)")),
        ("read reply", is("ok(100000)")),
        ("read reply.end", is("EOF")),
        ("exit", is("exit 0")),
    ],
    wire: &[
        // The full FIN/ACK exchange, with the reply between the two FINs.
        WireFact::Between {
            seg: (Server, Seg::Data),
            after: (Client, Seg::Fin),
            before: (Server, Seg::Fin),
        },
        WireFact::FinAcked(Client),
        WireFact::FinAcked(Server),
        WireFact::Count(Client, Seg::Data, 1),
        WireFact::Count(Client, Seg::Rst, 0),
        WireFact::Count(Server, Seg::Rst, 0),
    ],
};

/// `shutdown.wr_then_write`, the same on every OS.
const WR_THEN_WRITE: Facts = Facts {
    server: READ_EOF_EXIT,
    client: &[
        ("shutdown(SHUT_WR)", is("ok(0)")),
        ("write", is("EPIPE")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};

/// `shutdown.wr_with_unread_data_sends_fin`, the same on every OS.
const WR_WITH_UNREAD_DATA_SENDS_FIN: Facts = Facts {
    server: &[
        ("write", is("ok(5)")),
        ("read", is("EOF")),
        ("exit", is("exit 0")),
    ],
    client: &[
        ("shutdown(SHUT_WR)", is("ok(0)")),
        ("read", is("ok(5)")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};

/// `shutdown.rdwr`, the same on every OS.
const RDWR: Facts = Facts {
    server: READ_EOF_EXIT,
    client: &[
        ("shutdown(SHUT_RDWR)", is("ok(0)")),
        ("read", is("EOF")),
        ("write", is("EPIPE")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};

/// `shutdown.unconnected`, the same on every OS.
const UNCONNECTED: Facts = Facts {
    server: EXIT_ONLY,
    client: &[
        ("shutdown(SHUT_RD)", is("ENOTCONN")),
        ("shutdown(SHUT_WR)", is("ENOTCONN")),
        ("shutdown(SHUT_RDWR)", is("ENOTCONN")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};

const RD_SERVER: &[(&str, Matcher)] = &[
    ("write", is("ok(5)")),
    ("poll for EOF", is("timeout")),
    ("write later", is("ok(5)")),
    ("exit", is("exit 0")),
];
/// The BSDs: SHUT_RD flushed the queued bytes, and nothing is queued after it.
const BSD_RD_CLIENT: &[(&str, Matcher)] = &[
    ("shutdown(SHUT_RD)", is("ok(0)")),
    ("read#1", is("EOF")),
    ("read#2", is("EOF")),
    ("read after peer wrote", is("EOF")),
    ("exit", is("exit 0")),
];

fn wr_half_close_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.read("read request", &conn, 64);
    ctx.read("read#2", &conn, 64);
    ctx.tcp_state("state after EOF", &conn);
    ctx.write("write reply", &conn, &[b'r'; REPLY_LEN]);
    ctx.close("close", conn);
}

fn wr_half_close_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.write("write request", &conn, b"request");
    ctx.shutdown("shutdown(SHUT_WR)", &conn, Shutdown::Write);
    ctx.read_to_end("read reply", &conn);
}

fn wr_then_write_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.shutdown("shutdown(SHUT_WR)", &conn, Shutdown::Write);
    ctx.write("write", &conn, b"hello");
}

fn wr_unread_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.write("write", &conn, b"hello");
    ctx.read("read", &conn, 64);
    ctx.sync("server read");
}

fn wr_unread_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.await_queued(&conn, 5);
    ctx.shutdown("shutdown(SHUT_WR)", &conn, Shutdown::Write);
    ctx.sync("server read");
    ctx.read("read", &conn, 64);
}

fn rd_server(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.write("write", &conn, b"hello");
    ctx.sync("queued");
    ctx.sync("shut");
    ctx.poll("poll for EOF", &conn, POLL_PEER_CLOSED, NO_EOF_WATCH);
    ctx.sync("watched");
    ctx.sync("client read");
    ctx.write("write later", &conn, b"later");
    ctx.sync("sent later");
}

fn rd_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.await_queued(&conn, 5);
    // The data and its ACK are on the wire before this barrier; the next step is the call.
    ctx.sync("queued");
    ctx.shutdown("shutdown(SHUT_RD)", &conn, Shutdown::Read);
    ctx.sync("shut");
    ctx.sync("watched");
    ctx.read("read#1", &conn, 64);
    ctx.read("read#2", &conn, 64);
    ctx.sync("client read");
    ctx.sync("sent later");
    ctx.await_queued(&conn, 5);
    ctx.read("read after peer wrote", &conn, 64);
}

fn rdwr_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.shutdown("shutdown(SHUT_RDWR)", &conn, Shutdown::Both);
    ctx.read("read", &conn, 64);
    ctx.write("write", &conn, b"hello");
}

fn idle_server(_ctx: &mut Ctx) {}

fn unconnected_client(ctx: &mut Ctx) {
    let sock = ctx.tcp_socket();
    ctx.shutdown("shutdown(SHUT_RD)", &sock, Shutdown::Read);
    ctx.shutdown("shutdown(SHUT_WR)", &sock, Shutdown::Write);
    ctx.shutdown("shutdown(SHUT_RDWR)", &sock, Shutdown::Both);
}
