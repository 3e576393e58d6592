//! What a side records, and how its records reach the runner.
//!
//! A fact is a name and a [`Value`], in the order the side made it. Facts, barrier arrivals and
//! "about to call X" markers travel to the runner as JSON lines over a pipe ([`protocol`]), so a hung
//! side can be named down to the call it hung in.

pub mod bpf;
pub mod capture;
pub mod clock;
mod ctx;
pub mod pcblist;
pub(crate) mod protocol;
pub mod segment;
pub mod shape;
pub mod sock;
pub mod sock_diag;
pub mod tcp_state;

pub use ctx::{Ctx, Role};

use serde::{Deserialize, Serialize};
use std::fmt;

/// One observed outcome, rendered the way the docs and expectations write it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "v", rename_all = "snake_case")]
pub enum Value {
    /// A syscall returned this non-negative value: `ok(5)`.
    Ok(i64),
    /// A read returned 0: `EOF`.
    Eof,
    /// A syscall failed: the errno's name, such as `ECONNRESET`.
    Errno(String),
    /// The process called exit with this code: `exit 0`.
    Exit(i32),
    /// The process was killed by this signal: `killed by SIGPIPE`.
    Killed(String),
    /// A count, such as how often a signal handler ran.
    Count(u64),
    /// A TCP state name, such as `CLOSE_WAIT`.
    State(String),
    /// A duration in milliseconds; judged within a range, never to the millisecond.
    Millis(u64),
    /// Anything else with a fixed spelling, such as poll's revents `POLLIN|POLLHUP`.
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Ok(n) => write!(f, "ok({n})"),
            Value::Eof => f.write_str("EOF"),
            Value::Errno(name) | Value::State(name) | Value::Text(name) => f.write_str(name),
            Value::Exit(code) => write!(f, "exit {code}"),
            Value::Killed(sig) => write!(f, "killed by {sig}"),
            Value::Count(n) => write!(f, "{n}"),
            Value::Millis(ms) => write!(f, "{ms}ms"),
        }
    }
}

impl Value {
    /// The outcome of a read-like call: 0 bytes is EOF.
    pub fn from_read(res: nix::Result<usize>) -> Value {
        match res {
            Ok(0) => Value::Eof,
            Ok(n) => Value::Ok(n as i64),
            Err(e) => Value::errno(e),
        }
    }

    /// The outcome of a call whose success value is a count or 0.
    pub fn from_ret(res: nix::Result<usize>) -> Value {
        match res {
            Ok(n) => Value::Ok(n as i64),
            Err(e) => Value::errno(e),
        }
    }

    /// `Errno::ECONNRESET` → `ECONNRESET` (nix's Debug form is the C name).
    pub fn errno(e: nix::errno::Errno) -> Value {
        Value::Errno(format!("{e:?}"))
    }

    /// How a process ended, from its wait status.
    pub fn from_wait(status: nix::sys::wait::WaitStatus) -> Value {
        use nix::sys::wait::WaitStatus;
        match status {
            WaitStatus::Exited(_, code) => Value::Exit(code),
            WaitStatus::Signaled(_, sig, _) => Value::Killed(sig.as_str().to_string()),
            other => Value::Text(format!("{other:?}")),
        }
    }
}

/// One named observation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub name: String,
    pub value: Value,
    /// When it was made: microseconds from the case's origin, on the clock the captured
    /// segments are stamped with ([`clock`]), so that a ladder can place it among them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_us: Option<u64>,
}

impl Fact {
    /// A fact with no time attached.
    pub fn new(name: &str, value: Value) -> Fact {
        Fact {
            name: name.to_string(),
            value,
            at_us: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;
    use rstest::rstest;

    #[rstest]
    #[case::data(Value::from_read(Ok(5)), "ok(5)")]
    #[case::eof(Value::from_read(Ok(0)), "EOF")]
    #[case::reset(Value::from_read(Err(Errno::ECONNRESET)), "ECONNRESET")]
    #[case::zero_is_not_eof_for_close(Value::from_ret(Ok(0)), "ok(0)")]
    #[case::killed(Value::Killed("SIGPIPE".into()), "killed by SIGPIPE")]
    #[case::exit(Value::Exit(0), "exit 0")]
    #[case::millis(Value::Millis(1003), "1003ms")]
    fn renders_values(#[case] value: Value, #[case] want: &str) {
        assert_eq!(value.to_string(), want);
    }

    #[test]
    fn values_round_trip_through_json() {
        for v in [Value::Eof, Value::Errno("EPIPE".into()), Value::Millis(7)] {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), v);
        }
    }
}
