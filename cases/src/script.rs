//! Steps that many cases share, so that each case's script reads as its experiment.

use harness::observe::sock::set_linger;
use harness::Ctx;
use socket2::Socket;

/// Server: listen on loopback, tell the client the port, accept. Barriers: `listening`.
pub fn accept_one(ctx: &mut Ctx) -> (Socket, Socket) {
    let (listener, port) = ctx.listen(8);
    ctx.sync_with("listening", port.into());
    let conn = ctx.accept(&listener);
    (listener, conn)
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
