//! Injectable time sources, and RFC 3339 timestamps in UTC.
//!
//! Library code never calls `SystemTime::now()` directly (clippy enforces it); it asks a
//! [`SharedTimeSource`], so tests can drive expiry and refresh with a [`ManualTimeSource`].
//!
//! [`parse_rfc3339`] and [`format_rfc3339`] read and write timestamps as Google's APIs and
//! AWS's `credential_process` write them (`2026-01-02T03:04:05Z`).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Parse an RFC 3339 UTC timestamp (`Z` or `+00:00`, optional fractional seconds).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = fly_oidc::time::parse_rfc3339("2023-11-14T22:13:20.5Z").unwrap();
/// assert_eq!(t, UNIX_EPOCH + Duration::from_millis(1_700_000_000_500));
/// assert!(fly_oidc::time::parse_rfc3339("yesterday").is_none());
/// ```
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let body = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix('z'))
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = body.split_once(['T', 't'])?;
    let mut d = date.split('-');
    let year: i64 = num(d.next()?, 4)?;
    let month: u32 = num(d.next()?, 2)?;
    let day: u32 = num(d.next()?, 2)?;
    if d.next().is_some() {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let mut t = hms.split(':');
    let hour: u64 = num(t.next()?, 2)?;
    let minute: u64 = num(t.next()?, 2)?;
    let second: u64 = num(t.next()?, 2)?;
    if t.next().is_some()
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let nanos = match frac {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
        None => 0,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Format a time as RFC 3339 UTC with whole seconds (`2023-11-14T22:13:20Z`).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(fly_oidc::time::format_rfc3339(t), "2023-11-14T22:13:20Z");
/// ```
pub fn format_rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn num<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

// Howard Hinnant's days-from-civil algorithm (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        for secs in [
            0u64,
            951_782_400,
            1_700_000_000,
            4_102_444_800,
            1_709_164_800,
        ] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t), "{secs}");
        }
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00+00:00"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_164_800))
        );
        for bad in [
            "",
            "2024-02-29",
            "2024-13-01T00:00:00Z",
            "2024-02-29T24:00:00Z",
            "2024-02-29T00:00:00+02:00",
            "2024-02-29T00:00:00.Z",
            "2024-02-29T00:00:00.1234567890Z",
            "1969-12-31T23:59:59Z",
            "२०२४-02-29T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
