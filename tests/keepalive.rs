//! The keepalive family, one test per case (see `cases/src/keepalive.rs`).
mod common;

case_tests!(keepalive:
    detects_vanished_peer,
    unanswered_probes_time_out,
);
