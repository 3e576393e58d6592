//! The sockconf engine. Its modules follow the data path of one case:
//!
//! - [`case`]: what a case declares (id, doc, source, needs, the two sides' scripts, expectations);
//! - [`spawn`]: isolate the case (network namespace, loopback, sysctls) and fork the pair;
//! - [`observe`]: what the sides record (facts) and the helpers that record them;
//! - [`judge`]: expectations per OS and kernel, and the verdict;
//! - [`report`]: the per-case and per-run documents.
//!
//! A case runs in one fresh, single-threaded process (`sockconf run-case ID`), which
//! [`spawn::run_case`] turns into a [`report::CaseReport`].

pub mod case;
pub mod judge;
pub mod kind;
pub mod observe;
pub mod platform;
pub mod report;
pub mod spawn;

pub use case::{Case, Instance, Need, Side, SigPipe, Variant};
pub use judge::wire::{Seg, WireFact};
pub use judge::{any_ms, is, one_of, Expect, Facts, Kernel, Matcher, Os, Provenance};
pub use kind::Kind;
pub use observe::{Ctx, Fact, Role, Value};
