//! The line protocol between a side and the runner: one JSON object per line.

use super::Fact;
use serde::{Deserialize, Serialize};

/// Side → runner.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum Report {
    /// The side is about to make this call; names the call if the side then hangs.
    Begin { call: String },
    /// An observation.
    Fact(Fact),
    /// The side uses this local port (it bound, listened on or connected from it): on the
    /// host's shared loopback the capture keeps the connections on the case's ports only.
    Port { port: u16 },
    /// The side waits at barrier `step`, offering `value` to its peer.
    Arrive { step: String, value: u64 },
    /// The side's script failed outside the behaviour under test (setup went wrong).
    Error { message: String },
    /// The script returned; the side exits next.
    Done,
}

/// Runner → side: pass the barrier; `peer` is the value the other side offered.
#[derive(Debug, Serialize, Deserialize)]
pub struct Release {
    pub peer: u64,
}
