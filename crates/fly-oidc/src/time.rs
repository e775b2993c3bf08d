//! Injectable time sources.
//!
//! Library code never calls `SystemTime::now()` directly (clippy enforces it); it asks a
//! [`SharedTimeSource`], so tests can drive expiry and refresh with a [`ManualTimeSource`].

pub use crate::rfc3339::{format_rfc3339, parse_rfc3339};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A source of the current wall-clock time.
pub trait TimeSource: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemTimeSource;

impl TimeSource for SystemTimeSource {
    fn now(&self) -> SystemTime {
        #[allow(clippy::disallowed_methods)] // the one place the wall clock is read
        SystemTime::now()
    }
}

/// A clock that only moves when told to; for tests.
///
/// ```
/// use fly_oidc::time::{ManualTimeSource, TimeSource};
/// use std::time::{Duration, UNIX_EPOCH};
/// let clock = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_700_000_060));
/// ```
#[derive(Clone, Debug)]
pub struct ManualTimeSource {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualTimeSource {
    /// A clock that reads `start` until moved.
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Set the time.
    pub fn set(&self, now: SystemTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Move the time forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl TimeSource for ManualTimeSource {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A cheaply clonable, shared [`TimeSource`].
#[derive(Clone, Debug)]
pub struct SharedTimeSource(Arc<dyn TimeSource>);

impl SharedTimeSource {
    /// Wrap a time source.
    pub fn new(source: impl TimeSource + 'static) -> Self {
        Self(Arc::new(source))
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        self.0.now()
    }
}

impl Default for SharedTimeSource {
    fn default() -> Self {
        Self::new(SystemTimeSource)
    }
}

impl TimeSource for SharedTimeSource {
    fn now(&self) -> SystemTime {
        self.0.now()
    }
}
