//! SO_LINGER: abort with {1,0}, a close() that blocks for the linger time, and what exit and the
//! default do instead.
//!
//! In the three full-buffer cases the server is the sender: its send buffer (SO_SNDBUF 64 KiB)
//! is far larger than the client's receive buffer (SO_RCVBUF 4 KiB), and the client does not
//! read, so after the server has written until EAGAIN, data is left unsent behind a zero window
//! and the FIN cannot be acknowledged. That is what a lingering close() waits for.
//!
//! The linger time is set with socket2's `set_linger`, which on Apple platforms sets
//! SO_LINGER_SEC (seconds): XNU's plain SO_LINGER counts in ticks of 1/100 s
//! (xnu-11417.121.6 bsd/kern/uipc_socket.c sosetoptlock(): `so->so_linger = (short)l.l_linger`
//! for SO_LINGER, `l.l_linger * hz` for SO_LINGER_SEC; soclose_locked() sleeps
//! `so->so_linger / 100` seconds), so SO_LINGER {1,1} there would linger 10 ms, not 1 s.
//! FreeBSD's SO_LINGER is in seconds (soclose(): `tsleep(..., so->so_linger * hz)`).
//! macOS and FreeBSD expectations are read in xnu-11417.121.6 and FreeBSD 14.0-STABLE
//! (ilnp-freebsd14 2f2a416); see `close.rs` for the trees.

use crate::script::{abort, accept_one, bind_again, connect_to_server, connect_with};
use harness::observe::sock::{local_port, set_linger};
use harness::Role::{Client, Server};
use harness::{any_ms, is, Case, Ctx, Expect, Facts, Matcher, Seg, Side, Value, WireFact};
use nix::errno::Errno;
use nix::sys::socket::Shutdown;
use socket2::Socket;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// The sender's SO_SNDBUF and the receiver's SO_RCVBUF in the full-buffer cases: the sender can
/// queue far more than the receiver can take.
const SENDER_SNDBUF: usize = 64 * 1024;
const RECEIVER_RCVBUF: usize = 4 * 1024;

/// A close() or exit that does not wait takes a few milliseconds even on a loaded machine; the
/// 1 s linger timeout is far above this.
const IMMEDIATE: Matcher = any_ms(0, 500);

/// A close() or exit that waits out the 1 s linger timeout.
const LINGERED: Matcher = any_ms(900, 3000);

pub static CASES: &[Case] = &[
    Case {
        id: "linger.zero_sends_rst",
        doc: "The server sets SO_LINGER {1,0} on the accepted socket and close()s it: the \
              connection is aborted with RST instead of FIN, so the client's read fails with \
              ECONNRESET (then EOF). The aborting side skips TIME_WAIT: once its listener is \
              closed too, a fresh socket without SO_REUSEADDR binds the same port at once.",
        source: "socket(7) SO_LINGER; RFC 9293 §3.10.4 (ABORT call)",
        server: Side::new(zero_sends_rst_server),
        client: Side::new(reset_reader_client),
        expect: &[
            Expect::linux(
                "Linux tcp_close(): SOCK_LINGER with zero lingertime -> \
                 tcp_disconnect() -> tcp_send_active_reset(), state CLOSE (no \
                 TIME_WAIT)",
                ZERO_SENDS_RST,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_usrreq.c tcp_disconnect(): \
                 `(so->so_options & SO_LINGER) && so->so_linger == 0` -> tcp_drop(): \
                 CLOSED, RST, tcp_close() (no TIME_WAIT); bsd/kern/uipc_socket.c \
                 soclose_locked(): no sleep while `so->so_linger > 0` fails",
                ZERO_SENDS_RST,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_usrreq.c \
                 tcp_disconnect(): `(so->so_options & SO_LINGER) && so->so_linger == 0` \
                 -> sys/netinet/tcp_subr.c tcp_drop(): CLOSED, RST, tcp_close() -> \
                 in_pcbdrop() (no TIME_WAIT)",
                ZERO_SENDS_RST,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "linger.zero_after_shutdown",
        doc: "The server shuts down its sending side (FIN), the client reads EOF, then the server \
              close()s with SO_LINGER {1,0}. The abort still sends RST from FIN_WAIT_2: the \
              client, in CLOSE_WAIT, has nothing left to read: EOF again on Linux, which \
              reports a reset in CLOSE_WAIT as EPIPE, not ECONNRESET; ECONNRESET on macOS and \
              FreeBSD. Its next write fails with EPIPE.",
        source: "socket(7) SO_LINGER; RFC 9293 §3.10.7 (RST processing)",
        server: Side::new(zero_after_shutdown_server),
        client: Side::new(zero_after_shutdown_client),
        expect: &[
            Expect::linux(
                "Linux tcp_close() -> tcp_disconnect(): tcp_need_reset() holds for \
                 FIN_WAIT1/FIN_WAIT2; tcp_reset(): CLOSE_WAIT -> sk_err = EPIPE",
                Facts {
                    server: ZERO_AFTER_SHUTDOWN_SERVER,
                    client: &[
                        ("read#1", is("EOF")),
                        ("read#2", is("EOF")),
                        ("write", is("EPIPE")),
                        ("exit", is("exit 0")),
                    ],
                    wire: ZERO_AFTER_SHUTDOWN_WIRE,
                },
            ),
            // Differs from Linux in read#2: tcp_input(), RST processing, `case
            // TCPS_CLOSE_WAIT: ... so->so_error = ECONNRESET`, which soreceive() returns before
            // it looks at SS_CANTRCVMORE.
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_usrreq.c tcp_disconnect(): linger 0 \
                 -> tcp_drop() sends RST from FIN_WAIT_1/2 (TCPS_HAVERCVDSYN); \
                 bsd/netinet/tcp_input.c tcp_input(): RST in CLOSE_WAIT -> so_error = \
                 ECONNRESET; bsd/kern/uipc_socket.c soreceive(): so_error first",
                BSD_ZERO_AFTER_SHUTDOWN,
            ),
            // Differs from Linux in read#2: tcp_do_segment(), RST processing, `case
            // TCPS_CLOSE_WAIT: ... so->so_error = ECONNRESET`, which soreceive_generic()
            // returns before it looks at SBS_CANTRCVMORE.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_usrreq.c \
                 tcp_usr_close() -> tcp_disconnect(): linger 0 -> tcp_drop() sends RST \
                 from FIN_WAIT_1/2 (TCPS_HAVERCVDSYN); sys/netinet/tcp_input.c \
                 tcp_do_segment(): RST in CLOSE_WAIT -> so_error = ECONNRESET; \
                 sys/kern/uipc_socket.c soreceive_generic(): so_error first",
                BSD_ZERO_AFTER_SHUTDOWN,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "linger.timeout_blocks_close",
        doc: "The client does not read and the server's buffers are full. close() with SO_LINGER \
              {1,1} blocks for the linger time, about 1 s. Linux and macOS then return 0, \
              FreeBSD returns EWOULDBLOCK (EAGAIN); none discards the data. The socket lives \
              on, orphaned, and the client, reading at last, gets every byte, then EOF.",
        source: "socket(7) SO_LINGER (\"close() blocks until ... or the linger timeout has \
                 expired\"); POSIX close() leaves what happens to unsent data unspecified",
        server: Side::new(timeout_blocks_close_server),
        client: Side::new(slow_reader_client),
        expect: &[
            Expect::linux(
                "Linux inet_release() -> tcp_close() -> sk_stream_wait_close()",
                TIMEOUT_BLOCKS_CLOSE_LINUX_MACOS,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c soclose_locked(): msleep() \
                 while SS_ISCONNECTED for so_linger/100 s, then `if (error == \
                 EWOULDBLOCK) error = 0` (\"It's OK when the time fires, don't report \
                 an error\"); pru_detach -> tcp_disconnect() in FIN_WAIT_1 keeps the \
                 data",
                TIMEOUT_BLOCKS_CLOSE_LINUX_MACOS,
            ),
            // Differs from Linux: soclose() `error = tsleep(&so->so_timeo, PSOCK | PCATCH,
            // "soclos", so->so_linger * hz); if (error) break;` and returns that error, which
            // soo_close() -> closef() -> closefp_impl() hand back to close(2): EWOULDBLOCK
            // (= EAGAIN, rendered so by nix). pr_close = tcp_usr_close() then keeps the
            // connection: tcp_disconnect() in FIN_WAIT_1 only flushes the receive buffer.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 soclose(): tsleep(..., so->so_linger * hz) while SS_ISCONNECTED, its \
                 EWOULDBLOCK returned; sys/kern/kern_descrip.c closefp_impl() returns \
                 closef()'s error to close(2)",
                Facts {
                    server: &[
                        ("write until full", is("EAGAIN")),
                        ("close(linger 1s)", is("EAGAIN")),
                        ("close(linger 1s).ms", LINGERED),
                        ("exit", is("exit 0")),
                    ],
                    client: READ_ALL_CLIENT,
                    wire: &[],
                },
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "linger.not_applied_on_exit",
        doc: "The same full buffers and SO_LINGER {1,1}, but the server exits instead of calling \
              close(). On Linux the linger time is not applied when the descriptor is closed by \
              exit: the runner reaps the server at once (measured by the client, from the \
              barrier the server passed last to the one the runner opens when the server is \
              reaped). macOS and FreeBSD have no such exception: exit closes the socket through \
              the same lingering close, and the server is reaped after about 1 s. Either way \
              the socket then lives on, and the client still reads every byte, then EOF.",
        source: "socket(7) SO_LINGER (\"When the socket is closed as part of exit(2), it always \
                 lingers in the background\", Linux only); _exit(2)",
        server: Side::new(not_applied_on_exit_server),
        client: Side::new(not_applied_on_exit_client),
        expect: &[
            Expect::linux(
                "Linux inet_release(): no timeout when PF_EXITING",
                Facts {
                    server: FILLED_THEN_EXIT_SERVER,
                    client: &[
                        ("server reaped.ms", IMMEDIATE),
                        ("read all written", is("yes")),
                        ("read.end", is("EOF")),
                        ("exit", is("exit 0")),
                    ],
                    wire: &[],
                },
            ),
            // Differs from Linux: soclose_locked() has no exiting-process test; exit reaches it
            // through proc_exit() -> fdt_invalidate() -> fp_close_and_unlock(). Its msleep() is
            // PCATCH, but thread_apc_ast() clears the thread's abort flags
            // (`thread->sched_flags &= ~TH_SFLAG_ABORTED_MASK`) before thread_terminate_self()
            // runs proc_exit(), and no signal is pending, so the sleep lasts the linger time.
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/kern_exit.c proc_exit() -> \
                 bsd/kern/kern_descrip.c fdt_invalidate() -> ... -> \
                 bsd/kern/uipc_socket.c soclose_locked(): msleep() for so_linger, no \
                 exception for an exiting process",
                BSD_NOT_APPLIED_ON_EXIT,
            ),
            // Differs from Linux: soclose() has no exiting-process test, and exit1() ->
            // fdescfree() -> closef() reaches it like close(2); its tsleep() is PCATCH but
            // nothing is pending for an exiting single-threaded process, so it sleeps the
            // linger time.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/kern_exit.c \
                 exit1() -> sys/kern/kern_descrip.c fdescfree() -> closef() -> \
                 sys/kern/uipc_socket.c soclose(): tsleep() for so_linger * hz, no \
                 exception for an exiting process",
                BSD_NOT_APPLIED_ON_EXIT,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "linger.default_close_is_immediate",
        doc: "Without SO_LINGER, close() returns at once even though the send buffer is full of \
              data the client has not read yet. The kernel keeps sending in the background: the \
              client reads every byte, then EOF.",
        source: "close(2); socket(7) SO_LINGER (off by default); RFC 9293 §3.10.4 (CLOSE: queued \
                 data is still sent)",
        server: Side::new(default_close_server),
        client: Side::new(slow_reader_client),
        expect: &[
            Expect::linux(
                "Linux tcp_close() with no linger time",
                DEFAULT_CLOSE_IS_IMMEDIATE,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c soclose_locked(): sleeps only \
                 `if (so->so_options & SO_LINGER)`; tcp_disconnect() -> \
                 tcp_usrclosed(): FIN_WAIT_1, the queued data still sent",
                DEFAULT_CLOSE_IS_IMMEDIATE,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 soclose(): sleeps only `if ((so->so_options & SO_LINGER) != 0 && \
                 so->so_linger != 0)`; tcp_disconnect() -> tcp_usrclosed(): \
                 FIN_WAIT_1, the queued data still sent",
                DEFAULT_CLOSE_IS_IMMEDIATE,
            ),
        ],
        ..Case::DEFAULTS
    },
];

// Facts that several OSes share. A list used by one OS only is written in its expectation.

/// `linger.zero_sends_rst`, the same on every OS.
const ZERO_SENDS_RST: Facts = Facts {
    server: &[
        ("close(linger 0)", is("ok(0)")),
        ("close(listener)", is("ok(0)")),
        ("bind(same port, no SO_REUSEADDR)", is("ok(0)")),
        ("exit", is("exit 0")),
    ],
    client: &[
        ("read#1", is("ECONNRESET")),
        ("read#2", is("EOF")),
        ("exit", is("exit 0")),
    ],
    wire: &[
        WireFact::ResetNotFin(Server),
        WireFact::Count(Server, Seg::Rst, 1),
        WireFact::Count(Client, Seg::Fin, 0),
    ],
};

/// `linger.zero_after_shutdown` on macOS and FreeBSD: the RST in CLOSE_WAIT is ECONNRESET,
/// read once.
const BSD_ZERO_AFTER_SHUTDOWN: Facts = Facts {
    server: ZERO_AFTER_SHUTDOWN_SERVER,
    client: &[
        ("read#1", is("EOF")),
        ("read#2", is("ECONNRESET")),
        ("write", is("EPIPE")),
        ("exit", is("exit 0")),
    ],
    wire: ZERO_AFTER_SHUTDOWN_WIRE,
};

/// `linger.timeout_blocks_close` on Linux and macOS.
const TIMEOUT_BLOCKS_CLOSE_LINUX_MACOS: Facts = Facts {
    server: &[
        ("write until full", is("EAGAIN")),
        ("close(linger 1s)", is("ok(0)")),
        ("close(linger 1s).ms", LINGERED),
        ("exit", is("exit 0")),
    ],
    client: READ_ALL_CLIENT,
    wire: &[],
};

/// `linger.not_applied_on_exit` on macOS and FreeBSD: exit lingers like close().
const BSD_NOT_APPLIED_ON_EXIT: Facts = Facts {
    server: FILLED_THEN_EXIT_SERVER,
    client: &[
        ("server reaped.ms", LINGERED),
        ("read all written", is("yes")),
        ("read.end", is("EOF")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};

/// `linger.default_close_is_immediate`, the same on every OS.
const DEFAULT_CLOSE_IS_IMMEDIATE: Facts = Facts {
    server: &[
        ("write until full", is("EAGAIN")),
        ("close", is("ok(0)")),
        ("close.ms", IMMEDIATE),
        ("exit", is("exit 0")),
    ],
    client: READ_ALL_CLIENT,
    wire: &[],
};

const ZERO_AFTER_SHUTDOWN_SERVER: &[(&str, Matcher)] = &[
    ("shutdown(SHUT_WR)", is("ok(0)")),
    ("close(linger 0)", is("ok(0)")),
    ("exit", is("exit 0")),
];
const ZERO_AFTER_SHUTDOWN_WIRE: &[WireFact] = &[
    // shutdown() sent the FIN; the abortive close() then sends RST, not nothing.
    WireFact::Before((Server, Seg::Fin), (Server, Seg::Rst)),
    WireFact::AfterStep((Server, Seg::Rst), "eof read"),
    WireFact::Count(Server, Seg::Fin, 1),
    WireFact::Count(Server, Seg::Rst, 1),
    WireFact::Count(Client, Seg::Fin, 0),
];

const FILLED_THEN_EXIT_SERVER: &[(&str, Matcher)] =
    &[("write until full", is("EAGAIN")), ("exit", is("exit 0"))];
/// The client of a full-buffer case reads every byte the server wrote, then EOF.
const READ_ALL_CLIENT: &[(&str, Matcher)] = &[
    ("read all written", is("yes")),
    ("read.end", is("EOF")),
    ("exit", is("exit 0")),
];

fn zero_sends_rst_server(ctx: &mut Ctx) {
    let (listener, conn) = accept_one(ctx);
    let port = local_port(&listener);
    ctx.sync("connected");
    abort(ctx, conn);
    ctx.close("close(listener)", listener);
    ctx.sync("closed");
    bind_again(ctx, "bind(same port, no SO_REUSEADDR)", port);
}

fn reset_reader_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.sync("connected");
    ctx.sync("closed");
    ctx.await_reset(&conn);
    ctx.read("read#1", &conn, 64);
    ctx.read("read#2", &conn, 64);
}

fn zero_after_shutdown_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    ctx.shutdown("shutdown(SHUT_WR)", &conn, Shutdown::Write);
    ctx.sync("shut");
    ctx.sync("eof read");
    // The client's ACK of the FIN must have been processed before the abort: under load it can
    // otherwise reach the server after the RST (loopback does not keep order across CPUs),
    // and the closed socket answers it with a second RST.
    ctx.await_tcp_state(&conn, "FIN_WAIT2");
    abort(ctx, conn);
    ctx.sync("closed");
}

fn zero_after_shutdown_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.sync("shut");
    ctx.await_readable(&conn);
    ctx.read("read#1", &conn, 64);
    ctx.sync("eof read");
    ctx.sync("closed");
    ctx.await_reset(&conn);
    ctx.read("read#2", &conn, 64);
    ctx.write("write", &conn, b"hello");
}

/// Server of the full-buffer cases: accept with a large SO_SNDBUF, then write without blocking
/// until the kernel takes no more (recorded: the errno that stopped it). Returns the listener,
/// the connection (blocking again) and how many bytes the kernel took.
fn accept_and_fill(ctx: &mut Ctx) -> (Socket, Socket, u64) {
    let sock = ctx.tcp_socket();
    sock.set_send_buffer_size(SENDER_SNDBUF)
        .expect("setsockopt(SO_SNDBUF)");
    let (listener, port) = ctx.listen_with(sock, 8);
    ctx.sync_with("listening", port.into());
    let conn = ctx.accept(&listener);
    conn.set_nonblocking(true).expect("O_NONBLOCK");
    let chunk = [0x5a_u8; 16 * 1024];
    let mut written = 0u64;
    ctx.begin("write until full");
    let stop = loop {
        match nix::unistd::write(&conn, &chunk) {
            Ok(n) => written += n as u64,
            Err(Errno::EINTR) => {}
            Err(e) => break Value::errno(e),
        }
    };
    ctx.record("write until full", stop);
    conn.set_nonblocking(false).expect("O_NONBLOCK off");
    (listener, conn, written)
}

fn timeout_blocks_close_server(ctx: &mut Ctx) {
    let (_listener, conn, written) = accept_and_fill(ctx);
    set_linger(&conn, Some(1));
    ctx.close_timed("close(linger 1s)", conn);
    ctx.sync_with("closed", written);
}

fn default_close_server(ctx: &mut Ctx) {
    let (_listener, conn, written) = accept_and_fill(ctx);
    ctx.close_timed("close", conn);
    ctx.sync_with("closed", written);
}

fn not_applied_on_exit_server(ctx: &mut Ctx) {
    let (listener, conn, written) = accept_and_fill(ctx);
    set_linger(&conn, Some(1));
    ctx.sync_with("full", written);
    // Returns with both sockets open: the side exits, and exit closes them.
    std::mem::forget(conn);
    std::mem::forget(listener);
}

/// Client of the full-buffer cases: a small receive buffer, set before connect() so that the
/// window is small from the start.
fn connect_small_window(ctx: &mut Ctx) -> Socket {
    let sock = ctx.tcp_socket();
    sock.set_recv_buffer_size(RECEIVER_RCVBUF)
        .expect("setsockopt(SO_RCVBUF)");
    connect_with(ctx, sock)
}

fn slow_reader_client(ctx: &mut Ctx) {
    let conn = connect_small_window(ctx);
    let written = ctx.sync_with("closed", 0);
    read_all_written(ctx, &conn, written);
}

fn not_applied_on_exit_client(ctx: &mut Ctx) {
    let conn = connect_small_window(ctx);
    let written = ctx.sync_with("full", 0);
    let start = Instant::now();
    // The server does not come to this barrier: the runner opens it once the server is reaped.
    ctx.sync("server reaped");
    let took = start.elapsed().as_millis() as u64;
    ctx.record("server reaped.ms", Value::Millis(took));
    read_all_written(ctx, &conn, written);
}

/// Read until EOF or an error. Records whether exactly the `written` bytes arrived (`yes`, or
/// how many did), and how the stream ended (`read.end`).
fn read_all_written(ctx: &mut Ctx, conn: &Socket, written: u64) {
    let mut buf = [0u8; 64 * 1024];
    let mut total = 0u64;
    ctx.begin("read");
    let end = loop {
        match nix::unistd::read(conn.as_raw_fd(), &mut buf) {
            Ok(0) => break Value::Eof,
            Ok(n) => total += n as u64,
            Err(Errno::EINTR) => {}
            Err(e) => break Value::errno(e),
        }
    };
    let all = if total == written {
        "yes".to_string()
    } else {
        format!("{total} of {written} bytes")
    };
    ctx.record("read all written", Value::Text(all));
    ctx.record("read.end", end);
}
