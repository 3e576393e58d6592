//! Keepalive: a side blocked in read() on an idle connection learns that its peer is gone only
//! through keepalive probes. A peer whose socket vanished silently answers the first probe
//! with RST; a peer that cannot be reached answers nothing, and the probes run out.
//!
//! Neither case runs on macOS or FreeBSD yet: both make the peer disappear with Linux-only
//! means (TCP_REPAIR; a second network namespace and a veth pair). What the BSDs' source says
//! they would show, for a later port, is noted at each case's needs.

use crate::script::{accept_one, connect_to_server};
use harness::observe::sock::{local_port, peer_port};
use harness::spawn::netdev;
use harness::{any_ms, is, Case, Ctx, Expect, Facts, Kind, Need, Os, Side, Value};
use socket2::{SockAddr, Socket, TcpKeepalive};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The probes' pacing: TCP_KEEPIDLE and TCP_KEEPINTVL.
const KEEPALIVE_SECS: u64 = 1;
/// TCP_KEEPCNT for the unanswered probes.
const UNANSWERED_PROBES: u32 = 3;
/// A step may wait for idle + count × interval = 4 s of probing.
const STEP_DEADLINE: Duration = Duration::from_secs(10);

/// The veth pair between the case's namespace (server) and the client's own namespace, on a
/// documentation prefix of the instance's family: 192.0.2.0/24 (RFC 5737) or 2001:db8::/64
/// (RFC 3849). They exist only inside those namespaces.
const SERVER_LINK: &str = "sc-server";
const CLIENT_LINK: &str = "sc-client";

/// The two ends' addresses and their prefix length, for the instance's kind.
struct LinkAddrs {
    server: IpAddr,
    client: IpAddr,
    prefix: u8,
}

fn link_addrs(kind: Kind) -> LinkAddrs {
    match kind {
        Kind::Ipv6 => LinkAddrs {
            server: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(),
            client: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).into(),
            prefix: 64,
        },
        _ => LinkAddrs {
            server: Ipv4Addr::new(192, 0, 2, 1).into(),
            client: Ipv4Addr::new(192, 0, 2, 2).into(),
            prefix: 24,
        },
    }
}

pub static CASES: &[Case] = &[
    Case {
        id: "keepalive.detects_vanished_peer",
        doc: "The client's socket disappears without a FIN or RST: TCP_REPAIR on, then close(), \
              which drops the socket silently (sock_diag then finds no client socket). The \
              server, with SO_KEEPALIVE and TCP_KEEPIDLE/INTVL/CNT of 1 s/1 s/1, is blocked in \
              read(). Its first probe, about 1 s after the connection went idle, reaches a \
              kernel with no socket for it, which answers RST: the read fails with ECONNRESET \
              (not ETIMEDOUT) within about a second.",
        source: "RFC 1122 §4.2.3.6 (keep-alives); RFC 9293 §3.10.7.1 (a segment for no \
                 connection draws a reset)",
        // Read from source, for a port: both BSDs answer a segment for no socket with RST
        // (FreeBSD tcp_dropwithreset(), XNU tcp_input() dropwithreset), and a RST that
        // matches rcv_nxt in ESTABLISHED sets `so->so_error = ECONNRESET` in both
        // (tcp_do_segment() / tcp_input()): the same ECONNRESET as Linux. The options exist
        // with the same meaning and unit (seconds): FreeBSD TCP_KEEPIDLE, TCP_KEEPINTVL
        // (tcp_default_ctloutput(): `ui *= hz`), TCP_KEEPCNT; XNU TCP_KEEPALIVE for the idle
        // time (tcp_ctloutput(): `t_keepidle = optval * TCP_RETRANSHZ`, used only with
        // SO_KEEPALIVE set: TCP_CONN_KEEPIDLE()), TCP_KEEPINTVL, TCP_KEEPCNT; socket2's
        // set_tcp_keepalive() sets those. What is missing is a way to make the client's
        // socket vanish without a FIN or RST.
        needs: &[
            Need::NotOn(
                Os::Macos,
                "the client's socket must vanish without a FIN or RST, which Linux does with \
                 TCP_REPAIR: XNU has no TCP_REPAIR, and its ways to end a connection send FIN \
                 (tcp_disconnect()) or RST (tcp_drop())",
            ),
            Need::NotOn(
                Os::Freebsd,
                "the client's socket must vanish without a FIN or RST, which Linux does with \
                 TCP_REPAIR: FreeBSD has no TCP_REPAIR, and its ways to end a connection send \
                 FIN (tcp_disconnect()) or RST (tcp_drop(), also behind the net.inet.tcp.drop \
                 sysctl)",
            ),
            Need::SockDiag,
            Need::Netns("TCP_REPAIR needs CAP_NET_ADMIN over the namespace"),
        ],
        server: Side::new(vanished_peer_server),
        client: Side::new(vanished_peer_client),
        expect: &[Expect::linux(
            "tcp(7) TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT; Linux net/ipv4/tcp.c \
             tcp_disconnect(): in repair mode no RST is sent; net/ipv4/tcp_timer.c \
             tcp_keepalive_timer(); net/ipv4/tcp_ipv4.c tcp_v4_send_reset() for a \
             segment with no socket",
            Facts {
                server: &[
                    ("client conn.state", is("none")),
                    ("read", is("ECONNRESET")),
                    ("read.ms", any_ms(500, 2_000)),
                    ("exit", is("exit 0")),
                ],
                client: &[
                    ("TCP_REPAIR", is("ok(0)")),
                    ("close", is("ok(0)")),
                    ("exit", is("exit 0")),
                ],
                wire: &[],
            },
        )],
        step_deadline: STEP_DEADLINE,
        ..Case::DEFAULTS
    },
    Case {
        id: "keepalive.unanswered_probes_time_out",
        doc: "The client lives in a second namespace, joined to the server's by a veth pair; once \
              connected it removes its address, so every segment the server sends crosses the \
              veth and is dropped on arrival, unrouted and unanswered (over IPv4 no \
              forwarding, so no ICMP; over IPv6 the kernel would send ICMPv6 unreachable but \
              has no route back, so none arrives either). The server, with SO_KEEPALIVE, TCP_KEEPIDLE 1 s, TCP_KEEPINTVL 1 s and \
              TCP_KEEPCNT 3, is blocked in read(): three probes go unanswered, and the read fails \
              with ETIMEDOUT after idle + cnt × intvl = 4 s (4.08 s here: each 1 s timer lands \
              on the timer wheel's 32 ms granularity). The client does not take its link down \
              instead: the server's veth would then drop probes itself (NET_XMIT_DROP) until \
              linkwatch deactivates its queue, up to a second later and later still on a loaded \
              machine, and tcp_keepalive_timer() retries such a probe after 500 ms \
              (TCP_RESOURCE_PROBE_INTERVAL) without counting it.",
        source: "RFC 1122 §4.2.3.6 (keep-alives; a connection whose probes go unanswered is \
                 broken)",
        // Read from source, for a port: the probes would run out at the same point, and the
        // read fail with the same ETIMEDOUT. FreeBSD tcp_timer_keep(): `if (ticks -
        // tp->t_rcvtime >= TP_KEEPIDLE(tp) + TP_MAXIDLE(tp)) goto dropit;` ->
        // tcp_drop(tp, ETIMEDOUT), TP_MAXIDLE = keepcnt × keepintvl; XNU tcp_timers()
        // TCPT_KEEP: `if (idle_time >= TCP_CONN_KEEPIDLE(tp) + TCP_CONN_MAXIDLE(tp)) goto
        // dropit;` -> tcp_drop(tp, ETIMEDOUT), which reports tp->t_softerror instead when
        // one was recorded (an ICMP unreachable, say). What is missing is the unreachable
        // peer: FreeBSD's analogue of a netns and veth is a VNET jail and an epair(4).
        needs: &[
            Need::NotOn(
                Os::Macos,
                "the peer must stop answering without a trace, which the Linux script does \
                 from a second network namespace joined by a veth pair: XNU has neither, and \
                 dropping loopback segments would take a host-wide pf rule",
            ),
            Need::NotOn(
                Os::Freebsd,
                "the peer must stop answering without a trace, which the Linux script does \
                 from a second network namespace joined by a veth pair: FreeBSD's analogue, \
                 a VNET jail joined by an epair(4), is not built by the harness yet",
            ),
            Need::Netns(
                "a second namespace and a veth pair need CAP_SYS_ADMIN and CAP_NET_ADMIN over \
                 the case's namespace",
            ),
        ],
        server: Side::new(unanswered_server),
        client: Side::new(unanswered_client),
        expect: &[Expect::linux(
            "tcp(7) TCP_KEEPCNT (\"the maximum number of keepalive probes TCP should \
             send before dropping the connection\"); Linux net/ipv4/tcp_timer.c \
             tcp_keepalive_timer(): icsk_probes_out >= keepalive_probes -> \
             tcp_write_err() (ETIMEDOUT), and TCP_RESOURCE_PROBE_INTERVAL when \
             tcp_write_wakeup() fails; net/ipv4/route.c ip_route_input_slow() and \
             ip_error(): with forwarding off, a packet for an address that is not local \
             is dropped without ICMP; over IPv6, net/ipv6/route.c ip6_pkt_discard() (the \
             null route's) calls icmp6_send(), which gives up when icmpv6_route_lookup() \
             finds no route back (the client's prefix route left with its address), so \
             no ICMPv6 error sets the server's sk_err_soft, which tcp_write_err() would \
             report instead of ETIMEDOUT",
            Facts {
                server: &[
                    ("read", is("ETIMEDOUT")),
                    ("read.ms", any_ms(3_500, 5_500)),
                    ("exit", is("exit 0")),
                ],
                client: &[("address removed", is("ok(0)")), ("exit", is("exit 0"))],
                wire: &[],
            },
        )],
        step_deadline: STEP_DEADLINE,
        ..Case::DEFAULTS
    },
];

/// SO_KEEPALIVE with TCP_KEEPIDLE = TCP_KEEPINTVL = 1 s and TCP_KEEPCNT = `probes`.
fn keep_alive(sock: &Socket, probes: u32) {
    let every = Duration::from_secs(KEEPALIVE_SECS);
    let params = TcpKeepalive::new()
        .with_time(every)
        .with_interval(every)
        .with_retries(probes);
    sock.set_tcp_keepalive(&params)
        .expect("SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT");
}

/// read() until keepalive ends it; records how it ended as `read` and how long it took as
/// `read.ms`.
fn read_until_dead(ctx: &mut Ctx, sock: &Socket) {
    let start = Instant::now();
    ctx.read("read", sock, 64);
    ctx.record("read.ms", Value::Millis(start.elapsed().as_millis() as u64));
}

fn vanished_peer_server(ctx: &mut Ctx) {
    let (_listener, conn) = accept_one(ctx);
    keep_alive(&conn, 1);
    let (port, client_port) = (local_port(&conn), peer_port(&conn));
    ctx.sync("connected");
    ctx.sync("vanished");
    ctx.sock_diag("client conn", client_port, port);
    read_until_dead(ctx, &conn);
}

fn vanished_peer_client(ctx: &mut Ctx) {
    let conn = connect_to_server(ctx);
    ctx.sync("connected");
    ctx.record("TCP_REPAIR", set_repair(&conn));
    ctx.close("close", conn);
    ctx.sync("vanished");
}

/// TCP_REPAIR on: the socket's close() then sends nothing.
#[cfg(target_os = "linux")]
fn set_repair(sock: &Socket) -> Value {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with an int option value that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_REPAIR,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Value::from_ret(nix::errno::Errno::result(rc).map(|_| 0))
}

/// No TCP_REPAIR here; the case is skipped before it runs (Need::OnlyOn).
#[cfg(not(target_os = "linux"))]
fn set_repair(_sock: &Socket) -> Value {
    Value::errno(nix::errno::Errno::ENOPROTOOPT)
}

fn unanswered_server(ctx: &mut Ctx) {
    let addrs = link_addrs(ctx.kind());
    ctx.sync("linked");
    // Up before addressed: an IPv6 address is usable once its local route is in, and a down
    // device has no routes (netdev::set_addr).
    netdev::set_up(SERVER_LINK, true).expect("bring the server's veth up");
    netdev::set_addr(SERVER_LINK, addrs.server, addrs.prefix).expect("address the server's veth");
    let listener = ctx.tcp_socket();
    listener
        .bind(&SockAddr::from(SocketAddr::new(addrs.server, 0)))
        .expect("bind the server's veth address");
    listener.listen(8).expect("listen");
    ctx.sync_with("listening", local_port(&listener).into());
    let conn = ctx.accept(&listener);
    keep_alive(&conn, UNANSWERED_PROBES);
    ctx.sync("connected");
    ctx.sync("address removed");
    read_until_dead(ctx, &conn);
    ctx.sync("timed out");
}

fn unanswered_client(ctx: &mut Ctx) {
    let addrs = link_addrs(ctx.kind());
    let server_netns = netdev::enter_new_netns().expect("a network namespace for the client");
    netdev::create_veth(
        CLIENT_LINK,
        SERVER_LINK,
        std::os::fd::AsFd::as_fd(&server_netns),
    )
    .expect("a veth pair to the server's namespace");
    netdev::set_up(CLIENT_LINK, true).expect("bring the client's veth up");
    netdev::set_addr(CLIENT_LINK, addrs.client, addrs.prefix).expect("address the client's veth");
    ctx.sync("linked");
    let port = ctx.sync_with("listening", 0) as u16;
    let conn = ctx.tcp_socket();
    ctx.begin("connect");
    conn.connect(&SockAddr::from(SocketAddr::new(addrs.server, port)))
        .expect("connect to the server's veth address");
    ctx.sync("connected");
    // Removing the address, rather than taking the link down, keeps the server's veth and its
    // queue untouched: every probe leaves the server (and is counted) and is dropped on arrival.
    ctx.begin("remove the client's address");
    let removed = netdev::clear_addr(CLIENT_LINK, addrs.client, addrs.prefix).map(|()| 0);
    ctx.record("address removed", Value::from_ret(removed));
    ctx.sync("address removed");
    // Hold the socket until the server has given up: closing it would send a FIN.
    ctx.sync("timed out");
    drop(conn);
}
