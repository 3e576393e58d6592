//! Socket steps that record what they saw. Sockets are built with socket2 so that no option is
//! set behind the case's back (std's `TcpListener::bind` sets SO_REUSEADDR on Unix).
//!
//! Setup steps (`listen`, `connect`, `accept`) are not the behaviour under test: if they fail,
//! the side panics and the harness reports a harness error, not a verdict on the kernel.

use super::{Ctx, Value};
use crate::kind::Kind;
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, Shutdown};
use socket2::{Protocol, SockAddr, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd};
use std::time::{Duration, Instant};

/// How long a step waits for the kernel to deliver something it is certain to deliver (a RST
/// or FIN in flight on loopback). Far above loopback latency, far below the step deadline.
pub const KERNEL_WAIT: Duration = Duration::from_secs(2);

/// poll() events that report the peer's FIN: POLLRDHUP where it exists, else POLLIN alone.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
pub const POLL_PEER_CLOSED: libc::c_short = libc::POLLIN | libc::POLLRDHUP;
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
pub const POLL_PEER_CLOSED: libc::c_short = libc::POLLIN;

/// A fresh TCP socket of `kind`'s address family (AF_INET, or AF_INET6 for IPv6) with no
/// options set. An AF_INET6 socket keeps the system's IPV6_V6ONLY default; over ::1 it makes
/// no difference.
pub fn tcp_socket(kind: Kind) -> Socket {
    Socket::new(kind.domain(), Type::STREAM, Some(Protocol::TCP))
        .unwrap_or_else(|e| panic!("socket({:?}, SOCK_STREAM): {e}", kind.domain()))
}

/// The port a socket is bound to.
pub fn local_port(sock: &Socket) -> u16 {
    sock.local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or(0, |a| a.port())
}

/// connect() a fresh socket to `kind`'s loopback:`port`, unrecorded: the socket, or the errno.
pub fn try_connect(kind: Kind, port: u16) -> Result<Socket, Errno> {
    let sock = tcp_socket(kind);
    match sock.connect(&SockAddr::from(kind.loopback(port))) {
        Ok(()) => Ok(sock),
        Err(e) => Err(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    }
}

/// The port of the peer a connected socket talks to.
pub fn peer_port(sock: &Socket) -> u16 {
    sock.peer_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or(0, |a| a.port())
}

/// poll()'s revents, spelled as the flags' names joined by `|`, or `timeout`.
pub fn revents_name(revents: libc::c_short) -> String {
    let mut names = vec![];
    let known: &[(libc::c_short, &str)] = &[
        (libc::POLLIN, "POLLIN"),
        (libc::POLLOUT, "POLLOUT"),
        (libc::POLLERR, "POLLERR"),
        (libc::POLLHUP, "POLLHUP"),
        #[cfg(any(target_os = "linux", target_os = "freebsd"))]
        (libc::POLLRDHUP, "POLLRDHUP"),
    ];
    for (bit, name) in known {
        if revents & bit != 0 {
            names.push(*name);
        }
    }
    if names.is_empty() {
        "timeout".into()
    } else {
        names.join("|")
    }
}

/// poll() one socket for `events`; the revents, or 0 on timeout.
pub fn poll_once(sock: &impl AsFd, events: libc::c_short, timeout: Duration) -> libc::c_short {
    let mut pfd = libc::pollfd {
        fd: sock.as_fd().as_raw_fd(),
        events,
        revents: 0,
    };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // SAFETY: one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as libc::c_int) };
        if n >= 0 || Errno::last() != Errno::EINTR {
            return if n > 0 { pfd.revents } else { 0 };
        }
    }
}

/// Bytes queued for reading (FIONREAD), 0 on error.
pub fn queued_bytes(sock: &impl AsFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let rc = unsafe { libc::ioctl(sock.as_fd().as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc < 0 {
        0
    } else {
        n as usize
    }
}

impl Ctx {
    /// A fresh TCP socket of this instance's kind, with no options set.
    pub fn tcp_socket(&self) -> Socket {
        tcp_socket(self.kind())
    }

    /// The loopback address the sides talk over: 127.0.0.1:`port`, or [::1]:`port` for IPv6.
    pub fn loopback(&self, port: u16) -> SocketAddr {
        self.kind().loopback(port)
    }

    /// A listener on loopback, port chosen by the kernel, with no options set. For an AF_UNIX
    /// kind, [`Ctx::unix_listen`], and port 0.
    pub fn listen(&mut self, backlog: i32) -> (Socket, u16) {
        if self.kind().is_unix() {
            return (self.unix_listen(backlog), 0);
        }
        let sock = self.tcp_socket();
        self.listen_with(sock, backlog)
    }

    /// A fresh AF_UNIX socket of this instance's type (SOCK_STREAM, or SOCK_SEQPACKET for
    /// [`Kind::UnixSeqpacket`]), with no options set.
    pub fn unix_socket(&self) -> Socket {
        let ty = self.kind().socket_type();
        Socket::new(socket2::Domain::UNIX, ty, None)
            .unwrap_or_else(|e| panic!("socket(AF_UNIX, {ty:?}): {e}"))
    }

    /// The pathname both sides of an AF_UNIX instance use: a file in the instance's private
    /// directory, which the runner made before it forked them ([`crate::spawn::unix_dir`]).
    pub fn unix_path(&self) -> std::path::PathBuf {
        crate::spawn::unix_dir::socket_path()
    }

    /// A fresh AF_UNIX socket bound to [`Ctx::unix_path`], listening with `backlog`.
    pub fn unix_listen(&mut self, backlog: i32) -> Socket {
        let sock = self.unix_socket();
        let path = self.unix_path();
        let addr = SockAddr::unix(&path).expect("a pathname that fits sun_path");
        sock.bind(&addr)
            .unwrap_or_else(|e| panic!("bind({}): {e}", path.display()));
        sock.listen(backlog).expect("listen");
        sock
    }

    /// connect() `sock` to [`Ctx::unix_path`], unrecorded: ok, or the errno.
    pub fn unix_try_connect(&self, sock: &Socket) -> Result<(), Errno> {
        let addr = SockAddr::unix(self.unix_path()).expect("a pathname that fits sun_path");
        sock.connect(&addr)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    }

    /// A fresh AF_UNIX socket connected to the server's [`Ctx::unix_path`].
    pub fn unix_connect(&mut self) -> Socket {
        let sock = self.unix_socket();
        self.begin("connect");
        if let Err(e) = self.unix_try_connect(&sock) {
            panic!("connect({}): {e}", self.unix_path().display());
        }
        sock
    }

    /// Bind `sock` (options already set by the case) to loopback port 0 and listen.
    pub fn listen_with(&mut self, sock: Socket, backlog: i32) -> (Socket, u16) {
        self.bind_and_listen(sock, 0, backlog)
    }

    /// Bind `sock` to loopback:`port` and listen.
    pub fn bind_and_listen(&mut self, sock: Socket, port: u16, backlog: i32) -> (Socket, u16) {
        let addr = self.loopback(port);
        sock.bind(&SockAddr::from(addr))
            .unwrap_or_else(|e| panic!("bind({addr}): {e}"));
        sock.listen(backlog).expect("listen");
        let port = local_port(&sock);
        self.claim_port(port);
        (sock, port)
    }

    /// bind() `sock` to loopback:`port`, the behaviour under test; records `ok(0)` or the errno.
    pub fn bind(&mut self, name: &str, sock: &Socket, port: u16) -> Value {
        self.begin(name);
        let value = match sock.bind(&SockAddr::from(self.loopback(port))) {
            Ok(()) => {
                self.claim_port(local_port(sock));
                Value::Ok(0)
            }
            Err(e) => Value::errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        };
        self.record(name, value.clone());
        value
    }

    /// Connect a fresh socket to loopback:`port`; for an AF_UNIX kind, to the server's path
    /// ([`Ctx::unix_connect`], the port is not used).
    pub fn connect(&mut self, port: u16) -> Socket {
        if self.kind().is_unix() {
            return self.unix_connect();
        }
        let sock = self.tcp_socket();
        let addr = self.loopback(port);
        self.begin("connect");
        sock.connect(&SockAddr::from(addr))
            .unwrap_or_else(|e| panic!("connect({addr}): {e}"));
        // The server's port too, in case it bound its listener by hand.
        self.claim_port(port);
        self.claim_port(local_port(&sock));
        sock
    }

    /// Accept one connection.
    pub fn accept(&mut self, listener: &Socket) -> Socket {
        self.begin("accept");
        listener.accept().expect("accept").0
    }

    /// read() up to `len` bytes; records `ok(n)`, `EOF` or the errno.
    pub fn read(&mut self, name: &str, sock: &Socket, len: usize) -> Value {
        let mut buf = vec![0u8; len.max(1)];
        self.begin(name);
        let value = Value::from_read(nix::unistd::read(sock.as_raw_fd(), &mut buf[..len]));
        self.record(name, value.clone());
        value
    }

    /// Read until EOF or an error; records the total bytes read and then how it ended, as two
    /// facts `name` (`ok(total)`) and `name.end` (`EOF` or the errno).
    pub fn read_to_end(&mut self, name: &str, sock: &Socket) -> (usize, Value) {
        let mut buf = [0u8; 64 * 1024];
        let mut total = 0usize;
        self.begin(name);
        let end = loop {
            match nix::unistd::read(sock.as_raw_fd(), &mut buf) {
                Ok(0) => break Value::Eof,
                Ok(n) => total += n,
                Err(Errno::EINTR) => {}
                Err(e) => break Value::errno(e),
            }
        };
        self.record(name, Value::Ok(total as i64));
        self.record(&format!("{name}.end"), end.clone());
        (total, end)
    }

    /// write() `data`; records `ok(n)` or the errno.
    pub fn write(&mut self, name: &str, sock: &Socket, data: &[u8]) -> Value {
        self.begin(name);
        let value = Value::from_ret(nix::unistd::write(sock, data));
        self.record(name, value.clone());
        value
    }

    /// send() `data` with `flags`; records `ok(n)` or the errno.
    pub fn send(&mut self, name: &str, sock: &Socket, data: &[u8], flags: MsgFlags) -> Value {
        self.begin(name);
        let value = Value::from_ret(nix::sys::socket::send(sock.as_raw_fd(), data, flags));
        self.record(name, value.clone());
        value
    }

    /// shutdown(); records `ok(0)` or the errno.
    pub fn shutdown(&mut self, name: &str, sock: &Socket, how: Shutdown) -> Value {
        self.begin(name);
        let value = Value::from_ret(nix::sys::socket::shutdown(sock.as_raw_fd(), how).map(|_| 0));
        self.record(name, value.clone());
        value
    }

    /// close(); records `ok(0)` or the errno. Takes the socket so that it cannot be used again.
    pub fn close(&mut self, name: &str, sock: Socket) -> Value {
        self.begin(name);
        let value = Value::from_ret(nix::unistd::close(sock.into_raw_fd()).map(|_| 0));
        self.record(name, value.clone());
        value
    }

    /// close() and record how long it took, as `name` and `name.ms`.
    pub fn close_timed(&mut self, name: &str, sock: Socket) -> (Value, Duration) {
        self.begin(name);
        let start = Instant::now();
        let value = Value::from_ret(nix::unistd::close(sock.into_raw_fd()).map(|_| 0));
        let took = start.elapsed();
        self.record(name, value.clone());
        self.record(
            &format!("{name}.ms"),
            Value::Millis(took.as_millis() as u64),
        );
        (value, took)
    }

    /// poll() for `events` for at most `timeout`; records the revents or `timeout`.
    /// Use it to show that something does *not* happen within a bounded wait.
    pub fn poll(
        &mut self,
        name: &str,
        sock: &impl AsFd,
        events: libc::c_short,
        timeout: Duration,
    ) -> String {
        self.begin(name);
        let revents = revents_name(poll_once(sock, events, timeout));
        self.record(name, Value::Text(revents.clone()));
        revents
    }

    /// Wait, unrecorded, until the kernel has delivered what the peer did to `sock`: data, FIN
    /// or RST make it readable (or errored, or hung up). Bounded by [`KERNEL_WAIT`]; if nothing
    /// arrives, the step that follows records what the socket is like without it.
    pub fn await_readable(&mut self, sock: &impl AsFd) {
        self.begin("await readable");
        poll_once(sock, libc::POLLIN, KERNEL_WAIT);
    }

    /// Wait, unrecorded, until a RST has torn the connection down (POLLERR or POLLHUP).
    pub fn await_reset(&mut self, sock: &impl AsFd) {
        self.begin("await reset");
        let deadline = Instant::now() + KERNEL_WAIT;
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let revents = poll_once(sock, 0, left);
            if revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                return;
            }
        }
    }

    /// Wait, unrecorded, until the socket's TCP state is `want` (polling TCP_INFO every
    /// millisecond), bounded by [`KERNEL_WAIT`]; the step that follows records what it is.
    /// Use it to wait for a segment the kernel sends by itself, such as a delayed ACK.
    pub fn await_tcp_state(&mut self, sock: &impl AsFd, want: &str) {
        self.begin(&format!("await {want}"));
        let deadline = Instant::now() + KERNEL_WAIT;
        while Instant::now() < deadline && super::tcp_state::of(sock).to_string() != want {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Wait, unrecorded, until at least `bytes` bytes are queued for reading (FIONREAD). For
    /// sockets that poll readable regardless, such as after SHUT_RD. Bounded by [`KERNEL_WAIT`].
    pub fn await_queued(&mut self, sock: &impl AsFd, bytes: usize) {
        self.begin("await queued data");
        let deadline = Instant::now() + KERNEL_WAIT;
        while queued_bytes(sock) < bytes && Instant::now() < deadline {
            // No event says "data queued" on a socket that is already readable: poll the
            // count, at a granularity far below any step deadline.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The TCP state of a socket this side holds; records it.
    pub fn tcp_state(&mut self, name: &str, sock: &impl AsFd) -> Value {
        let value = super::tcp_state::of(sock);
        self.record(name, value.clone());
        value
    }
}

/// SO_LINGER: `Some(secs)` turns lingering on with that timeout, `None` turns it off.
pub fn set_linger(sock: &Socket, secs: Option<u64>) {
    sock.set_linger(secs.map(Duration::from_secs))
        .expect("setsockopt(SO_LINGER)");
}
