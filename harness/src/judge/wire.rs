//! Facts about the segments on the wire, judged where the case's traffic was captured.
//!
//! Placeholder: the capture (AF_PACKET on the namespace's loopback) and its facts are still to
//! come; until then no expectation names any.

/// One fact about the captured segments.
#[derive(Clone, Copy, Debug)]
pub enum WireFact {}
