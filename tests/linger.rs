//! The linger family, one test per case (see `cases/src/linger.rs`).
mod common;

case_tests!(linger:
    zero_sends_rst,
    zero_after_shutdown,
    timeout_blocks_close,
    not_applied_on_exit,
    default_close_is_immediate,
);
