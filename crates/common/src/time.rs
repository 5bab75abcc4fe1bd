//! Local wall-clock time for `--timestamp`, on every OS.
//!
//! jiff reads the time zone the way each OS keeps it (`TZ` and `/etc/localtime` on Unix,
//! the system setting on Windows), so a reader in China sees Beijing time, never UTC.

/// Local time of day and date, with the offset from UTC in seconds.
pub(crate) struct LocalTime {
    pub year: i16,
    pub month: i8,
    pub day: i8,
    pub hour: i8,
    pub minute: i8,
    pub second: i8,
    pub micros: i32,
    pub offset_secs: i32,
}

impl LocalTime {
    /// Now, in the system's time zone (UTC only where the OS names none).
    pub fn now() -> Self {
        Self::from_zoned(&jiff::Zoned::now())
    }

    fn from_zoned(z: &jiff::Zoned) -> Self {
        LocalTime {
            year: z.year(),
            month: z.month(),
            day: z.day(),
            hour: z.hour(),
            minute: z.minute(),
            second: z.second(),
            micros: z.subsec_nanosecond() / 1000,
            offset_secs: z.offset().seconds(),
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

    fn at(secs: i64, micros: i32, zone: &str) -> LocalTime {
        let ts = jiff::Timestamp::new(secs, micros * 1000).unwrap();
        LocalTime::from_zoned(&ts.in_tz(zone).unwrap())
    }

    #[test]
    fn utc_dates_are_right() {
        assert_eq!(at(0, 0, "UTC").rfc3339(), "1970-01-01T00:00:00.000000+00:00");
        let t = at(1_795_595_707, 123_456, "UTC"); // 2026-11-25 08:35:07 UTC
        assert_eq!(t.rfc3339(), "2026-11-25T08:35:07.123456+00:00");
        assert_eq!(t.clock(), "08:35:07.123");
        assert_eq!(at(951_782_400, 0, "UTC").rfc3339(), "2000-02-29T00:00:00.000000+00:00");
    }

    #[test]
    fn local_time_carries_the_zone_offset() {
        // Beijing is UTC+8 all year; New York is UTC-5 in November.
        let t = at(1_795_595_707, 0, "Asia/Shanghai");
        assert_eq!(t.rfc3339(), "2026-11-25T16:35:07.000000+08:00");
        assert_eq!(at(1_795_595_707, 0, "America/New_York").clock(), "03:35:07.000");
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
