//! close(): what the peer sees when a connection is closed, with and without unread data,
//! explicitly, by exit, by SIGKILL, or by an abort.
//!
//! macOS and FreeBSD expectations are read in xnu-11417.121.6 and in FreeBSD 14.0-STABLE
//! (ilnp-freebsd14 2f2a416, whose ILNP changes are compiled only under `options ILNP6` and do
//! not touch the functions cited). TCP states are named as the harness names them on every OS
//! (Linux's `include/net/tcp_states.h` spelling: `FIN_WAIT2`, `CLOSE_WAIT`, `TIME_WAIT`).
//!
//! Where the BSDs differ from Linux, it is for three reasons, each cited at its case:
//! - FreeBSD's close() discards unread data and sends FIN, not RST (tcp_disconnect()).
//! - A RST received in CLOSE_WAIT is ECONNRESET on both BSDs (tcp_input()), EPIPE on Linux.
//! - After a RST, both BSDs' send paths test "cannot send more" before the pending error, so a
//!   write reports EPIPE and leaves ECONNRESET for the next read (FreeBSD sosend_generic(),
//!   XNU sosendcheck()); Linux's write reports the pending ECONNRESET first.

use crate::facts::{ABORT_EXIT, CLIENT_CLOSES_FIRST_ORDERLY, CLOSE_EXIT, EXIT_ONLY, READ_EOF_EXIT};
use crate::script::{abort, accept_one, connect_to_server, write_twice};
use harness::Role::{Client, Server};
use harness::{is, Case, Ctx, Expect, Facts, Matcher, Seg, Side, WireFact};
use nix::sys::signal::{raise, Signal};
use nix::sys::socket::Shutdown;

pub static CASES: &[Case] = &[
    Case {
        id: "close.fin_then_eof",
        doc: "The client writes 5 bytes and close()s. The server reads the 5 bytes, then EOF: an \
              orderly close sends FIN after the data, and FIN reads as end-of-file.",
        source: "RFC 9293 §3.6 (closing a connection); close(2)",
        server: Side::new(fin_then_eof_server),
        client: Side::new(fin_then_eof_client),
        expect: &[
            Expect::linux("Linux tcp_close() -> tcp_send_fin()", FIN_THEN_EOF),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c soclose_locked() -> \
                 sodisconnectlocked() -> bsd/netinet/tcp_usrreq.c tcp_disconnect() \
                 (nothing unread) -> tcp_usrclosed(): ESTABLISHED -> FIN_WAIT_1, \
                 tcp_output() sends the FIN; bsd/kern/uipc_socket.c soreceive(): \
                 SS_CANTRCVMORE with nothing queued returns 0",
                FIN_THEN_EOF,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 soclose() -> sodisconnect() -> sys/netinet/tcp_usrreq.c \
                 tcp_disconnect() -> tcp_usrclosed(): ESTABLISHED -> FIN_WAIT_1, \
                 tcp_output_nodrop() sends the FIN; sys/kern/uipc_socket.c \
                 soreceive_generic(): SBS_CANTRCVMORE with nothing queued returns 0",
                FIN_THEN_EOF,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "close.unread_data_sends_rst",
        doc: "The server close()s while 5 bytes it never read sit in its receive buffer. Instead \
              of FIN the kernel sends RST, so the client's first read fails with ECONNRESET; the \
              reset is reported once, after which reads see EOF and writes fail with EPIPE \
              (SIGPIPE ignored). So on Linux and macOS; FreeBSD discards the unread bytes and \
              sends an orderly FIN: the client reads EOF twice, its write succeeds, and only \
              that write's data draws a RST from the closed socket.",
        source: "RFC 2525 §2.17 (failure to RST on close with data pending); close(2)",
        server: Side::new(unread_data_server),
        client: Side::new(unread_data_client),
        expect: &[
            Expect::linux(
                "Linux tcp_close(): data_was_unread -> tcp_send_active_reset()",
                UNREAD_DATA_RST,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_usrreq.c tcp_disconnect(): \
                 `if (so->so_rcv.sb_cc != 0 || tp->t_reassqlen != 0 ...) return \
                 tcp_drop(tp, 0)` (RST); bsd/netinet/tcp_input.c tcp_input(): RST in \
                 ESTABLISHED -> so_error = ECONNRESET, tcp_close() -> soisdisconnected(); \
                 bsd/kern/uipc_socket.c soreceive(): so_error once, then SS_CANTRCVMORE \
                 -> 0; sosendcheck(): SS_CANTSENDMORE -> EPIPE",
                UNREAD_DATA_RST,
            ),
            // Differs from Linux: FreeBSD's tcp_disconnect() has no unread-data test; it flushes
            // the receive buffer and closes as usual: `soisdisconnecting(so); sbflush(&so->so_rcv);
            // tcp_usrclosed(tp);`. The client, in CLOSE_WAIT, may still send; the data reaching
            // the closed socket is answered by RST in tcp_do_segment(): `if ((tp->t_flags &
            // TF_CLOSED) && tlen) ... goto dropwithreset`. Whether the client's own FIN follows
            // (it exits at once) races that RST, so the wire facts stop at the server's.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_usrreq.c \
                 tcp_disconnect(): `sbflush(&so->so_rcv); tcp_usrclosed(tp)` (FIN, no \
                 unread-data test); sys/netinet/tcp_input.c tcp_do_segment(): \
                 `(tp->t_flags & TF_CLOSED) && tlen` -> RST",
                Facts {
                    server: CLOSE_EXIT,
                    client: &[
                        ("write", is("ok(5)")),
                        ("read#1", is("EOF")),
                        ("read#2", is("EOF")),
                        ("write#2", is("ok(5)")),
                        ("exit", is("exit 0")),
                    ],
                    wire: &[
                        WireFact::Count(Server, Seg::Fin, 1),
                        WireFact::FinAcked(Server),
                        WireFact::Before((Server, Seg::Fin), (Server, Seg::Rst)),
                    ],
                },
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "close.peer_writes_after_close",
        doc: "The client close()s. The server reads EOF and writes anyway: the first write \
              succeeds (the data is queued and sent), the client's kernel answers it with RST, \
              and only the second write fails, with EPIPE. On Linux a RST received in \
              CLOSE_WAIT is reported as EPIPE, not ECONNRESET, and the read after it sees EOF; \
              on macOS and FreeBSD it is ECONNRESET, which the EPIPE write leaves pending, so \
              the read after it fails with ECONNRESET. SIGPIPE is ignored.",
        source: "RFC 9293 §3.10.7.4 (segment for a closed connection elicits RST)",
        server: Side::new(peer_writes_after_close_server),
        client: Side::new(peer_writes_after_close_client),
        expect: &[
            Expect::linux(
                "Linux tcp_reset(): CLOSE_WAIT -> sk_err = EPIPE",
                Facts {
                    server: &[
                        ("read", is("EOF")),
                        ("write#1", is("ok(5)")),
                        ("write#2", is("EPIPE")),
                        ("read#2", is("EOF")),
                        ("exit", is("exit 0")),
                    ],
                    client: CLOSE_EXIT,
                    wire: PEER_WRITES_AFTER_CLOSE_WIRE,
                },
            ),
            // Differs from Linux: tcp_input(), RST processing, `case TCPS_CLOSE_WAIT: ...
            // so->so_error = ECONNRESET`; then sosendcheck() tests `so->so_state &
            // SS_CANTSENDMORE` (set by tcp_close() -> soisdisconnected()) and returns EPIPE
            // before it looks at so_error, which the read then returns.
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_input.c tcp_input(): data for a \
                 socket with SS_NOFDREF past CLOSE_WAIT -> dropwithreset; RST in \
                 CLOSE_WAIT -> so_error = ECONNRESET; bsd/kern/uipc_socket.c \
                 sosendcheck(): SS_CANTSENDMORE -> EPIPE before so_error; soreceive(): \
                 so_error first",
                BSD_PEER_WRITES_AFTER_CLOSE,
            ),
            // Differs from Linux: tcp_do_segment(), RST processing, `case TCPS_CLOSE_WAIT: ...
            // so->so_error = ECONNRESET`; sosend_generic() tests `so->so_snd.sb_state &
            // SBS_CANTSENDMORE` (set by tcp_close() -> soisdisconnected()) before so_error.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_input.c \
                 tcp_do_segment(): `(tp->t_flags & TF_CLOSED) && tlen` -> RST; RST in \
                 CLOSE_WAIT -> so_error = ECONNRESET; sys/kern/uipc_socket.c \
                 sosend_generic(): SBS_CANTSENDMORE -> EPIPE before so_error; \
                 soreceive_generic(): so_error first",
                BSD_PEER_WRITES_AFTER_CLOSE,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "close.read_after_reset",
        doc: "The client aborts (SO_LINGER {1,0}, then close()), which sends RST. The server's \
              first read reports ECONNRESET; the error is consumed, and the second read sees EOF.",
        source: "socket(7) SO_LINGER; RFC 9293 §3.10.7 (RST processing)",
        server: Side::new(read_after_reset_server),
        client: Side::new(abort_client),
        expect: &[
            Expect::linux(
                "Linux tcp_reset() sets sk_err = ECONNRESET, sock_error() clears it",
                READ_AFTER_RESET,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_usrreq.c tcp_disconnect(): \
                 `(so->so_options & SO_LINGER) && so->so_linger == 0` -> tcp_drop() (RST); \
                 bsd/netinet/tcp_input.c tcp_input(): RST in ESTABLISHED -> so_error = \
                 ECONNRESET; bsd/kern/uipc_socket.c soreceive(): so_error returned and \
                 cleared, then SS_CANTRCVMORE -> 0",
                READ_AFTER_RESET,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_usrreq.c \
                 tcp_disconnect(): `(so->so_options & SO_LINGER) && so->so_linger == 0` \
                 -> tcp_drop() (RST); sys/netinet/tcp_input.c tcp_do_segment(): RST in \
                 ESTABLISHED -> so_error = ECONNRESET; sys/kern/uipc_socket.c \
                 soreceive_generic(): so_error returned and cleared, then \
                 SBS_CANTRCVMORE -> 0",
                READ_AFTER_RESET,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "close.write_after_reset",
        doc: "The client aborts with SO_LINGER {1,0}. On Linux the server's first write reports \
              the reset (ECONNRESET); the second finds the connection shut for sending and fails \
              with EPIPE (SIGPIPE ignored). On macOS and FreeBSD both writes fail with EPIPE: \
              their send path tests 'cannot send more' before the pending error.",
        source: "socket(7) SO_LINGER; POSIX write(): EPIPE, ECONNRESET",
        server: Side::new(write_after_reset_server),
        client: Side::new(abort_client),
        expect: &[
            Expect::linux(
                "Linux sk_stream_error(): a pending sk_err wins over EPIPE",
                Facts {
                    server: &[
                        ("write#1", is("ECONNRESET")),
                        ("write#2", is("EPIPE")),
                        ("exit", is("exit 0")),
                    ],
                    client: ABORT_EXIT,
                    wire: &[WireFact::ResetNotFin(Client)],
                },
            ),
            // Differs from Linux: sosendcheck(): `if (so->so_state & SS_CANTSENDMORE) ...
            // return EPIPE;` comes before `if (so->so_error)`; the RST's tcp_close() ->
            // soisdisconnected() set SS_CANTSENDMORE.
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c sosendcheck(): SS_CANTSENDMORE \
                 -> EPIPE, tested before so_error; bsd/kern/uipc_socket2.c \
                 soisdisconnected() sets SS_CANTSENDMORE",
                BSD_WRITE_AFTER_RESET,
            ),
            // Differs from Linux: sosend_generic(): `if (so->so_snd.sb_state &
            // SBS_CANTSENDMORE) { ... error = EPIPE; ...}` comes before `if (so->so_error)`.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 sosend_generic(): SBS_CANTSENDMORE -> EPIPE, tested before so_error; \
                 soisdisconnected() sets SBS_CANTSENDMORE",
                BSD_WRITE_AFTER_RESET,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "close.exit_sends_fin",
        doc: "The client process exits without calling close(). The kernel closes its descriptors \
              at exit exactly as close() would: FIN, and the server reads EOF.",
        source: "_exit(2): open file descriptors are closed",
        server: Side::new(read_eof_server),
        client: Side::new(exit_client),
        expect: &[
            Expect::linux("Linux do_exit() -> close_files()", EXIT_SENDS_FIN),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/kern_exit.c proc_exit() -> fdt_invalidate() \
                 -> fp_close_and_unlock() -> closef_locked() -> soo_close() -> \
                 soclose() -> tcp_disconnect(): nothing unread -> FIN",
                EXIT_SENDS_FIN,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/kern_exit.c \
                 exit1() -> fdescfree() -> closef() -> soo_close() -> soclose() -> \
                 tcp_disconnect() -> FIN",
                EXIT_SENDS_FIN,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "close.kill_sends_fin",
        doc: "The client is killed by SIGKILL while connected. Its descriptors are closed like \
              any other's: FIN, not RST, and the server reads EOF.",
        source: "signal(7) SIGKILL; _exit(2): open file descriptors are closed",
        server: Side::new(read_eof_server),
        client: Side::new(killed_client),
        expect: &[
            Expect::linux(
                "Linux do_exit() -> close_files() -> tcp_close()",
                KILL_SENDS_FIN,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/kern_exit.c proc_exit() closes the \
                 descriptors as close() does -> soclose() -> tcp_disconnect(): nothing \
                 unread -> FIN",
                KILL_SENDS_FIN,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/kern_exit.c \
                 exit1() -> fdescfree() -> closef() -> soclose() -> tcp_disconnect() -> \
                 FIN",
                KILL_SENDS_FIN,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "close.kill_with_unread_data_sends_rst",
        doc: "The server writes 5 bytes; the client never reads them and is killed by SIGKILL. \
              The implicit close finds unread data and sends RST: the server's read fails with \
              ECONNRESET, then sees EOF. So on Linux and macOS; FreeBSD discards the unread \
              bytes and sends FIN, and the server reads EOF twice.",
        source: "RFC 2525 §2.17; _exit(2): open file descriptors are closed",
        server: Side::new(kill_with_unread_server),
        client: Side::new(kill_with_unread_client),
        expect: &[
            Expect::linux(
                "Linux tcp_close(): data_was_unread -> tcp_send_active_reset()",
                KILL_WITH_UNREAD_RST,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_usrreq.c tcp_disconnect(): \
                 `so->so_rcv.sb_cc != 0` -> tcp_drop(tp, 0) (RST), reached from exit as \
                 from close(); bsd/kern/uipc_socket.c soreceive(): so_error once, then \
                 0",
                KILL_WITH_UNREAD_RST,
            ),
            // Differs from Linux: tcp_disconnect() `sbflush(&so->so_rcv); tcp_usrclosed(tp);`
            // (no unread-data test): FIN, and the server reads EOF.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_usrreq.c \
                 tcp_disconnect(): `sbflush(&so->so_rcv); tcp_usrclosed(tp)` (FIN, no \
                 unread-data test)",
                Facts {
                    server: &[
                        ("write", is("ok(5)")),
                        ("read#1", is("EOF")),
                        ("read#2", is("EOF")),
                        ("exit", is("exit 0")),
                    ],
                    client: KILLED_CLIENT,
                    wire: DEAD_CLIENT_SENDS_FIN_WIRE,
                },
            ),
        ],
        ..Case::DEFAULTS
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
              records which of the two it saw. macOS and FreeBSD acknowledge a FIN at once, \
              before the reader can run: always four segments there.",
        source: "RFC 9293 §3.6 (a FIN may carry the ACK of the peer's FIN)",
        server: Side::new(three_segment_server),
        client: Side::new(three_segment_client),
        expect: &[
            Expect::linux(
                "Linux tcp_fin() -> inet_csk_enter_pingpong_mode(), \
                 tcp_send_delayed_ack() (TCP_DELACK_MIN = 40 ms)",
                Facts {
                    wire: &[WireFact::TeardownOneOf(&[
                        &[(Client, "FIN|ACK"), (Server, "FIN|ACK"), (Client, "ACK")],
                        FOUR_SEGMENT_TEARDOWN,
                    ])],
                    ..FOUR_SEGMENT_CLOSE
                },
            ),
            // Differs from Linux: tcp_input(), FIN processing: "since we received a FIN then no
            // more input can be expected, send ACK now": `tp->t_flags |= TF_ACKNOW`, and the
            // ACK is output before the segment's processing releases the socket lock that the
            // server's close() needs.
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_input.c tcp_input(): on a FIN, \
                 `tp->t_flags |= TF_ACKNOW` (ACK now, not delayed)",
                FOUR_SEGMENT_CLOSE,
            ),
            // Differs from Linux: tcp_do_segment(), FIN processing: `if (tp->t_flags &
            // TF_NEEDSYN) tp->t_flags |= TF_DELACK; else tp->t_flags |= TF_ACKNOW;`.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_input.c \
                 tcp_do_segment(): on a FIN, `tp->t_flags |= TF_ACKNOW` unless \
                 TF_NEEDSYN (ACK now, not delayed)",
                FOUR_SEGMENT_CLOSE,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "close.four_segment_close",
        doc: "The client sends its FIN with shutdown(SHUT_WR) and waits until it is in FIN_WAIT2, \
              that is until the server's kernel has acknowledged the FIN on its own (after the \
              delayed-ACK timer); only then does the server close(). Each FIN is acknowledged by \
              a segment of its own: FIN, ACK, FIN, ACK, deterministic on any load since the \
              server cannot close before its ACK is on the wire. On Linux the client's \
              connection goes on in TIME_WAIT as a timewait socket and the descriptor's own \
              socket reads CLOSE; macOS keeps TIME_WAIT on the socket itself; FreeBSD skips \
              TIME_WAIT for a local peer (net.inet.tcp.nolocaltimewait, on by default) and \
              drops the connection, so TCP_INFO fails with ECONNRESET.",
        source: "RFC 9293 §3.6 figure 12 (normal close sequence)",
        server: Side::new(four_segment_server),
        client: Side::new(four_segment_client),
        expect: &[
            Expect::linux(
                "Linux tcp_rcv_state_process(): FIN_WAIT1 + ACK of FIN -> FIN_WAIT2; \
                 tcp_fin(): FIN_WAIT2 -> tcp_time_wait(), which hands the connection to \
                 a timewait socket and tcp_done()s the original",
                Facts {
                    client: &four_segment_client_facts("CLOSE"),
                    ..FOUR_SEGMENT_CLOSE
                },
            ),
            // Differs from Linux in state#2: tcp_input(), `case TCPS_FIN_WAIT_2: ...
            // tp->t_state = TCPS_TIME_WAIT; ... add_to_time_wait(tp, 2 * tcp_msl)`: the tcpcb
            // stays on the socket, whose TCP_CONNECTION_INFO reads TIME_WAIT.
            Expect::macos(
                "xnu-11417.121.6 bsd/netinet/tcp_input.c tcp_input(): FIN_WAIT_1 + ACK \
                 of FIN -> FIN_WAIT_2; FIN in FIN_WAIT_2 -> `tp->t_state = \
                 TCPS_TIME_WAIT`, add_to_time_wait() on the same tcpcb",
                Facts {
                    client: &four_segment_client_facts("TIME_WAIT"),
                    ..FOUR_SEGMENT_CLOSE
                },
            ),
            // Differs from Linux in state#2: tcp_twstart(): `if (V_nolocaltimewait &&
            // in_localip(inp->inp_faddr)) { tp = tcp_close(tp) ...}` (nolocaltimewait defaults
            // to true in sys/netinet/tcp_timewait.c), after `if (tp->t_flags & TF_ACKNOW)
            // tcp_output(tp)` has sent the last ACK; tcp_close() -> in_pcbdrop() marks the pcb
            // INP_DROPPED, for which tcp_ctloutput() returns ECONNRESET.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/netinet/tcp_input.c \
                 tcp_do_segment(): FIN in FIN_WAIT_2 -> tcp_twstart(); \
                 sys/netinet/tcp_timewait.c tcp_twstart(): `V_nolocaltimewait && \
                 in_localip(inp->inp_faddr)` -> tcp_close(); sys/netinet/tcp_usrreq.c \
                 tcp_ctloutput(): INP_DROPPED -> ECONNRESET",
                Facts {
                    client: &four_segment_client_facts("ECONNRESET"),
                    ..FOUR_SEGMENT_CLOSE
                },
            ),
        ],
        ..Case::DEFAULTS
    },
];

// Facts that several OSes or cases share, named after what they show. A list used by one OS
// only is written in its expectation.

/// The server reads the data, then EOF; both FINs are acknowledged and nothing is reset.
const FIN_THEN_EOF: Facts = Facts {
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
    wire: CLIENT_CLOSES_FIRST_ORDERLY,
};

/// The server's close() with unread data sent RST: the client reads the reset once, then EOF,
/// and its write fails with EPIPE.
const UNREAD_DATA_RST: Facts = Facts {
    server: CLOSE_EXIT,
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
};

/// The BSDs: the RST in CLOSE_WAIT leaves ECONNRESET pending behind the write's EPIPE.
const BSD_PEER_WRITES_AFTER_CLOSE: Facts = Facts {
    server: &[
        ("read", is("EOF")),
        ("write#1", is("ok(5)")),
        ("write#2", is("EPIPE")),
        ("read#2", is("ECONNRESET")),
        ("exit", is("exit 0")),
    ],
    client: CLOSE_EXIT,
    wire: PEER_WRITES_AFTER_CLOSE_WIRE,
};
const PEER_WRITES_AFTER_CLOSE_WIRE: &[WireFact] = &[
    // Only the first write travels; the client's kernel answers it with RST.
    WireFact::Before((Client, Seg::Fin), (Server, Seg::Data)),
    WireFact::Before((Server, Seg::Data), (Client, Seg::Rst)),
    WireFact::Count(Server, Seg::Data, 1),
    WireFact::Count(Client, Seg::Rst, 1),
    WireFact::Count(Server, Seg::Fin, 0),
];

/// The client's RST is reported once, to the first read.
const READ_AFTER_RESET: Facts = Facts {
    server: &[
        ("read#1", is("ECONNRESET")),
        ("read#2", is("EOF")),
        ("exit", is("exit 0")),
    ],
    client: ABORT_EXIT,
    wire: &[WireFact::ResetNotFin(Client)],
};
/// The BSDs: "cannot send more" is tested before the pending error, every time.
const BSD_WRITE_AFTER_RESET: Facts = Facts {
    server: &[
        ("write#1", is("EPIPE")),
        ("write#2", is("EPIPE")),
        ("exit", is("exit 0")),
    ],
    client: ABORT_EXIT,
    wire: &[WireFact::ResetNotFin(Client)],
};

/// The client exits with the connection open; the server reads EOF.
const EXIT_SENDS_FIN: Facts = Facts {
    server: READ_EOF_EXIT,
    client: EXIT_ONLY,
    wire: DEAD_CLIENT_SENDS_FIN_WIRE,
};
/// As [`EXIT_SENDS_FIN`], the client killed instead.
const KILL_SENDS_FIN: Facts = Facts {
    client: KILLED_CLIENT,
    ..EXIT_SENDS_FIN
};
const KILLED_CLIENT: &[(&str, Matcher)] = &[("exit", is("killed by SIGKILL"))];
/// The kernel closes the dead process's socket with FIN, never RST. (What the server's own
/// close sends is not these cases' point.)
const DEAD_CLIENT_SENDS_FIN_WIRE: &[WireFact] = &[
    WireFact::Count(Client, Seg::Fin, 1),
    WireFact::FinAcked(Client),
    WireFact::Count(Client, Seg::Rst, 0),
];
/// The killed client's socket had unread data: RST, reported to the server's first read.
const KILL_WITH_UNREAD_RST: Facts = Facts {
    server: &[
        ("write", is("ok(5)")),
        ("read#1", is("ECONNRESET")),
        ("read#2", is("EOF")),
        ("exit", is("exit 0")),
    ],
    client: KILLED_CLIENT,
    wire: &[WireFact::ResetNotFin(Client)],
};

/// The client closes first; the server reads EOF in CLOSE_WAIT and closes; each FIN is
/// acknowledged by a segment of its own. So three_segment_close on the BSDs, which acknowledge
/// the client's FIN at once; four_segment_close names the client's side on each OS.
const FOUR_SEGMENT_CLOSE: Facts = Facts {
    server: &[
        ("read", is("EOF")),
        ("state", is("CLOSE_WAIT")),
        ("close", is("ok(0)")),
        ("exit", is("exit 0")),
    ],
    client: CLOSE_EXIT,
    wire: &[WireFact::Teardown(FOUR_SEGMENT_TEARDOWN)],
};
/// Each FIN acknowledged by a segment of its own.
const FOUR_SEGMENT_TEARDOWN: &[(harness::Role, &str)] = &[
    (Client, "FIN|ACK"),
    (Server, "ACK"),
    (Server, "FIN|ACK"),
    (Client, "ACK"),
];
/// four_segment_close's client: it shuts down for writing, sees FIN_WAIT2 once its FIN is
/// acknowledged, reads EOF, and then finds its socket in `state_2`.
const fn four_segment_client_facts(state_2: &'static str) -> [(&'static str, Matcher); 6] {
    [
        ("shutdown(SHUT_WR)", is("ok(0)")),
        ("state#1", is("FIN_WAIT2")),
        ("read", is("EOF")),
        ("state#2", is(state_2)),
        ("close", is("ok(0)")),
        ("exit", is("exit 0")),
    ]
}

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
    write_twice(ctx, &conn);
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
