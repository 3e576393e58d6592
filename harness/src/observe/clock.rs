//! One timeline for a case: the sides' facts, the barriers' releases and the captured segments
//! are all offsets from the case's origin.
//!
//! The clock is CLOCK_REALTIME because that is what AF_PACKET stamps packets with: with
//! SO_TIMESTAMPNS the kernel stamps each frame it hands to a packet tap with `ktime_get_real()`
//! (net/core/dev.c `dev_queue_xmit_nit()` -> `net_timestamp_set()`), not with the monotonic
//! departure time TCP keeps in `skb->tstamp`. A case lasts milliseconds, so a step of the
//! realtime clock inside one is unlikely; offsets saturate at 0 rather than go negative.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the epoch, now, on the realtime clock.
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The instant a case's timeline starts at (taken just before the capture opens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub epoch_ns: u64,
}

impl Origin {
    pub fn now() -> Origin {
        Origin {
            epoch_ns: realtime_ns(),
        }
    }

    /// Microseconds from the origin to `epoch_ns`.
    pub fn offset_us(&self, epoch_ns: u64) -> u64 {
        epoch_ns.saturating_sub(self.epoch_ns) / 1000
    }

    /// Microseconds from the origin to now.
    pub fn elapsed_us(&self) -> u64 {
        self.offset_us(realtime_ns())
    }
}
