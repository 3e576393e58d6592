//! The close family, one test per case (see `cases/src/close.rs`).
mod common;

case_tests!(close:
    fin_then_eof,
    unread_data_sends_rst,
    peer_writes_after_close,
    read_after_reset,
    write_after_reset,
    exit_sends_fin,
    kill_sends_fin,
    kill_with_unread_data_sends_rst,
    three_segment_close,
    four_segment_close,
);
