//! The catalogue: one module per case family. A case is one [`harness::Case`] literal; adding
//! one touches its family's file (and its family's test file under `tests/`).

pub mod backlog;
pub mod close;
pub mod finwait2;
pub mod fork;
pub mod keepalive;
pub mod linger;
mod script;
pub mod shutdown;
pub mod sigpipe;
pub mod timewait;

use harness::Case;

/// Every case, in catalogue order (family by family, as declared).
pub fn all() -> Vec<&'static Case> {
    [
        close::CASES,
        shutdown::CASES,
        sigpipe::CASES,
        linger::CASES,
        backlog::CASES,
        fork::CASES,
        timewait::CASES,
        finwait2::CASES,
        keepalive::CASES,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The case with this exact id.
pub fn by_id(id: &str) -> Option<&'static Case> {
    all().into_iter().find(|c| c.id == id)
}
