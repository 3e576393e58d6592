//! The backlog family, one test per case (see `cases/src/backlog.rs`).
mod common;

case_tests!(backlog:
    truncated_to_somaxconn,
    small_backlog_completions,
    negative_means_max,
    overflow_completes_after_accept,
    abort_on_overflow,
);
