//! The sigpipe family, one test per case (see `cases/src/sigpipe.rs`).
mod common;

case_tests!(sigpipe:
    default_kills,
    ignored_returns_epipe,
    handler_runs,
    msg_nosignal,
    // The option does not exist on Linux; the case says so as its skip reason.
    #[cfg_attr(target_os = "linux", ignore = "no SO_NOSIGPIPE on Linux")]
    so_nosigpipe,
    after_own_shutdown,
);
