//! AF_UNIX: the same teardown questions over a Unix-domain socket (a pathname in the instance's
//! private directory, `harness::spawn::unix_dir`), SOCK_STREAM and, where it differs or is of
//! interest, SOCK_SEQPACKET. No segment is ever sent: the kernel moves data from one socket's
//! buffer to the other's, and a close or shutdown() acts on the peer's socket directly. So
//! these cases declare no wire facts, and the report says why.
//!
//! Linux's expectations cite net/unix/af_unix.c and were observed on 5.10, 6.18 and 7.2 (no
//! difference between them); macOS's are read in xnu-11417.121.6 (bsd/kern/uipc_usrreq.c,
//! uipc_socket.c); FreeBSD's were read in 14.0-STABLE (ilnp-freebsd14 2f2a416:
//! sys/kern/uipc_usrreq.c, uipc_socket.c) and then observed in the matrix's qemu column, all
//! 16 instances as read. macOS has no AF_UNIX SOCK_SEQPACKET: its instances over that kind
//! cannot apply there (`Kind::cannot_apply_on`).

use crate::facts::CLOSE_EXIT;
use crate::fork::{close_one_holder_client, close_one_holder_server};
use crate::script::{accept_one, connect_to_server, io_outcome, send_nosignal_twice, write_twice};
use harness::observe::sock::KERNEL_WAIT;
use harness::{is, Case, Ctx, Expect, Facts, Kind, Need, Os, Side, SigPipe, Value};
use nix::sys::socket::Shutdown;
use socket2::{SockAddr, Socket};
use std::sync::mpsc;
use std::time::Duration;

/// Both AF_UNIX kinds, for the cases where SOCK_SEQPACKET is worth observing too.
const BOTH: &[Kind] = &[Kind::UnixStream, Kind::UnixSeqpacket];
const STREAM: &[Kind] = &[Kind::UnixStream];

pub static CASES: &[Case] = &[
    Case {
        id: "unix.close_unread_data",
        doc: "The client writes 5 bytes; the server close()s without reading them. Over TCP \
              Linux answers with RST; AF_UNIX has no RST, but Linux's close marks the peer \
              ECONNRESET (once) because data was unread, and shut both ways. Then the client \
              writes and reads twice (SIGPIPE ignored). SOCK_STREAM's write fails with EPIPE \
              regardless of the pending error, which the first read reports; SOCK_SEQPACKET's \
              write reports it, and both reads see EOF. On macOS and FreeBSD the unread data \
              makes no difference: EPIPE, then EOF twice.",
        source: "unix(7); close(2)",
        server: Side::new(close_unread_server),
        client: Side::new(close_unread_client),
        expect: &[
            Expect::linux(
                "Linux net/unix/af_unix.c unix_release_sock(): the peer's sk_shutdown = \
                 SHUTDOWN_MASK, and sk_err = ECONNRESET when the closing socket's receive \
                 queue holds unread data; unix_stream_sendmsg(): own SEND_SHUTDOWN -> out_pipe: \
                 EPIPE, sk_err not looked at; unix_stream_read_generic(): sock_error() before \
                 RCV_SHUTDOWN (\"POSIX 1003.1g mandates this order\")",
                CLOSE_UNREAD_LINUX_STREAM,
            )
            .kinds(STREAM),
            Expect::linux(
                "Linux net/unix/af_unix.c unix_release_sock() (as for SOCK_STREAM); \
                 unix_seqpacket_sendmsg(): `err = sock_error(sk); if (err) return err;` \
                 before unix_dgram_sendmsg()",
                CLOSE_UNREAD_LINUX_SEQPACKET,
            )
            .kinds(&[Kind::UnixSeqpacket]),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c soclose_locked() -> \
                 sodisconnectlocked() -> bsd/kern/uipc_usrreq.c uipc_disconnect() -> \
                 unp_disconnect(): SOCK_STREAM: both sockets SS_CANTRCVMORE | SS_CANTSENDMORE, no so_error \
                 (unread data is not looked at); bsd/kern/uipc_socket.c sosendcheck(): \
                 SS_CANTSENDMORE -> EPIPE; soreceive(): SS_CANTRCVMORE, nothing queued -> 0",
                CLOSE_UNREAD_BSD,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 soclose() -> sodisconnect() -> sys/kern/uipc_usrreq.c uipc_disconnect() -> \
                 unp_disconnect(): SOCK_STREAM, SOCK_SEQPACKET: \
                 soisdisconnected() on both, no so_error (unread data is not looked at); \
                 sys/kern/uipc_socket.c sosend_generic(): SBS_CANTSENDMORE -> EPIPE; \
                 soreceive_generic(): SBS_CANTRCVMORE, nothing queued -> 0",
                CLOSE_UNREAD_BSD,
            ),
        ],
        kinds: BOTH,
        ..Case::DEFAULTS
    },
    Case {
        id: "unix.write_after_close_sig_ign",
        doc: "The server close()s; the client reads EOF, then writes twice under SIG_IGN: both \
              writes fail with EPIPE and the client lives. Over TCP the first write succeeds \
              (close.peer_writes_after_close): only its RST makes the second fail; AF_UNIX \
              knows at once that the peer is gone.",
        source: "unix(7); POSIX write(): EPIPE",
        server: Side::new(closing_server),
        client: Side::new(write_twice_after_close),
        expect: &[
            Expect::linux(
                "Linux net/unix/af_unix.c unix_release_sock(): peer sk_shutdown = \
                 SHUTDOWN_MASK; unix_stream_sendmsg(): -> EPIPE",
                Facts {
                    server: CLOSE_EXIT,
                    client: &[
                        ("read", is("EOF")),
                        ("write#1", is("EPIPE")),
                        ("write#2", is("EPIPE")),
                        ("exit", is("exit 0")),
                    ],
                    wire: &[],
                },
            ),
            Expect::macos(XNU_CLOSED_PEER_EPIPE, WRITE_TWICE_EPIPE),
            Expect::freebsd(FREEBSD_CLOSED_PEER_EPIPE, WRITE_TWICE_EPIPE),
        ],
        kinds: BOTH,
        ..Case::DEFAULTS
    },
    Case {
        id: "unix.write_after_close_sig_dfl",
        doc: "The server close()s; the client reads EOF, then writes under SIG_DFL: the write \
              fails with EPIPE and raises SIGPIPE, which kills the client. Except over Linux's \
              SOCK_SEQPACKET, whose send path never raises SIGPIPE: both writes fail with EPIPE \
              and the client lives.",
        source: "unix(7); POSIX write(): EPIPE and SIGPIPE; signal(7)",
        server: Side::new(closing_server),
        client: Side::with_sigpipe(SigPipe::Default, write_twice_after_close),
        expect: &[
            Expect::linux(
                "Linux net/unix/af_unix.c unix_stream_sendmsg(): out_pipe: `if (!sent && \
                 !(msg->msg_flags & MSG_NOSIGNAL)) send_sig(SIGPIPE, current, 0); err = \
                 -EPIPE`",
                READ_EOF_THEN_KILLED,
            )
            .kinds(STREAM),
            // Differs from SOCK_STREAM: the SOCK_SEQPACKET send path is the datagram one.
            Expect::linux(
                "Linux net/unix/af_unix.c unix_seqpacket_sendmsg() -> unix_dgram_sendmsg(): \
                 the peer is SOCK_DEAD -> `if (sk->sk_type == SOCK_SEQPACKET) err = -EPIPE`; \
                 unix_dgram_sendmsg() has no send_sig(SIGPIPE) (only unix_stream_sendmsg() \
                 raises it)",
                WRITE_TWICE_EPIPE,
            )
            .kinds(&[Kind::UnixSeqpacket]),
            Expect::macos(XNU_CLOSED_PEER_EPIPE, READ_EOF_THEN_KILLED),
            Expect::freebsd(FREEBSD_CLOSED_PEER_EPIPE, READ_EOF_THEN_KILLED),
        ],
        kinds: BOTH,
        ..Case::DEFAULTS
    },
    Case {
        id: "unix.send_after_close_nosignal",
        doc: "The server close()s; the client reads EOF, then send()s twice with MSG_NOSIGNAL \
              under SIG_DFL: EPIPE both times, no signal, the client lives.",
        source: "unix(7); send(2) MSG_NOSIGNAL",
        server: Side::new(closing_server),
        client: Side::with_sigpipe(SigPipe::Default, send_nosignal_twice_after_close),
        expect: &[
            Expect::linux(
                "Linux net/unix/af_unix.c unix_stream_sendmsg(): EPIPE, SIGPIPE only without \
                 MSG_NOSIGNAL",
                SEND_TWICE_EPIPE,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_syscalls.c sendit(): `if (error == EPIPE && \
                 !(so->so_flags & SOF_NOSIGPIPE) && !(flags & MSG_NOSIGNAL)) psignal(p, \
                 SIGPIPE)`; bsd/kern/uipc_usrreq.c unp_disconnect(): SS_CANTSENDMORE; \
                 bsd/kern/uipc_socket.c sosendcheck(): -> EPIPE",
                SEND_TWICE_EPIPE,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 sousrsend(): SIGPIPE only `if (error == EPIPE && (so->so_options & \
                 SO_NOSIGPIPE) == 0 && (flags & MSG_NOSIGNAL) == 0)`; sys/kern/uipc_usrreq.c \
                 unp_disconnect() -> soisdisconnected(): SBS_CANTSENDMORE -> EPIPE",
                SEND_TWICE_EPIPE,
            ),
        ],
        kinds: BOTH,
        ..Case::DEFAULTS
    },
    Case {
        id: "unix.shut_rd_then_peer_writes",
        doc: "The server shutdown(SHUT_RD)s; then the client writes. Over TCP Linux tells the \
              peer nothing and the write succeeds; over AF_UNIX Linux marks the peer's socket, \
              and the client's write fails with EPIPE (SIGPIPE ignored). The server reads EOF \
              and can still write, which the client reads. macOS accepts the write and drops \
              the data; FreeBSD accepts it and the server reads it despite SHUT_RD.",
        source: "shutdown(2); unix(7)",
        server: Side::new(shut_rd_server),
        client: Side::new(shut_rd_client),
        expect: &[
            Expect::linux(
                "Linux net/unix/af_unix.c unix_shutdown(): `other->sk_shutdown |= peer_mode` \
                 (SHUT_RD sets the peer's SEND_SHUTDOWN for SOCK_STREAM and SOCK_SEQPACKET); \
                 unix_stream_sendmsg(): SEND_SHUTDOWN / peer RCV_SHUTDOWN -> EPIPE",
                Facts {
                    server: SHUT_RD_SERVER_EOF,
                    client: &[
                        ("write", is("EPIPE")),
                        ("read", is("ok(5)")),
                        ("exit", is("exit 0")),
                    ],
                    wire: &[],
                },
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c soshutdownlock_final(): SHUT_RD -> \
                 sorflush(): SS_CANTRCVMORE and `sb->sb_flags |= SB_DROP` (the peer is not \
                 told); bsd/kern/uipc_usrreq.c uipc_send(): sbappend() into the SB_DROP buffer \
                 drops the data, no error; bsd/kern/uipc_socket2.c sbappend_common(): \
                 `if (m == NULL || (sb->sb_flags & SB_DROP))` free, return 0",
                Facts {
                    server: SHUT_RD_SERVER_EOF,
                    client: SHUT_RD_CLIENT_OK,
                    wire: &[],
                },
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 soshutdown(): SHUT_RD -> sorflush() only (socantrcvmore(), the buffer \
                 disposed; the peer is not told); sys/kern/uipc_usrreq.c uipc_send(): tests \
                 only the sender's SBS_CANTSENDMORE and appends to the peer's so_rcv; \
                 soreceive_generic(): data queued is returned before SBS_CANTRCVMORE",
                Facts {
                    server: &[
                        ("shutdown(SHUT_RD)", is("ok(0)")),
                        ("read", is("ok(5)")),
                        ("write", is("ok(5)")),
                        ("exit", is("exit 0")),
                    ],
                    client: SHUT_RD_CLIENT_OK,
                    wire: &[],
                },
            ),
        ],
        kinds: BOTH,
        ..Case::DEFAULTS
    },
    Case {
        id: "unix.shut_wr_then_eof",
        doc: "The client writes 5 bytes and shutdown(SHUT_WR)s. The server reads the 5 bytes, \
              then EOF, and writes back, which the client still reads; the client's own write \
              after SHUT_WR fails with EPIPE (SIGPIPE ignored).",
        source: "shutdown(2); unix(7)",
        server: Side::new(shut_wr_server),
        client: Side::new(shut_wr_client),
        expect: &[
            Expect::linux(
                "Linux net/unix/af_unix.c unix_shutdown(): own SEND_SHUTDOWN, the peer's \
                 RCV_SHUTDOWN; unix_stream_read_generic(): queued data first, then 0 on \
                 RCV_SHUTDOWN; unix_stream_sendmsg(): own SEND_SHUTDOWN -> EPIPE",
                SHUT_WR_THEN_EOF,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_usrreq.c uipc_shutdown(): socantsendmore(), \
                 unp_shutdown() -> socantrcvmore(peer) (SOCK_STREAM); bsd/kern/uipc_socket.c \
                 soreceive(): queued data, then 0; sosendcheck(): SS_CANTSENDMORE -> EPIPE",
                SHUT_WR_THEN_EOF,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_usrreq.c \
                 uipc_shutdown(): socantsendmore(), unp_shutdown() -> socantrcvmore(peer) \
                 (SOCK_STREAM, SOCK_SEQPACKET); sys/kern/uipc_socket.c soreceive_generic(): \
                 queued data, then 0; sosend_generic(): SBS_CANTSENDMORE -> EPIPE",
                SHUT_WR_THEN_EOF,
            ),
        ],
        kinds: BOTH,
        ..Case::DEFAULTS
    },
    Case {
        id: "unix.fork_close_one_holder",
        doc: "After fork() the server and its child hold the same accepted AF_UNIX socket. The \
              parent's close() only drops its descriptor: the client sees nothing (no EOF \
              within 200 ms). The child's close() drops the last reference, and the client \
              reads EOF.",
        source: "close(2); fork(2); unix(7)",
        server: Side::new(close_one_holder_server),
        client: Side::new(close_one_holder_client),
        expect: &[
            Expect::linux(
                "Linux fs/file_table.c __fput() -> sock_close() -> unix_release() -> \
                 unix_release_sock() only on the file's last reference",
                FORK_CLOSE_ONE_HOLDER,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/kern_descrip.c fg_drop(): fo_close() -> soclose() \
                 -> sodisconnectlocked() -> bsd/kern/uipc_usrreq.c unp_disconnect() only when the \
                 fileglob's last reference goes",
                FORK_CLOSE_ONE_HOLDER,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/kern_descrip.c \
                 closef() -> fdrop_close() -> soo_close() -> soclose() -> sodisconnect() -> \
                 sys/kern/uipc_usrreq.c uipc_disconnect() -> unp_disconnect() only on the file's \
                 last reference",
                FORK_CLOSE_ONE_HOLDER,
            ),
        ],
        kinds: STREAM,
        ..Case::DEFAULTS
    },
    Case {
        id: "unix.backlog_full",
        doc: "With the accept queue's limit set to 2 (somaxconn = 2, listen(8)), nobody accepts. \
              Non-blocking connects complete until the queue is full; the next fails. Then a \
              blocking connect: on Linux it waits (it is still blocked 300 ms later) until the \
              server accepts one, and then completes; on macOS and FreeBSD a full queue \
              refuses it at once. Linux lets backlog + 1 connections queue \
              (unix_recvq_full() tests `>`), macOS backlog, FreeBSD ⌊3 × backlog / 2⌋ + 1.",
        source: "listen(2); connect(2) (EAGAIN for a full AF_UNIX backlog); unix(7)",
        needs: &[
            Need::Sysctl("net/core/somaxconn", "2"),
            Need::HostSysctl(Os::Macos, "kern.ipc.somaxconn", "2"),
            Need::HostSysctl(Os::Freebsd, "kern.ipc.soacceptqueue", "2"),
        ],
        server: Side::new(backlog_server),
        client: Side::new(backlog_client),
        expect: &[
            Expect::linux(
                "Linux net/socket.c __sys_listen(): backlog capped at somaxconn; \
                 net/unix/af_unix.c unix_stream_connect(): `if (unix_recvq_full_lockless(other)) \
                 { err = -EAGAIN; if (!timeo) goto out_unlock; timeo = unix_wait_for_peer(other, \
                 timeo); ...}`; unix_recvq_full(): `skb_queue_len(&sk->sk_receive_queue) > \
                 sk->sk_max_ack_backlog` (backlog + 1 queue); unix_accept(): \
                 `wake_up_interruptible(&unix_sk(sk)->peer_wait)` wakes the waiting connect",
                Facts {
                    server: BACKLOG_SERVER,
                    client: &[
                        ("non-blocking connects completed", is("3")),
                        ("next non-blocking connect", is("EAGAIN")),
                        ("blocking connect while full", is("blocked")),
                        ("blocking connect after one accept", is("ok(0)")),
                        ("exit", is("exit 0")),
                    ],
                    wire: &[],
                },
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c solisten(): `backlog <= 0 || backlog > \
                 somaxconn` -> somaxconn; bsd/kern/uipc_usrreq.c unp_connect(): `(so3 = \
                 sonewconn(so2, 0, nam)) == 0` -> ECONNREFUSED, blocking or not; \
                 bsd/kern/uipc_socket2.c sonewconn_internal(): refused when `so_qlen >= \
                 so_qlimit` (kern.ipc.soqlimitcompat = 1)",
                Facts {
                    server: BACKLOG_SERVER,
                    client: &[
                        ("non-blocking connects completed", is("2")),
                        ("next non-blocking connect", is("ECONNREFUSED")),
                        ("blocking connect while full", is("ECONNREFUSED")),
                        ("exit", is("exit 0")),
                    ],
                    wire: &[],
                },
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 solisten_proto(): `backlog < 0 || backlog > somaxconn` -> \
                 kern.ipc.soacceptqueue; sonewconn(): `over = (head->sol_qlen > 3 * \
                 head->sol_qlimit / 2)` -> NULL; sys/kern/uipc_usrreq.c unp_connectat(): \
                 `so2 = sonewconn(so2, 0)` NULL -> ECONNREFUSED, blocking or not",
                Facts {
                    server: BACKLOG_SERVER,
                    client: &[
                        ("non-blocking connects completed", is("4")),
                        ("next non-blocking connect", is("ECONNREFUSED")),
                        ("blocking connect while full", is("ECONNREFUSED")),
                        ("exit", is("exit 0")),
                    ],
                    wire: &[],
                },
            ),
        ],
        kinds: STREAM,
        ..Case::DEFAULTS
    },
    Case {
        id: "unix.linger_zero_close",
        doc: "The client sets SO_LINGER {1, 0}, writes 5 bytes and close()s. Over TCP that is an \
              abortive close (RST, the data discarded); over AF_UNIX the option is accepted and \
              changes nothing: the server reads the 5 bytes, then EOF.",
        source: "socket(7) SO_LINGER; unix(7)",
        server: Side::new(linger_zero_server),
        client: Side::new(linger_zero_client),
        expect: &[
            Expect::linux(
                "Linux net/core/sock.c sk_setsockopt(): SO_LINGER is kept for any socket; \
                 net/unix/af_unix.c unix_release_sock() never reads sk_lingertime: the peer \
                 gets SHUTDOWN_MASK, its queued data stays readable",
                LINGER_ZERO_CHANGES_NOTHING,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c sosetoptlock(): SO_LINGER sets \
                 so_linger for any socket; soclose_locked(): sodisconnectlocked() -> \
                 bsd/kern/uipc_usrreq.c unp_disconnect() (the peer's queued data stays \
                 readable), then waits only `while ((so->so_state & SS_ISCONNECTED) && \
                 so->so_linger > 0)`",
                LINGER_ZERO_CHANGES_NOTHING,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 sosetopt(): SO_LINGER for any socket; soclose(): sodisconnect() -> \
                 sys/kern/uipc_usrreq.c uipc_disconnect() -> unp_disconnect() (the peer's \
                 queued data stays readable), then waits only `if ((so->so_options & \
                 SO_LINGER) != 0 && so->so_linger != 0)`",
                LINGER_ZERO_CHANGES_NOTHING,
            ),
        ],
        kinds: BOTH,
        ..Case::DEFAULTS
    },
];

const XNU_CLOSED_PEER_EPIPE: &str = "xnu-11417.121.6 bsd/kern/uipc_socket.c soclose_locked() \
                                     -> sodisconnectlocked() -> bsd/kern/uipc_usrreq.c \
                                     unp_disconnect(): the peer SS_CANTSENDMORE; \
                                     bsd/kern/uipc_socket.c sosendcheck(): -> EPIPE; \
                                     bsd/kern/sys_socket.c soo_write(): `if (stat == EPIPE && \
                                     !(so->so_flags & SOF_NOSIGPIPE)) psignal(procp, SIGPIPE)`";
const FREEBSD_CLOSED_PEER_EPIPE: &str =
    "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c soclose() -> \
     sodisconnect() -> sys/kern/uipc_usrreq.c unp_disconnect() -> soisdisconnected(peer): SBS_CANTSENDMORE; sys/kern/uipc_socket.c \
     sosend_generic(): -> EPIPE; sousrsend(): `if (error == EPIPE && (so->so_options & \
     SO_NOSIGPIPE) == 0 && (flags & MSG_NOSIGNAL) == 0) ... tdsignal(td, SIGPIPE)`";

const CLOSE_UNREAD_LINUX_STREAM: Facts = Facts {
    server: CLOSE_EXIT,
    client: &[
        ("write#1", is("ok(5)")),
        ("write#2", is("EPIPE")),
        ("read#1", is("ECONNRESET")),
        ("read#2", is("EOF")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};
const CLOSE_UNREAD_LINUX_SEQPACKET: Facts = Facts {
    server: CLOSE_EXIT,
    client: &[
        ("write#1", is("ok(5)")),
        ("write#2", is("ECONNRESET")),
        ("read#1", is("EOF")),
        ("read#2", is("EOF")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};
const CLOSE_UNREAD_BSD: Facts = Facts {
    server: CLOSE_EXIT,
    client: &[
        ("write#1", is("ok(5)")),
        ("write#2", is("EPIPE")),
        ("read#1", is("EOF")),
        ("read#2", is("EOF")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};
const WRITE_TWICE_EPIPE: Facts = Facts {
    server: CLOSE_EXIT,
    client: &[
        ("read", is("EOF")),
        ("write#1", is("EPIPE")),
        ("write#2", is("EPIPE")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};
const READ_EOF_THEN_KILLED: Facts = Facts {
    server: CLOSE_EXIT,
    client: &[("read", is("EOF")), ("exit", is("killed by SIGPIPE"))],
    wire: &[],
};
const SEND_TWICE_EPIPE: Facts = Facts {
    server: CLOSE_EXIT,
    client: &[
        ("read", is("EOF")),
        ("send#1", is("EPIPE")),
        ("send#2", is("EPIPE")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};
const SHUT_RD_SERVER_EOF: &[(&str, harness::Matcher)] = &[
    ("shutdown(SHUT_RD)", is("ok(0)")),
    ("read", is("EOF")),
    ("write", is("ok(5)")),
    ("exit", is("exit 0")),
];
const SHUT_RD_CLIENT_OK: &[(&str, harness::Matcher)] = &[
    ("write", is("ok(5)")),
    ("read", is("ok(5)")),
    ("exit", is("exit 0")),
];
const SHUT_WR_THEN_EOF: Facts = Facts {
    server: &[
        ("read#1", is("ok(5)")),
        ("read#2", is("EOF")),
        ("write", is("ok(5)")),
        ("exit", is("exit 0")),
    ],
    client: &[
        ("write#1", is("ok(5)")),
        ("shutdown(SHUT_WR)", is("ok(0)")),
        ("read", is("ok(5)")),
        ("write#2", is("EPIPE")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};
const FORK_CLOSE_ONE_HOLDER: Facts = Facts {
    server: &[
        ("parent close", is("ok(0)")),
        ("child close", is("ok(0)")),
        ("child exit", is("exit 0")),
        ("exit", is("exit 0")),
    ],
    client: &[
        ("poll after parent close", is("timeout")),
        ("read", is("EOF")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};
const BACKLOG_SERVER: &[(&str, harness::Matcher)] =
    &[("accept", is("ok(0)")), ("exit", is("exit 0"))];
const LINGER_ZERO_CHANGES_NOTHING: Facts = Facts {
    server: &[
        ("read#1", is("ok(5)")),
        ("read#2", is("EOF")),
        ("exit", is("exit 0")),
    ],
    client: &[
        ("setsockopt(SO_LINGER 1,0)", is("ok(0)")),
        ("write", is("ok(5)")),
        ("close", is("ok(0)")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};

fn close_unread_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    ctx.sync("written");
    ctx.close("close", conn);
    ctx.sync("closed");
}

/// The data is in the server's receive queue when write() returns: AF_UNIX appends it to the
/// peer's queue in the call itself, so the barrier after it is all the ordering needed.
fn close_unread_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.write("write#1", &conn, b"hello");
    ctx.sync("written");
    ctx.sync("closed");
    ctx.write("write#2", &conn, b"hello");
    ctx.read("read#1", &conn, 64);
    ctx.read("read#2", &conn, 64);
}

fn closing_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    ctx.close("close", conn);
    ctx.sync("closed");
}

/// Client: connect, and once the server has closed, read its EOF. The close has acted on this
/// socket by the time the server's close() returns: no wait for the kernel is needed.
fn read_eof_after_close(ctx: &mut Ctx) -> Socket {
    let conn = connect_to_server(ctx);
    ctx.sync("closed");
    ctx.read("read", &conn, 64);
    conn
}

fn write_twice_after_close(ctx: &mut Ctx) {
    let conn = read_eof_after_close(ctx);
    write_twice(ctx, &conn);
}

fn send_nosignal_twice_after_close(ctx: &mut Ctx) {
    let conn = read_eof_after_close(ctx);
    send_nosignal_twice(ctx, &conn);
}

fn shut_rd_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    ctx.shutdown("shutdown(SHUT_RD)", &conn, Shutdown::Read);
    ctx.sync("shut");
    ctx.sync("written");
    ctx.read("read", &conn, 64);
    ctx.write("write", &conn, b"hello");
    ctx.sync("replied");
}

fn shut_rd_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.sync("shut");
    ctx.write("write", &conn, b"hello");
    ctx.sync("written");
    ctx.sync("replied");
    ctx.read("read", &conn, 64);
}

fn shut_wr_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    ctx.sync("shut");
    ctx.read("read#1", &conn, 64);
    ctx.read("read#2", &conn, 64);
    ctx.write("write", &conn, b"hello");
    ctx.sync("replied");
}

fn shut_wr_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.write("write#1", &conn, b"hello");
    ctx.shutdown("shutdown(SHUT_WR)", &conn, Shutdown::Write);
    ctx.sync("shut");
    ctx.sync("replied");
    ctx.read("read", &conn, 64);
    ctx.write("write#2", &conn, b"hello");
}

/// How many non-blocking connects the backlog case tries at most: far above every OS's limit
/// for a backlog of 2.
const MAX_CONNECTS: usize = 16;

/// How long a blocking connect must stay blocked to count as waiting. A connect that fails or
/// completes does so within microseconds: AF_UNIX connect() is one call into the peer's socket.
const STAYS_BLOCKED: Duration = Duration::from_millis(300);

fn backlog_server(ctx: &mut Ctx) {
    let listener = ctx.unix_listen(8);
    ctx.sync("listening");
    ctx.sync("blocked");
    ctx.begin("accept");
    let accepted = listener.accept().map(drop);
    ctx.record("accept", io_outcome(accepted));
    ctx.sync("accepted");
    // Hold the listener (and its queue) until the client has seen what the accept did.
    ctx.sync("done");
}

/// Fill the queue with non-blocking connects, then start a blocking connect on a thread of its
/// own (nothing forks after it) and watch it, with a deadline, before and after the server
/// accepts one connection.
fn backlog_client(ctx: &mut Ctx) {
    ctx.sync("listening");
    let mut queued = vec![];
    let mut refusal = Value::Text("none refused".into());
    ctx.begin("non-blocking connects");
    for _ in 0..MAX_CONNECTS {
        let sock = ctx.unix_socket();
        sock.set_nonblocking(true).expect("O_NONBLOCK");
        match ctx.unix_try_connect(&sock) {
            Ok(()) => queued.push(sock),
            Err(e) => {
                refusal = Value::errno(e);
                break;
            }
        }
    }
    ctx.record(
        "non-blocking connects completed",
        Value::Count(queued.len() as u64),
    );
    ctx.record("next non-blocking connect", refusal);

    let sock = ctx.unix_socket();
    let addr = SockAddr::unix(ctx.unix_path()).expect("a pathname that fits sun_path");
    let (done_tx, done) = mpsc::channel();
    ctx.begin("blocking connect");
    // The thread only connects and hands its outcome over; the side records it.
    std::thread::spawn(move || {
        let outcome = io_outcome(sock.connect(&addr));
        let _ = done_tx.send((outcome, sock));
    });
    let first = done.recv_timeout(STAYS_BLOCKED);
    let blocked = first.is_err();
    ctx.record(
        "blocking connect while full",
        first.map_or(Value::Text("blocked".into()), |(v, _)| v),
    );
    ctx.sync("blocked");
    ctx.sync("accepted");
    if blocked {
        ctx.begin("blocking connect after one accept");
        let after = done.recv_timeout(KERNEL_WAIT);
        ctx.record(
            "blocking connect after one accept",
            after.map_or(Value::Text("blocked".into()), |(v, _)| v),
        );
    }
    ctx.sync("done");
}

fn linger_zero_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    ctx.sync("closed");
    ctx.read("read#1", &conn, 64);
    ctx.read("read#2", &conn, 64);
}

fn linger_zero_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.begin("setsockopt(SO_LINGER 1,0)");
    let set = conn.set_linger(Some(Duration::ZERO));
    ctx.record("setsockopt(SO_LINGER 1,0)", io_outcome(set));
    ctx.write("write", &conn, b"hello");
    ctx.close("close", conn);
    ctx.sync("closed");
}
