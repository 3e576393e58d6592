//! Steps that many cases share, so that each case's script reads as its experiment.

use harness::observe::sock::set_linger;
use harness::{Ctx, Value};
use nix::sys::socket::MsgFlags;
use socket2::{SockAddr, Socket};

/// Server: listen on loopback, tell the client the port, accept. Barriers: `listening`.
pub fn accept_one(ctx: &mut Ctx) -> (Socket, Socket) {
    let (listener, port) = ctx.listen(8);
    ctx.sync_with("listening", port.into());
    let conn = ctx.accept(&listener);
    (listener, conn)
}

/// Server: accept, then read once (expecting the client's FIN). Barriers: `listening`.
pub fn accept_and_read_eof(ctx: &mut Ctx) {
    let (_l, conn) = accept_one(ctx);
    ctx.read("read", &conn, 64);
}

/// Client: learn the server's port and connect. Barriers: `listening`.
pub fn connect_to_server(ctx: &mut Ctx) -> Socket {
    let port = ctx.sync_with("listening", 0) as u16;
    ctx.connect(port)
}

/// Abort the connection: SO_LINGER {1, 0}, then close(), which sends RST instead of FIN.
pub fn abort(ctx: &mut Ctx, sock: Socket) {
    set_linger(&sock, Some(0));
    ctx.close("close(linger 0)", sock);
}

/// The outcome of a socket2 call that returns nothing: `ok(0)` or the errno's name.
pub fn io_outcome(res: std::io::Result<()>) -> Value {
    match res {
        Ok(()) => Value::Ok(0),
        Err(e) => Value::errno(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    }
}

/// Bind a fresh socket, with no options set, to 127.0.0.1:`port`; records `ok(0)` or the errno.
/// The socket is dropped at once: only whether the port was free matters.
pub fn bind_again(ctx: &mut Ctx, name: &str, port: u16) -> Value {
    let sock = ctx.tcp_socket();
    ctx.begin(name);
    let value = io_outcome(sock.bind(&SockAddr::from(ctx.loopback(port))));
    ctx.record(name, value.clone());
    value
}

/// Client: learn the server's port and connect `sock` (options already set by the case).
/// Barriers: `listening`.
pub fn connect_with(ctx: &mut Ctx, sock: Socket) -> Socket {
    let port = ctx.sync_with("listening", 0) as u16;
    ctx.begin("connect");
    sock.connect(&SockAddr::from(ctx.loopback(port)))
        .expect("connect(127.0.0.1)");
    sock
}

/// Write 5 bytes twice (`write#1`, `write#2`): the first write to a broken connection, and the
/// one after it, which shows whether the first changed anything.
pub fn write_twice(ctx: &mut Ctx, conn: &Socket) {
    ctx.write("write#1", conn, b"hello");
    ctx.write("write#2", conn, b"hello");
}

/// [`write_twice`] with send() and MSG_NOSIGNAL (`send#1`, `send#2`): no SIGPIPE whatever the
/// disposition.
pub fn send_nosignal_twice(ctx: &mut Ctx, conn: &Socket) {
    ctx.send("send#1", conn, b"hello", MSG_NOSIGNAL);
    ctx.send("send#2", conn, b"hello", MSG_NOSIGNAL);
}

/// MSG_NOSIGNAL. nix names it everywhere but on macOS, whose kernel has it all the same
/// (xnu bsd/sys/socket.h `MSG_NOSIGNAL 0x80000`, honoured by sendit()); libc has the value.
#[cfg(not(target_os = "macos"))]
const MSG_NOSIGNAL: MsgFlags = MsgFlags::MSG_NOSIGNAL;
#[cfg(target_os = "macos")]
const MSG_NOSIGNAL: MsgFlags = MsgFlags::from_bits_retain(libc::MSG_NOSIGNAL);
