//! The timewait family, one test per case (see `cases/src/timewait.rs`).
mod common;

case_tests!(timewait:
    active_closer_holds_time_wait,
    rebind_without_reuseaddr,
    reuseaddr_matrix,
    rebind_while_listening,
    passive_closer_can_rebind,
    tw_reuse,
);
