//! listen()'s backlog against `net.core.somaxconn`: what limit the kernel really applies, and
//! what a client sees when the accept queue is full.
//!
//! The effective backlog is observed two ways. Directly: on Linux, TCP_INFO on a listening
//! socket reports the accept queue's limit in `tcpi_sacked` and its current length in
//! `tcpi_unacked` (`tcp_get_info()`). And by counting: the client starts non-blocking connects
//! one at a time, nobody calls accept(), and each connect either completes or is dropped, which
//! the namespace's `TcpExt: ListenOverflows` counter shows at once, so no wait is guessed.
//!
//! Every case sets `somaxconn` (per network namespace) and `tcp_syncookies` = 1 (the default,
//! declared so that the result does not depend on the host): a SYN that finds the accept queue
//! full is dropped whether or not cookies are on; cookies only matter when the SYN queue is full,
//! which no case here makes happen.
//!
//! None of these cases runs on macOS or FreeBSD yet: both observations above are Linux's (a
//! listener's TCP_INFO, the ListenOverflows counter). The BSDs also apply the backlog
//! differently, read from their source and noted at each case:
//! - XNU (xnu-11417.121.6): listen() takes `backlog <= 0 || backlog > somaxconn` as
//!   kern.ipc.somaxconn (solisten()); a socket is made at the SYN, and sonewconn_internal()
//!   refuses one when `so_qlen >= so_qlimit` (kern.ipc.soqlimitcompat = 1, the default; so_qlen
//!   counts half-open and complete connections), after which tcp_input() drops the SYN
//!   silently unless tcp_dropdropablreq() frees a half-open one. So exactly `backlog`
//!   connections complete, one fewer than on Linux, and the rest retransmit their SYN.
//! - FreeBSD (14.0-STABLE, ilnp-freebsd14 2f2a416): listen() takes `backlog < 0 || backlog >
//!   somaxconn` as kern.ipc.soacceptqueue (solisten_proto()). No SYN is dropped for a full
//!   queue: the syncache answers it, the client's connect() completes, and only the final ACK
//!   makes the socket, which solisten_clone() refuses when `sol_qlen > 3 * sol_qlimit / 2`;
//!   tcp_input() then answers that ACK with RST (net.inet.tcp.syncache.rst_on_sock_fail, 1 by
//!   default). So ⌊3 × backlog / 2⌋ + 1 connections queue, and the next ones complete and are
//!   reset at once.
//!
//! A port would read the listener's queue from the PCB list (xsocket so_qlen, so_qlimit; on
//! FreeBSD also getsockopt SO_LISTENQLEN / SO_LISTENQLIMIT), count refusals with
//! net.inet.tcp.stats (tcps_listendrop), judge FreeBSD's connects as completed-then-reset, and
//! declare kern.ipc.somaxconn / kern.ipc.soacceptqueue = 8 as host sysctls.

use crate::script::io_outcome;
use harness::observe::sock::{poll_once, KERNEL_WAIT};
use harness::{any_ms, is, Case, Ctx, Expect, Facts, Need, Os, Side, Value};
use socket2::{SockAddr, Socket};
use std::time::{Duration, Instant};

const SOMAXCONN: Need = Need::Sysctl("net/core/somaxconn", "8");
const SYNCOOKIES: Need = Need::Sysctl("net/ipv4/tcp_syncookies", "1");

/// Why the counting cases do not run on the BSDs yet (see the module's doc).
const NOT_OBSERVED_ON_MACOS: Need = Need::NotOn(
    Os::Macos,
    "not observable by this script on XNU yet: it reads the accept queue from a Linux \
     listener's TCP_INFO (tcpi_sacked, tcpi_unacked) and tells a dropped SYN by Linux's TcpExt \
     ListenOverflows counter; XNU has neither (its queue is in the PCB list's so_qlen and \
     so_qlimit, its drops in net.inet.tcp.stats)",
);
const NOT_OBSERVED_ON_FREEBSD: Need = Need::NotOn(
    Os::Freebsd,
    "not observable by this script on FreeBSD yet: it reads the accept queue from a Linux \
     listener's TCP_INFO and tells a dropped SYN by Linux's ListenOverflows counter; and \
     FreeBSD drops no SYN for a full queue: the syncache completes the handshake and answers \
     the final ACK with RST (net.inet.tcp.syncache.rst_on_sock_fail), so such a connect \
     completes and is then reset",
);

/// What the counting cases need: the queue's limit and SYN cookies set, and Linux.
const COUNTING_NEEDS: &[Need] = &[
    SOMAXCONN,
    SYNCOOKIES,
    NOT_OBSERVED_ON_MACOS,
    NOT_OBSERVED_ON_FREEBSD,
];

/// twelve_connects_client's facts where the queue takes 9 (a backlog of 8).
const NINE_OF_TWELVE_CONNECTS_COMPLETE: &[(&str, harness::Matcher)] = &[
    ("connects completed", is("9")),
    ("connects dropped", is("3")),
    ("exit", is("exit 0")),
];

/// How a connect started by [`Ctx::try_connect`] ended.
const COMPLETED: &str = "completed";
const DROPPED: &str = "SYN dropped";

/// The SYN retransmission a dropped connect waits for: the initial RTO is 1 s (RFC 6298 §2.1,
/// Linux TCP_TIMEOUT_INIT); judged with room for a loaded machine.
const FIRST_SYN_RETRANSMISSION: harness::Matcher = any_ms(900, 3000);

pub static CASES: &[Case] = &[
    Case {
        id: "backlog.truncated_to_somaxconn",
        doc: "With somaxconn = 8, listen(1024) is silently cut to 8: TCP_INFO reports a limit of \
              8. Of 12 connects nobody accepts, 9 complete: Linux's queue is full only when it \
              holds more than the backlog (sk_acceptq_is_full() compares with >), so it takes \
              backlog + 1. The other 3 SYNs are dropped silently.",
        source: "POSIX listen() (a backlog above the implementation's limit is set to the \
                 limit)",
        // Read from source: XNU would complete 8 of the 12 (so_qlen >= so_qlimit) and drop 4
        // SYNs; FreeBSD would queue all 12, since 12 <= 3 * 8 / 2.
        needs: COUNTING_NEEDS,
        server: Side::new(truncated_server),
        client: Side::new(twelve_connects_client),
        expect: &[Expect::linux(
            "listen(2) (\"If the backlog argument is greater than the value in \
             /proc/sys/net/core/somaxconn, then it is silently capped\"); Linux \
             net/socket.c __sys_listen(); include/net/sock.h sk_acceptq_is_full(); \
             net/ipv4/tcp_input.c tcp_conn_request() drops on a full accept queue",
            Facts {
                server: &[
                    ("tcp_info.backlog", is("8")),
                    ("tcp_info.queued", is("9")),
                    ("exit", is("exit 0")),
                ],
                client: NINE_OF_TWELVE_CONNECTS_COMPLETE,
                wire: &[],
            },
        )],
        ..Case::DEFAULTS
    },
    Case {
        id: "backlog.small_backlog_completions",
        doc: "listen(1) and listen(4), 6 connects each, nobody accepts: 2 and 5 complete, one \
              more than the backlog each time (the queue is full only above the backlog).",
        source: "POSIX listen() (the backlog is a hint for the queue's length)",
        // Read from source: XNU would complete 1 and 4 (exactly the backlog); FreeBSD would
        // queue 2 of 6 (1 > 3 * 1 / 2 refuses the third) and all 6 for listen(4) (room for 7),
        // its refused connects completing and then reset.
        needs: COUNTING_NEEDS,
        server: Side::new(small_backlogs_server),
        client: Side::new(small_backlogs_client),
        expect: &[Expect::linux(
            "listen(2); Linux include/net/sock.h sk_acceptq_is_full(): sk_ack_backlog > \
             sk_max_ack_backlog",
            Facts {
                server: &[
                    ("listen(1) tcp_info.backlog", is("1")),
                    ("listen(1) tcp_info.queued", is("2")),
                    ("listen(4) tcp_info.backlog", is("4")),
                    ("listen(4) tcp_info.queued", is("5")),
                    ("exit", is("exit 0")),
                ],
                client: &[
                    ("listen(1) connects completed", is("2")),
                    ("listen(4) connects completed", is("5")),
                    ("exit", is("exit 0")),
                ],
                wire: &[],
            },
        )],
        ..Case::DEFAULTS
    },
    Case {
        id: "backlog.negative_means_max",
        doc: "listen(-1) is not an error, and it does not mean a queue of 0 as the Single UNIX \
              Specification's listen() has it: Linux takes the backlog as unsigned, so -1 is \
              larger than any limit and is capped to somaxconn (8 here). TCP_INFO reports 8, and \
              9 of 12 connects complete. (FreeBSD also reads a negative backlog as the maximum.)",
        source: "SUSv2/XNS listen() (\"less than 0 ... sets the length of the socket's listen \
                 queue to 0\")",
        // Read from source: both BSDs take a negative backlog as the maximum too (XNU
        // solisten(): `backlog <= 0 || backlog > somaxconn`, so 0 as well; FreeBSD
        // solisten_proto(): `backlog < 0 || backlog > somaxconn`); then as truncated_to_somaxconn.
        needs: COUNTING_NEEDS,
        server: Side::new(negative_server),
        client: Side::new(twelve_connects_client),
        expect: &[Expect::linux(
            "listen(2); Linux net/socket.c __sys_listen(): (unsigned int)backlog > \
             somaxconn -> somaxconn",
            Facts {
                server: &[
                    ("listen(-1)", is("ok(0)")),
                    ("tcp_info.backlog", is("8")),
                    ("tcp_info.queued", is("9")),
                    ("exit", is("exit 0")),
                ],
                client: NINE_OF_TWELVE_CONNECTS_COMPLETE,
                wire: &[],
            },
        )],
        ..Case::DEFAULTS
    },
    Case {
        id: "backlog.overflow_completes_after_accept",
        doc: "listen(1): two connects complete, the third one's SYN is dropped. The server then \
              accepts one connection, freeing a slot. Nothing tells the client: its connect \
              completes only when it retransmits the SYN, about 1 s (the initial RTO) after it \
              started, and the queue is back to 2.",
        source: "RFC 6298 §2.1 (initial RTO 1 s); RFC 9293 §3.8.1",
        // Read from source: on XNU connect#2 and connect#3 would both be dropped (so_qlen >=
        // so_qlimit with one queued), and one of them complete on its SYN retransmission after
        // the accept; on FreeBSD connect#3 would complete and be reset at once (2 > 3 * 1 / 2),
        // so the accept comes too late for it.
        needs: COUNTING_NEEDS,
        server: Side::new(overflow_after_accept_server),
        client: Side::new(overflow_after_accept_client),
        expect: &[Expect::linux(
            "Linux net/ipv4/tcp_input.c tcp_conn_request() drops the SYN silently \
             (LINUX_MIB_LISTENOVERFLOWS); TCP_TIMEOUT_INIT (include/net/tcp.h)",
            Facts {
                server: &[
                    ("tcp_info.backlog", is("1")),
                    ("tcp_info.queued", is("2")),
                    ("after accept tcp_info.backlog", is("1")),
                    ("after accept tcp_info.queued", is("2")),
                    ("exit", is("exit 0")),
                ],
                client: &[
                    ("connect#1", is(COMPLETED)),
                    ("connect#2", is(COMPLETED)),
                    ("connect#3", is(DROPPED)),
                    ("connect#3 after accept", is("ok(0)")),
                    ("connect#3.ms", FIRST_SYN_RETRANSMISSION),
                    ("exit", is("exit 0")),
                ],
                wire: &[],
            },
        )],
        ..Case::DEFAULTS
    },
    Case {
        id: "backlog.abort_on_overflow",
        doc:
            "With tcp_abort_on_overflow = 1, listen(2). Overflow at the SYN is unchanged: the SYN \
             is dropped silently and the connect stays in SYN_SENT, no RST. The setting acts \
             when the handshake's last ACK finds the queue full: a client whose ACK is held back \
             (TCP_DEFER_ACCEPT on the connecting socket delays it until data is sent) completes \
             its connect, the queue fills behind it, and its first data gets RST: the read \
             fails with ECONNRESET. (With the setting at 0 the same ACK is dropped silently and \
             that read blocks: tried here, it is what the setting changes.)",
        source: "tcp(7) tcp_abort_on_overflow",
        needs: &[
            SOMAXCONN,
            SYNCOOKIES,
            Need::Sysctl("net/ipv4/tcp_abort_on_overflow", "1"),
            Need::NotOn(
                Os::Macos,
                "tcp_abort_on_overflow and TCP_DEFER_ACCEPT on a connecting socket are \
                 Linux's; XNU has neither (a full queue drops the SYN itself, tcp_input() after \
                 sonewconn() fails)",
            ),
            Need::NotOn(
                Os::Freebsd,
                "tcp_abort_on_overflow and TCP_DEFER_ACCEPT on a connecting socket are \
                 Linux's; FreeBSD's nearest, net.inet.tcp.syncache.rst_on_sock_fail, is on by \
                 default and resets every connect whose final ACK finds the queue over",
            ),
        ],
        server: Side::new(abort_on_overflow_server),
        client: Side::new(abort_on_overflow_client),
        expect: &[Expect::linux(
            "Linux net/ipv4/tcp_minisocks.c tcp_check_req(): listen overflow -> \
             embryonic_reset only if sysctl_tcp_abort_on_overflow; net/ipv4/tcp_input.c \
             tcp_rcv_synsent_state_process() delays the ACK when rskq_defer_accept is \
             set",
            Facts {
                server: &[
                    ("tcp_info.backlog", is("2")),
                    ("tcp_info.queued", is("3")),
                    ("exit", is("exit 0")),
                ],
                client: &[
                    ("connect#1", is(COMPLETED)),
                    ("connect#2", is(COMPLETED)),
                    ("connect(ACK held back)", is(COMPLETED)),
                    ("connect#4", is(COMPLETED)),
                    ("write(ACK held back)", is("ok(5)")),
                    ("read(ACK held back)", is("ECONNRESET")),
                    ("connect#5", is(DROPPED)),
                    ("connect#5 state", is("SYN_SENT")),
                    ("exit", is("exit 0")),
                ],
                wire: &[],
            },
        )],
        ..Case::DEFAULTS
    },
];

/// The namespace's `TcpExt: ListenOverflows` counter (`/proc/net/netstat`): one more each time
/// a listener drops a SYN or final ACK because its accept queue is full. `None` where there is
/// no such file; then a connect is judged only by the wait.
fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// TCP_INFO of a listening socket: (the accept queue's limit, its current length).
#[cfg(target_os = "linux")]
fn accept_queue(listener: &Socket) -> Option<(u64, u64)> {
    use std::os::fd::AsRawFd;
    let info = harness::observe::tcp_state::tcp_info(listener.as_raw_fd()).ok()?;
    Some((info.tcpi_sacked.into(), info.tcpi_unacked.into()))
}

#[cfg(not(target_os = "linux"))]
fn accept_queue(_listener: &Socket) -> Option<(u64, u64)> {
    None
}

/// Records the listener's accept-queue limit and length as `<prefix>tcp_info.backlog` and
/// `<prefix>tcp_info.queued`.
fn record_queue(ctx: &mut Ctx, prefix: &str, listener: &Socket) {
    let (limit, queued) = match accept_queue(listener) {
        Some((limit, queued)) => (Value::Count(limit), Value::Count(queued)),
        None => {
            let none = Value::Text("TCP_INFO unavailable on this OS".into());
            (none.clone(), none)
        }
    };
    ctx.record(&format!("{prefix}tcp_info.backlog"), limit);
    ctx.record(&format!("{prefix}tcp_info.queued"), queued);
}

/// Start a non-blocking connect of `sock` to 127.0.0.1:`port` and wait until it completes or
/// its SYN is dropped (the overflow counter moves), bounded by [`KERNEL_WAIT`]. The outcome is
/// [`COMPLETED`], [`DROPPED`] or the errno; the socket, still connecting if dropped, is kept by
/// the caller.
fn start_connect(ctx: &mut Ctx, call: &str, sock: &Socket, port: u16) -> Value {
    let overflows_before = listen_overflows();
    sock.set_nonblocking(true).expect("O_NONBLOCK");
    ctx.begin(call);
    match sock.connect(&SockAddr::from(ctx.loopback(port))) {
        Ok(()) => Value::Text(COMPLETED.into()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            await_handshake(sock, overflows_before)
        }
        Err(e) => io_outcome(Err(e)),
    }
}

/// [`start_connect`], recorded as `name`.
fn try_connect_with(ctx: &mut Ctx, name: &str, sock: Socket, port: u16) -> Socket {
    let outcome = start_connect(ctx, name, &sock, port);
    ctx.record(name, outcome);
    sock
}

/// [`try_connect_with`] a fresh socket with no options set.
fn try_connect(ctx: &mut Ctx, name: &str, port: u16) -> Socket {
    try_connect_with(ctx, name, ctx.tcp_socket(), port)
}

/// Poll a connecting socket in short slices until it is writable (handshake done, or failed)
/// or the listener's overflow counter has moved past `overflows_before` (its SYN was dropped).
fn await_handshake(sock: &Socket, overflows_before: Option<u64>) -> Value {
    const SLICE: Duration = Duration::from_millis(5);
    let deadline = Instant::now() + KERNEL_WAIT;
    while Instant::now() < deadline {
        if poll_once(sock, libc::POLLOUT, SLICE) != 0 {
            return match sock.take_error() {
                Ok(None) => Value::Text(COMPLETED.into()),
                Ok(Some(e)) | Err(e) => io_outcome(Err(e)),
            };
        }
        if listen_overflows() > overflows_before {
            return Value::Text(DROPPED.into());
        }
    }
    Value::Text(DROPPED.into())
}

/// Client: `attempts` connects to `port`, one after the other, nobody accepting. Returns the
/// sockets (kept open: closing them would empty the queue) and how many completed; only the
/// total is recorded.
fn connect_many(ctx: &mut Ctx, port: u16, attempts: usize) -> (Vec<Socket>, u64) {
    let mut socks = vec![];
    let mut completed = 0;
    for i in 1..=attempts {
        let sock = ctx.tcp_socket();
        let outcome = start_connect(ctx, &format!("connect#{i}"), &sock, port);
        completed += u64::from(outcome == Value::Text(COMPLETED.into()));
        socks.push(sock);
    }
    (socks, completed)
}

fn truncated_server(ctx: &mut Ctx) {
    let (listener, port) = ctx.listen(1024);
    queue_after_connects_server(ctx, listener, port);
}

fn negative_server(ctx: &mut Ctx) {
    let sock = ctx.tcp_socket();
    sock.bind(&SockAddr::from(ctx.loopback(0)))
        .expect("bind(127.0.0.1)");
    ctx.begin("listen(-1)");
    let listened = io_outcome(sock.listen(-1));
    ctx.record("listen(-1)", listened);
    let port = harness::observe::sock::local_port(&sock);
    ctx.claim_port(port);
    queue_after_connects_server(ctx, sock, port);
}

/// Server: tell the client the port, and once it has connected, record the accept queue.
/// Barriers: `listening`, `connected`, `recorded`.
fn queue_after_connects_server(ctx: &mut Ctx, listener: Socket, port: u16) {
    ctx.sync_with("listening", port.into());
    ctx.sync("connected");
    record_queue(ctx, "", &listener);
    ctx.sync("recorded");
}

fn twelve_connects_client(ctx: &mut Ctx) {
    let port = ctx.sync_with("listening", 0) as u16;
    let (_socks, completed) = connect_many(ctx, port, 12);
    ctx.sync("connected");
    ctx.record("connects completed", Value::Count(completed));
    ctx.record("connects dropped", Value::Count(12 - completed));
    ctx.sync("recorded");
}

fn small_backlogs_server(ctx: &mut Ctx) {
    let (one, one_port) = ctx.listen(1);
    let (four, four_port) = ctx.listen(4);
    ctx.sync_with(
        "listening",
        u64::from(one_port) << 16 | u64::from(four_port),
    );
    ctx.sync("connected");
    record_queue(ctx, "listen(1) ", &one);
    record_queue(ctx, "listen(4) ", &four);
    ctx.sync("recorded");
}

fn small_backlogs_client(ctx: &mut Ctx) {
    let ports = ctx.sync_with("listening", 0);
    let (one_port, four_port) = ((ports >> 16) as u16, ports as u16);
    let (_one, one_completed) = connect_many(ctx, one_port, 6);
    let (_four, four_completed) = connect_many(ctx, four_port, 6);
    ctx.sync("connected");
    ctx.record("listen(1) connects completed", Value::Count(one_completed));
    ctx.record("listen(4) connects completed", Value::Count(four_completed));
    ctx.sync("recorded");
}

fn overflow_after_accept_server(ctx: &mut Ctx) {
    let (listener, port) = ctx.listen(1);
    ctx.sync_with("listening", port.into());
    ctx.sync("overflowed");
    record_queue(ctx, "", &listener);
    let _accepted = ctx.accept(&listener);
    ctx.sync("accepted");
    ctx.sync("completed");
    record_queue(ctx, "after accept ", &listener);
    ctx.sync("recorded");
}

fn overflow_after_accept_client(ctx: &mut Ctx) {
    let port = ctx.sync_with("listening", 0) as u16;
    let _first = try_connect(ctx, "connect#1", port);
    let _second = try_connect(ctx, "connect#2", port);
    let started = Instant::now();
    let third = try_connect(ctx, "connect#3", port);
    ctx.sync("overflowed");
    ctx.sync("accepted");
    ctx.begin("await connect#3");
    // Bounded well past the first SYN retransmission (1 s) and inside the step deadline.
    poll_once(&third, libc::POLLOUT, Duration::from_secs(3));
    let took = started.elapsed();
    let outcome = match third.take_error() {
        Ok(None)
            if harness::observe::tcp_state::of(&third) == Value::State("ESTABLISHED".into()) =>
        {
            Value::Ok(0)
        }
        Ok(None) => harness::observe::tcp_state::of(&third),
        Ok(Some(e)) | Err(e) => io_outcome(Err(e)),
    };
    ctx.record("connect#3 after accept", outcome);
    ctx.record("connect#3.ms", Value::Millis(took.as_millis() as u64));
    ctx.sync("completed");
    ctx.sync("recorded");
}

fn abort_on_overflow_server(ctx: &mut Ctx) {
    let (listener, port) = ctx.listen(2);
    queue_after_connects_server(ctx, listener, port);
}

fn abort_on_overflow_client(ctx: &mut Ctx) {
    let port = ctx.sync_with("listening", 0) as u16;
    let _first = try_connect(ctx, "connect#1", port);
    let _second = try_connect(ctx, "connect#2", port);
    // Its SYN finds room (2 queued, backlog 2), and its final ACK waits for data.
    let held = ctx.tcp_socket();
    hold_back_final_ack(&held);
    let held = try_connect_with(ctx, "connect(ACK held back)", held, port);
    // Completes while the held-back one is still half-open, and fills the queue (3 > 2).
    let _fourth = try_connect(ctx, "connect#4", port);
    held.set_nonblocking(false).expect("O_NONBLOCK off");
    ctx.write("write(ACK held back)", &held, b"hello");
    ctx.await_reset(&held);
    ctx.read("read(ACK held back)", &held, 64);
    let fifth = try_connect(ctx, "connect#5", port);
    ctx.tcp_state("connect#5 state", &fifth);
    ctx.sync("connected");
    ctx.sync("recorded");
}

/// Linux delays the handshake's final ACK of a connecting socket with TCP_DEFER_ACCEPT set
/// (until data is sent or the delayed-ACK timer, 200 ms, fires).
#[cfg(target_os = "linux")]
fn hold_back_final_ack(sock: &Socket) {
    use std::os::fd::AsRawFd;
    let secs: libc::c_int = 1;
    // SAFETY: setsockopt with a c_int we own, for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    nix::errno::Errno::result(rc).expect("setsockopt(TCP_DEFER_ACCEPT)");
}

#[cfg(not(target_os = "linux"))]
fn hold_back_final_ack(_sock: &Socket) {
    unreachable!("the case that uses it runs only on Linux");
}
