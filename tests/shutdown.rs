//! The shutdown family, one test per case (see `cases/src/shutdown.rs`).
mod common;

case_tests!(shutdown:
    wr_half_close,
    wr_then_write,
    wr_with_unread_data_sends_fin,
    rd_sends_nothing,
    rdwr,
    unconnected,
);
