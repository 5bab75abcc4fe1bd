//! Local wall-clock time for `--timestamp`, without a date-time crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Local time of day and date, with the offset from UTC in seconds.
pub(crate) struct LocalTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
    pub offset_secs: i64,
}

impl LocalTime {
    pub fn now() -> Self {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since_epoch.as_secs() as libc::time_t;
        let micros = since_epoch.subsec_micros();
        #[cfg(unix)]
        {
            // SAFETY: `localtime_r` is the thread-safe form; it only writes into `tm`, which
            // lives on this stack frame, and reads `secs`. A zeroed `tm` is a valid value.
            let mut tm: libc::tm = unsafe { std::mem::zeroed() };
            let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
            if ok {
                return LocalTime {
                    year: tm.tm_year + 1900,
                    month: (tm.tm_mon + 1) as u32,
                    day: tm.tm_mday as u32,
                    hour: tm.tm_hour as u32,
                    minute: tm.tm_min as u32,
                    second: tm.tm_sec as u32,
                    micros,
                    offset_secs: tm.tm_gmtoff,
                };
            }
        }
        Self::utc(secs as i64, micros)
    }

    /// UTC from seconds since 1970 (the fallback where no local time zone is known).
    fn utc(secs: i64, micros: u32) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's civil-from-days algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        LocalTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            micros,
            offset_secs: 0,
        }
    }

    /// `08:15:07.123` — the prefix of a text line.
    pub fn clock(&self) -> String {
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            self.hour,
            self.minute,
            self.second,
            self.micros / 1000
        )
    }

    /// `2026-11-25T08:15:07.123456+01:00` — RFC 3339, for JSON.
    pub fn rfc3339(&self) -> String {
        let sign = if self.offset_secs < 0 { '-' } else { '+' };
        let off = self.offset_secs.unsigned_abs();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{sign}{:02}:{:02}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.micros,
            off / 3600,
            off % 3600 / 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_are_right() {
        let t = LocalTime::utc(0, 0);
        assert_eq!(t.rfc3339(), "1970-01-01T00:00:00.000000+00:00");
        let t = LocalTime::utc(1_795_595_707, 123_456); // 2026-11-25 08:35:07 UTC
        assert_eq!(t.rfc3339(), "2026-11-25T08:35:07.123456+00:00");
        assert_eq!(t.clock(), "08:35:07.123");
        let t = LocalTime::utc(951_782_400, 0); // a leap day
        assert_eq!(t.rfc3339(), "2000-02-29T00:00:00.000000+00:00");
    }

    #[test]
    fn now_is_a_plausible_local_time() {
        let t = LocalTime::now();
        assert!(
            t.year >= 2024 && (1..=12).contains(&t.month) && t.hour < 24,
            "{}",
            t.rfc3339()
        );
    }
}
