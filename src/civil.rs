//! Civil dates in UTC and days since 1970-01-01, both ways (Howard Hinnant's
//! `civil_from_days` and `days_from_civil`): for bosun's log timestamps, the ECS
//! agent's dates, and the deployer's schedules. No time zone database.

/// (year, month 1..=12, day 1..=31) of a day counted from 1970-01-01.
pub fn from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days from 1970-01-01 to a date (negative before it).
pub fn days_from(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let (m, d) = (i64::from(m), i64::from(d));
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways() {
        assert_eq!(from_days(0), (1970, 1, 1));
        assert_eq!(days_from(2000, 2, 29), 11_016);
        assert_eq!(from_days(11_016), (2000, 2, 29));
        assert_eq!(from_days(-1), (1969, 12, 31));
        for d in [-800_000, -1, 0, 59, 20_819, 2_932_896] {
            let (y, m, day) = from_days(d);
            assert_eq!(days_from(y, m, day), d);
        }
    }
}
