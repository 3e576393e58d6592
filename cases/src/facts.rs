//! Fact lists that cases of several families expect of a side, named once. A list that only
//! one family uses is named in its file.

use harness::Role::{Client, Server};
use harness::{is, Matcher, Seg, WireFact};

/// The side close()s and exits.
pub const CLOSE_EXIT: &[(&str, Matcher)] = &[("close", is("ok(0)")), ("exit", is("exit 0"))];

/// The side aborts the connection ([`crate::script::abort`]: SO_LINGER {1,0}, then close())
/// and exits.
pub const ABORT_EXIT: &[(&str, Matcher)] =
    &[("close(linger 0)", is("ok(0)")), ("exit", is("exit 0"))];

/// The side reads EOF (as [`crate::script::accept_and_read_eof`] does) and exits.
pub const READ_EOF_EXIT: &[(&str, Matcher)] = &[("read", is("EOF")), ("exit", is("exit 0"))];

/// The side records nothing but its normal exit.
pub const EXIT_ONLY: &[(&str, Matcher)] = &[("exit", is("exit 0"))];

/// On the wire, an orderly close that the client begins: its FIN goes first, each FIN is
/// acknowledged, and neither end resets.
pub const CLIENT_CLOSES_FIRST_ORDERLY: &[WireFact] = &[
    WireFact::Before((Client, Seg::Fin), (Server, Seg::Fin)),
    WireFact::FinAcked(Client),
    WireFact::FinAcked(Server),
    WireFact::Count(Client, Seg::Rst, 0),
    WireFact::Count(Server, Seg::Rst, 0),
];
