//! When a schedule runs: a rate's period, a cron expression's next run and its
//! longest gap (evaluated in UTC), and the durations and ISO 8601 dates of the file.

use super::schedule::{check, number, Field, DAYS, MONTHS};

/// `90m`, `26h`, `2d` as seconds.
pub fn duration_secs(s: &str) -> Option<u64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    let mult = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    (n > 0).then_some(n * mult)
}

/// An ISO 8601 date as Unix seconds.
pub fn iso_secs(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (d.next()?, d.next()?, d.next()?);
    if y.len() != 4 || m.len() != 2 || day.len() != 2 {
        return None;
    }
    let (y, m, day): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, day.parse().ok()?);
    let days_in = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in {
        return None;
    }
    let mut secs = days_from_civil(y, m, day) * 86_400;
    if let Some(t) = time {
        let (clock, offset) = if let Some(c) = t.strip_suffix('Z') {
            (c, 0)
        } else if let Some(i) = t.rfind(['+', '-']) {
            let (c, o) = t.split_at(i);
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
            (c, sign * (oh * 3600 + om * 60))
        } else {
            (t, 0)
        };
        let clock = clock.split('.').next()?;
        let mut parts = clock.split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let min: i64 = parts.next()?.parse().ok()?;
        let sec: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        if parts.next().is_some() || h > 23 || min > 59 || sec > 59 {
            return None;
        }
        secs += h * 3600 + min * 60 + sec - offset;
    }
    Some(secs)
}

/// The seconds between two runs of a `rate(...)` expression; `None` for anything else.
pub fn rate_secs(expr: &str) -> Option<u64> {
    let inner = expr.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let mut parts = inner.split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    let unit = match parts.next()?.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(n * unit)
}

/// The longest time between two runs of `expr`: a rate's period, or for a cron, the
/// longest gap between its runs over the next two years (the weekend of a
/// weekdays-only job, say). `None` for a one-off `at(...)`, an expression that runs
/// fewer than twice in that time, or a form this does not evaluate (`W`).
pub fn longest_gap(expr: &str, from_secs: i64) -> Option<u64> {
    if let Some(secs) = rate_secs(expr) {
        return Some(secs);
    }
    let cron = Cron::parse(expr)?;
    let until = from_secs + 2 * 366 * 86_400;
    let mut prev = cron.next_after(from_secs, until)?;
    let mut longest = 0;
    while let Some(next) = cron.next_after(prev, until) {
        longest = longest.max((next - prev) as u64);
        prev = next;
    }
    (longest > 0).then_some(longest)
}

/// The first run of a `cron(...)` expression after `after_secs` (Unix seconds, the
/// expression read in UTC), within five years; `None` for other forms.
pub fn next_after(expr: &str, after_secs: i64) -> Option<i64> {
    Cron::parse(expr)?.next_after(after_secs, after_secs + 5 * 366 * 86_400)
}

/// A cron expression as sets of matching values.
struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    /// Day-of-month values, or `None` when it is `?`.
    dom: Option<Vec<bool>>,
    dom_last: bool,
    months: Vec<bool>,
    /// Day-of-week (1 = Sunday) plain values, `n#k` and `nL`; `None` when `?`.
    dow: Option<Vec<bool>>,
    dow_nth: Vec<(u32, u32)>,
    dow_last: Vec<u32>,
    years: Option<Vec<bool>>,
}

impl Cron {
    fn parse(expr: &str) -> Option<Cron> {
        check(expr).ok()?;
        let inner = expr.trim().strip_prefix("cron(")?.strip_suffix(')')?;
        let f: Vec<&str> = inner.split_whitespace().collect();
        let set = |value: &str, min: u32, max: u32, names: &[&str]| -> Option<Vec<bool>> {
            let spec = Field {
                name: "",
                min,
                max,
                names: &[],
            };
            let num = |s: &str| {
                names
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(s))
                    .map(|i| min + i as u32)
                    .or_else(|| number(s, &spec).ok())
            };
            let mut on = vec![false; (max + 1) as usize];
            for part in value.split(',') {
                let (range, step) = match part.split_once('/') {
                    Some((r, s)) => (r, s.parse::<u32>().ok()?),
                    None => (part, 1),
                };
                let (a, b) = match range {
                    "*" => (min, max),
                    r => match r.split_once('-') {
                        Some((a, b)) => (num(a)?, num(b)?),
                        None if step > 1 => (num(r)?, max),
                        None => (num(r)?, num(r)?),
                    },
                };
                // In order from a to b (a day-of-week range may wrap: FRI-MON),
                // every step-th value counted from a.
                let mut values = Vec::new();
                let mut v = a;
                loop {
                    values.push(v);
                    if v == b || values.len() > (max - min + 1) as usize {
                        break;
                    }
                    v = if v >= max { min } else { v + 1 };
                }
                for v in values.into_iter().step_by(step.max(1) as usize) {
                    on[v as usize] = true;
                }
            }
            Some(on)
        };
        let mut dom_last = false;
        let dom = match f[2] {
            "?" => None,
            "L" => {
                dom_last = true;
                Some(vec![false; 32])
            }
            v if v.contains('W') => return None,
            v => Some(set(v, 1, 31, &[])?),
        };
        let (mut dow_nth, mut dow_last) = (Vec::new(), Vec::new());
        let dow = match f[4] {
            "?" => None,
            v => {
                let mut plain = Vec::new();
                for part in v.split(',') {
                    if let Some((d, n)) = part.split_once('#') {
                        dow_nth.push((day_number(d)?, n.parse().ok()?));
                    } else if part == "L" {
                        dow_last.push(7);
                    } else if let Some(d) = part.strip_suffix('L') {
                        dow_last.push(day_number(d)?);
                    } else {
                        plain.push(part);
                    }
                }
                Some(if plain.is_empty() {
                    vec![false; 8]
                } else {
                    set(&plain.join(","), 1, 7, &DAYS)?
                })
            }
        };
        Some(Cron {
            minutes: set(f[0], 0, 59, &[])?,
            hours: set(f[1], 0, 23, &[])?,
            dom,
            dom_last,
            months: set(f[3], 1, 12, &MONTHS)?,
            dow,
            dow_nth,
            dow_last,
            years: match f[5] {
                "*" => None,
                v => Some(set(v, 1970, 2199, &[])?),
            },
        })
    }

    fn day_matches(&self, y: i64, m: u32, d: u32) -> bool {
        if let Some(years) = &self.years {
            if !(1970..=2199).contains(&y) || !years[y as usize] {
                return false;
            }
        }
        if !self.months[m as usize] {
            return false;
        }
        let last = days_in_month(y, m);
        if let Some(dom) = &self.dom {
            return dom[d as usize] || (self.dom_last && d == last);
        }
        // 1 = Sunday, as Scheduler counts.
        let wd = (weekday(y, m, d) + 1) as u32;
        let dow = self.dow.as_deref().unwrap_or(&[]);
        dow.get(wd as usize).copied().unwrap_or(false)
            || self
                .dow_nth
                .iter()
                .any(|&(w, n)| w == wd && (d - 1) / 7 + 1 == n)
            || self.dow_last.iter().any(|&w| w == wd && d + 7 > last)
    }

    fn next_after(&self, after: i64, until: i64) -> Option<i64> {
        let mut day = after.div_euclid(86_400);
        while day * 86_400 <= until {
            let (y, m, d) = civil(day);
            if self.day_matches(y, m, d) {
                for h in 0..24 {
                    if !self.hours[h] {
                        continue;
                    }
                    for min in 0..60 {
                        let t = day * 86_400 + (h as i64) * 3600 + (min as i64) * 60;
                        if self.minutes[min] && t > after {
                            return (t <= until).then_some(t);
                        }
                    }
                }
            }
            day += 1;
        }
        None
    }
}

fn day_number(s: &str) -> Option<u32> {
    DAYS.iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|i| i as u32 + 1)
        .or_else(|| s.parse().ok().filter(|n| (1..=7).contains(n)))
}

pub use crate::civil::{days_from as days_from_civil, from_days as civil};

/// 0 = Sunday.
fn weekday(y: i64, m: u32, d: u32) -> i64 {
    (days_from_civil(y, m, d) + 4).rem_euclid(7)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::{days_from_civil, longest_gap, next_after};

    /// Unix seconds of a UTC date and time.
    fn at(y: i64, m: u32, d: u32, h: i64, min: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60
    }

    #[test]
    fn next_runs_of_cron_expressions() {
        // Monday 2026-12-07 10:00 UTC.
        let now = at(2026, 12, 7, 10, 0);
        let next = |e: &str| next_after(e, now);
        assert_eq!(next("cron(0 3 * * ? *)"), Some(at(2026, 12, 8, 3, 0)));
        assert_eq!(
            next("cron(0/15 * ? * MON-FRI *)"),
            Some(at(2026, 12, 7, 10, 15))
        );
        assert_eq!(next("cron(0 8 1 * ? *)"), Some(at(2027, 1, 1, 8, 0)));
        assert_eq!(next("cron(0 18 ? * 6#3 *)"), Some(at(2026, 12, 18, 18, 0)));
        assert_eq!(next("cron(0 0 L * ? *)"), Some(at(2026, 12, 31, 0, 0)));
        assert_eq!(next("cron(0 9 ? * SAT *)"), Some(at(2026, 12, 12, 9, 0)));
        assert_eq!(next("cron(0 9 ? * 6L *)"), Some(at(2026, 12, 25, 9, 0)));
        assert_eq!(next("cron(0 9 * * ? 2025)"), None);
        assert_eq!(next("rate(5 minutes)"), None);
    }

    #[test]
    fn longest_gaps() {
        let now = at(2026, 12, 7, 10, 0);
        assert_eq!(longest_gap("rate(6 hours)", now), Some(6 * 3600));
        assert_eq!(longest_gap("cron(0 3 * * ? *)", now), Some(86_400));
        // Friday 03:00 to Monday 03:00.
        assert_eq!(
            longest_gap("cron(0 3 ? * MON-FRI *)", now),
            Some(3 * 86_400)
        );
        assert_eq!(longest_gap("cron(0/20 * * * ? *)", now), Some(1200));
        assert_eq!(longest_gap("at(2027-01-01T00:00:00)", now), None);
    }
}
