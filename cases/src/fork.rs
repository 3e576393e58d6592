//! Close across fork() and dup(): a connection ends when its last descriptor is closed, while
//! shutdown() acts on the connection itself, whoever else holds it.
//!
//! The server forks a child (the runner's grandchild) that holds a copy of the accepted
//! descriptor and, on command over a pipe of its own, closes it, writes on it, or exits. The
//! child never touches the side's report pipe, which it inherits: its outcomes travel back over
//! its own pipe and the side records them. The side reaps the child before its script ends.
//!
//! macOS and FreeBSD count references to an open file as Linux does (xnu-11417.121.6
//! bsd/kern/kern_descrip.c fg_drop(): `fo_close()` only when `os_ref_release_raw(&fg->fg_count)`
//! reaches 0; FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/sys/file.h fdrop_close():
//! `_fdrop()` -> `fo_close()` only when `refcount_release(&fp->f_count)` is the last). They
//! differ only where the last close meets unread data (see `close.rs`).

use crate::facts::READ_EOF_EXIT;
use crate::script::{accept_one, connect_to_server};
use harness::Role::Server;
use harness::{is, Case, Ctx, Expect, Facts, Matcher, Seg, Side, Value, WireFact};
use nix::errno::Errno;
use nix::sys::socket::Shutdown;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use socket2::Socket;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// How long the peer watches for a FIN or RST that must not come. On loopback either arrives
/// within microseconds of the close() that sends it.
const NOTHING_ARRIVES: Duration = Duration::from_millis(200);

pub static CASES: &[Case] = &[
    Case {
        id: "fork.close_one_holder_sends_nothing",
        doc: "After fork() the server and its child hold the same connection. The parent's \
              close() only drops its descriptor: nothing is sent, and the client sees no EOF. \
              The child's close() drops the last reference; the connection is closed and the \
              client reads EOF.",
        source: "close(2) (\"If fd is the last file descriptor referring to the underlying open \
                 file description, the resources ... are freed\"); fork(2)",
        server: Side::new(close_one_holder_server),
        client: Side::new(close_one_holder_client),
        expect: &[
            Expect::linux(
                "Linux __fput() -> sock_close() only on the last reference",
                CLOSE_ONE_HOLDER_SENDS_NOTHING,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/kern_descrip.c fg_drop(): fo_close() -> \
                 soo_close() -> soclose() only when the fileglob's last reference goes",
                CLOSE_ONE_HOLDER_SENDS_NOTHING,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/kern_descrip.c \
                 closef() -> fdrop_close() -> _fdrop() -> fo_close() -> soo_close() -> \
                 soclose() only on the file's last reference",
                CLOSE_ONE_HOLDER_SENDS_NOTHING,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "fork.shutdown_affects_all_holders",
        doc: "shutdown() acts on the connection, not on the descriptor. The parent's \
              shutdown(SHUT_WR) sends FIN at once although its child still holds the socket: the \
              client reads EOF, and the child's write fails with EPIPE (SIGPIPE ignored).",
        source: "shutdown(2); POSIX shutdown()",
        server: Side::new(shutdown_all_holders_server),
        client: Side::new(shutdown_all_holders_client),
        expect: &[
            Expect::linux(
                "Linux __sys_shutdown_sock() -> inet_shutdown() -> tcp_shutdown() (no \
                 reference counting)",
                SHUTDOWN_AFFECTS_ALL_HOLDERS,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/uipc_socket.c soshutdown() -> \
                 soshutdownlock_final() -> tcp_usr_shutdown() on the socket (no \
                 reference counting); sosendcheck(): SS_CANTSENDMORE -> EPIPE",
                SHUTDOWN_AFFECTS_ALL_HOLDERS,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/uipc_socket.c \
                 soshutdown() -> tcp_usr_shutdown() on the socket (no reference \
                 counting); sosend_generic(): SBS_CANTSENDMORE -> EPIPE",
                SHUTDOWN_AFFECTS_ALL_HOLDERS,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "fork.child_exit_keeps_connection",
        doc: "The child that shares the connection exits, which closes its descriptor. The \
              parent's descriptor keeps the connection open: the client sees nothing, and data \
              still flows both ways between the parent and the client.",
        source: "_exit(2) closes the process's descriptors as close(2) would; close(2) (last \
                 reference)",
        server: Side::new(child_exit_keeps_server),
        client: Side::new(child_exit_keeps_client),
        expect: &[
            Expect::linux(
                "Linux do_exit() -> close_files() -> fput()",
                CHILD_EXIT_KEEPS_CONNECTION,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/kern_exit.c proc_exit() -> \
                 bsd/kern/kern_descrip.c fdt_invalidate() -> fp_close_and_unlock() -> \
                 fg_drop(): not the last reference, no fo_close()",
                CHILD_EXIT_KEEPS_CONNECTION,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/kern_exit.c \
                 exit1() -> sys/kern/kern_descrip.c fdescfree() -> closef() -> \
                 fdrop_close(): not the last reference, no fo_close()",
                CHILD_EXIT_KEEPS_CONNECTION,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "fork.dup_refcount",
        doc: "dup() in one process counts like fork(): closing the original descriptor sends \
              nothing (the client sees no EOF), the duplicate still writes, and closing the \
              duplicate, the last reference, sends FIN: the client reads the data, then EOF.",
        source: "dup(2) (\"refer to the same open file description\"); close(2)",
        server: Side::new(dup_refcount_server),
        client: Side::new(dup_refcount_client),
        expect: &[
            Expect::linux(
                "Linux __fput() -> sock_close() only on the last reference",
                DUP_REFCOUNT,
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/kern_descrip.c fg_drop(): fo_close() only \
                 when the fileglob's last reference goes (dup() shares the fileglob)",
                DUP_REFCOUNT,
            ),
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/kern_descrip.c \
                 closef() -> fdrop_close(): fo_close() only on the file's last \
                 reference (dup() shares the struct file)",
                DUP_REFCOUNT,
            ),
        ],
        ..Case::DEFAULTS
    },
    Case {
        id: "fork.last_holder_unread_data_sends_rst",
        doc: "The client's 5 bytes sit unread in the shared socket. The parent's close() sends \
              nothing, not even RST: the unread-data check runs only when the connection itself \
              is closed. The child's close(), the last reference, finds the unread data and \
              sends RST: the client's read fails with ECONNRESET. So on Linux and macOS; \
              FreeBSD's last close discards the unread bytes and sends FIN, and the client \
              reads EOF.",
        source: "RFC 2525 §2.17; close(2) (last reference)",
        server: Side::new(last_holder_unread_server),
        client: Side::new(last_holder_unread_client),
        expect: &[
            Expect::linux(
                "Linux __fput() -> sock_close() -> tcp_close(): data_was_unread -> \
                 tcp_send_active_reset(), reached only on the last reference",
                Facts {
                    server: PARENT_THEN_CHILD_CLOSE_SERVER,
                    client: LAST_HOLDER_RST_CLIENT,
                    wire: &[],
                },
            ),
            Expect::macos(
                "xnu-11417.121.6 bsd/kern/kern_descrip.c fg_drop() -> fo_close() on \
                 the last reference only -> soclose() -> bsd/netinet/tcp_usrreq.c \
                 tcp_disconnect(): `so->so_rcv.sb_cc != 0` -> tcp_drop() (RST)",
                Facts {
                    server: PARENT_THEN_CHILD_CLOSE_SERVER,
                    client: LAST_HOLDER_RST_CLIENT,
                    wire: &[WireFact::ResetNotFin(Server)],
                },
            ),
            // Differs from Linux: the last close reaches tcp_disconnect(), which has no
            // unread-data test: `soisdisconnecting(so); sbflush(&so->so_rcv);
            // tcp_usrclosed(tp);` sends FIN, and the client reads EOF.
            Expect::freebsd(
                "FreeBSD 14.0-STABLE (ilnp-freebsd14 2f2a416) sys/kern/kern_descrip.c \
                 fdrop_close() -> fo_close() on the last reference only -> soclose() \
                 -> sys/netinet/tcp_usrreq.c tcp_disconnect(): `sbflush(&so->so_rcv); \
                 tcp_usrclosed(tp)` (FIN, no unread-data test)",
                Facts {
                    server: PARENT_THEN_CHILD_CLOSE_SERVER,
                    client: &[
                        ("write", is("ok(5)")),
                        ("poll after parent close", is("timeout")),
                        ("read", is("EOF")),
                        ("exit", is("exit 0")),
                    ],
                    wire: &[
                        WireFact::Count(Server, Seg::Fin, 1),
                        WireFact::Count(Server, Seg::Rst, 0),
                    ],
                },
            ),
        ],
        ..Case::DEFAULTS
    },
];

// Facts that several OSes share. A list used by one OS only is written in its expectation.

/// `fork.close_one_holder_sends_nothing`, the same on every OS.
const CLOSE_ONE_HOLDER_SENDS_NOTHING: Facts = Facts {
    server: PARENT_THEN_CHILD_CLOSE_SERVER,
    client: &[
        ("poll after parent close", is("timeout")),
        ("read", is("EOF")),
        ("exit", is("exit 0")),
    ],
    wire: &[
        // The parent's close() sends nothing; the FIN leaves with the last holder's.
        WireFact::Silent {
            from: "parent closed",
            to: "polled",
        },
        WireFact::AfterStep((Server, Seg::Fin), "polled"),
        WireFact::Count(Server, Seg::Fin, 1),
        WireFact::Count(Server, Seg::Rst, 0),
    ],
};

/// `fork.shutdown_affects_all_holders`, the same on every OS.
const SHUTDOWN_AFFECTS_ALL_HOLDERS: Facts = Facts {
    server: &[
        ("parent shutdown(SHUT_WR)", is("ok(0)")),
        ("child write", is("EPIPE")),
        ("child exit", is("exit 0")),
        ("exit", is("exit 0")),
    ],
    client: READ_EOF_EXIT,
    wire: &[],
};

/// `fork.child_exit_keeps_connection`, the same on every OS.
const CHILD_EXIT_KEEPS_CONNECTION: Facts = Facts {
    server: &[
        ("child exit", is("exit 0")),
        ("parent write", is("ok(5)")),
        ("parent read", is("ok(5)")),
        ("exit", is("exit 0")),
    ],
    client: &[
        ("poll after child exit", is("timeout")),
        ("read", is("ok(5)")),
        ("write", is("ok(5)")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};

/// `fork.dup_refcount`, the same on every OS.
const DUP_REFCOUNT: Facts = Facts {
    server: &[
        ("close(original)", is("ok(0)")),
        ("write(dup)", is("ok(5)")),
        ("close(dup)", is("ok(0)")),
        ("exit", is("exit 0")),
    ],
    client: &[
        ("poll after close(original)", is("timeout")),
        ("read#1", is("ok(5)")),
        ("read#2", is("EOF")),
        ("exit", is("exit 0")),
    ],
    wire: &[],
};

/// The parent closes, then the child closes the last descriptor and is reaped.
const PARENT_THEN_CHILD_CLOSE_SERVER: &[(&str, Matcher)] = &[
    ("parent close", is("ok(0)")),
    ("child close", is("ok(0)")),
    ("child exit", is("exit 0")),
    ("exit", is("exit 0")),
];

/// The last close found the unread bytes and sent RST.
const LAST_HOLDER_RST_CLIENT: &[(&str, Matcher)] = &[
    ("write", is("ok(5)")),
    ("poll after parent close", is("timeout")),
    ("read", is("ECONNRESET")),
    ("exit", is("exit 0")),
];

/// What the holder child is told to do with its copy of the descriptor.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Order {
    Close = b'c',
    Write = b'w',
    Exit = b'x',
}

/// A second holder of a connection: the side's forked child. It obeys [`Order`]s sent over its
/// own pipe and answers each with the call's outcome (an i64: the return value, or -errno).
struct Holder {
    pid: Pid,
    orders: File,
    answers: File,
}

impl Holder {
    /// Fork a child that holds `conn` (it inherits the descriptor).
    fn fork(ctx: &mut Ctx, conn: &Socket) -> Holder {
        let (orders_rx, orders_tx) = nix::unistd::pipe().expect("pipe");
        let (answers_rx, answers_tx) = nix::unistd::pipe().expect("pipe");
        let fd = conn.as_raw_fd();
        ctx.begin("fork");
        // Safe: the side is single-threaded (forked from the single-threaded runner, no threads
        // started since), so no lock is held in the child. The child makes only raw read(2),
        // write(2) and close(2) calls on descriptors it owns, never writes to the side's report
        // pipe it inherits, and leaves only by _exit(2).
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(orders_tx);
                drop(answers_rx);
                holder_child(fd, orders_rx.as_raw_fd(), answers_tx.as_raw_fd())
            }
            ForkResult::Parent { child } => Holder {
                pid: child,
                orders: File::from(orders_tx),
                answers: File::from(answers_rx),
            },
        }
    }

    /// Have the child do `order` and record its outcome as `name`.
    fn ask(&mut self, ctx: &mut Ctx, name: &str, order: Order) -> Value {
        ctx.begin(name);
        self.orders
            .write_all(&[order as u8])
            .expect("order the holder");
        let mut answer = [0u8; 8];
        self.answers
            .read_exact(&mut answer)
            .expect("the holder answers");
        let ret = i64::from_ne_bytes(answer);
        let value = if ret < 0 {
            Value::errno(Errno::from_raw(-ret as i32))
        } else {
            Value::Ok(ret)
        };
        ctx.record(name, value.clone());
        value
    }

    /// Tell the child to exit (its descriptors closed by exit) and reap it; records how it
    /// ended as `child exit`.
    fn exit(mut self, ctx: &mut Ctx) {
        ctx.begin("child exit");
        self.orders.write_all(&[Order::Exit as u8]).expect("order");
        let status = waitpid(self.pid, None).expect("waitpid(holder)");
        ctx.record("child exit", Value::from_wait(status));
    }
}

/// The holder child's loop. Never returns.
fn holder_child(conn: RawFd, orders: RawFd, answers: RawFd) -> ! {
    loop {
        let mut order = [0u8; 1];
        // SAFETY: reading one byte into a buffer we own.
        let n = unsafe { libc::read(orders, order.as_mut_ptr().cast(), 1) };
        // SAFETY (each call below): plain syscalls on descriptors this process holds.
        let ret: i64 = match (n, order[0]) {
            (1, b'c') => unsafe { libc::close(conn) as i64 },
            (1, b'w') => unsafe { libc::write(conn, b"hello".as_ptr().cast(), 5) as i64 },
            // Told to exit, or the side is gone: exit, which closes whatever is still open.
            _ => unsafe { libc::_exit(0) },
        };
        let ret = if ret < 0 {
            -(Errno::last_raw() as i64)
        } else {
            ret
        };
        // SAFETY: writing 8 bytes we own to our answer pipe.
        unsafe { libc::write(answers, ret.to_ne_bytes().as_ptr().cast(), 8) };
    }
}

/// Server: the parent closes its descriptor; once the client has watched, the child closes the
/// last one and is reaped. Barriers: `parent closed`, `polled`, `child closed`.
fn parent_then_child_close(ctx: &mut Ctx, conn: Socket, mut child: Holder) {
    ctx.close("parent close", conn);
    ctx.sync("parent closed");
    ctx.sync("polled");
    child.ask(ctx, "child close", Order::Close);
    child.exit(ctx);
    ctx.sync("child closed");
}

/// Client: after barrier `after`, watch for [`NOTHING_ARRIVES`] that no FIN, RST or data
/// arrives (recorded as `name`: `timeout` when nothing did). Barriers: `after`, `polled`.
fn watch_for_nothing(ctx: &mut Ctx, conn: &Socket, after: &str, name: &str) {
    ctx.sync(after);
    ctx.poll(name, conn, libc::POLLIN, NOTHING_ARRIVES);
    ctx.sync("polled");
}

pub(crate) fn close_one_holder_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    let child = Holder::fork(ctx, &conn);
    parent_then_child_close(ctx, conn, child);
}

pub(crate) fn close_one_holder_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    watch_for_nothing(ctx, &conn, "parent closed", "poll after parent close");
    ctx.sync("child closed");
    ctx.await_readable(&conn);
    ctx.read("read", &conn, 64);
}

fn shutdown_all_holders_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    let mut child = Holder::fork(ctx, &conn);
    ctx.shutdown("parent shutdown(SHUT_WR)", &conn, Shutdown::Write);
    ctx.sync("shut");
    child.ask(ctx, "child write", Order::Write);
    child.exit(ctx);
}

fn shutdown_all_holders_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.sync("shut");
    ctx.await_readable(&conn);
    ctx.read("read", &conn, 64);
}

fn child_exit_keeps_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    let child = Holder::fork(ctx, &conn);
    child.exit(ctx);
    ctx.sync("child gone");
    ctx.sync("polled");
    ctx.write("parent write", &conn, b"hello");
    ctx.read("parent read", &conn, 64);
}

fn child_exit_keeps_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    watch_for_nothing(ctx, &conn, "child gone", "poll after child exit");
    ctx.read("read", &conn, 64);
    ctx.write("write", &conn, b"hello");
}

fn dup_refcount_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    let dup = nix::unistd::dup(conn.as_raw_fd()).expect("dup");
    // SAFETY: dup() just returned this descriptor, and nothing else owns it.
    let dup = Socket::from(unsafe { OwnedFd::from_raw_fd(dup) });
    ctx.close("close(original)", conn);
    ctx.sync("original closed");
    ctx.sync("polled");
    ctx.write("write(dup)", &dup, b"hello");
    ctx.close("close(dup)", dup);
    ctx.sync("dup closed");
}

fn dup_refcount_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    watch_for_nothing(ctx, &conn, "original closed", "poll after close(original)");
    ctx.sync("dup closed");
    ctx.await_readable(&conn);
    ctx.read("read#1", &conn, 64);
    ctx.await_readable(&conn);
    ctx.read("read#2", &conn, 64);
}

fn last_holder_unread_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    ctx.sync("sent");
    ctx.await_readable(&conn);
    let child = Holder::fork(ctx, &conn);
    parent_then_child_close(ctx, conn, child);
}

fn last_holder_unread_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.write("write", &conn, b"hello");
    ctx.sync("sent");
    watch_for_nothing(ctx, &conn, "parent closed", "poll after parent close");
    ctx.sync("child closed");
    ctx.await_reset(&conn);
    ctx.read("read", &conn, 64);
}
