//! The finwait2 family, one test per case (see `cases/src/finwait2.rs`).
mod common;

case_tests!(finwait2:
    orphan_timeout,
    held_socket_stays,
);
