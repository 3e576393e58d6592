//! The fork family, one test per case (see `cases/src/fork.rs`).
mod common;

case_tests!(fork:
    close_one_holder_sends_nothing,
    shutdown_affects_all_holders,
    child_exit_keeps_connection,
    dup_refcount,
    last_holder_unread_data_sends_rst,
);
