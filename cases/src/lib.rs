//! The catalogue: one module per case family. A case is one [`harness::Case`] literal; adding
//! one touches its family's file (and its family's test file under `tests/`).

pub mod close;
pub mod finwait2;
pub mod keepalive;
mod script;
pub mod timewait;

use harness::Case;

/// Every case, in catalogue order (family by family, as declared).
pub fn all() -> Vec<&'static Case> {
    [
        close::CASES,
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
