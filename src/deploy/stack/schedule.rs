//! EventBridge Scheduler expressions: `cron(min hour day-of-month month day-of-week
//! year)`, `rate(N unit)` and `at(yyyy-mm-ddThh:mm:ss)`, checked as AWS documents them
//! (moto does not check them at all).

/// Check a schedule expression; the error says what is wrong and what is allowed.
pub fn check(expr: &str) -> Result<(), String> {
    let e = expr.trim();
    if let Some(inner) = e.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        return cron(inner);
    }
    if let Some(inner) = e.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        return rate(inner);
    }
    if let Some(inner) = e.strip_prefix("at(").and_then(|r| r.strip_suffix(')')) {
        return at(inner);
    }
    Err(format!("'{expr}' is not cron(...), rate(...) or at(...)"))
}

fn rate(inner: &str) -> Result<(), String> {
    let mut parts = inner.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "rate({inner}): expected rate(VALUE UNIT), for example rate(5 minutes)"
        ));
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("rate({inner}): '{n}' is not a positive whole number"))?;
    if n == 0 {
        return Err(format!("rate({inner}): the value must be at least 1"));
    }
    let (singular, plural) = match unit {
        "minute" | "minutes" => ("minute", "minutes"),
        "hour" | "hours" => ("hour", "hours"),
        "day" | "days" => ("day", "days"),
        _ => {
            return Err(format!(
                "rate({inner}): unit '{unit}' is not minute(s), hour(s) or day(s)"
            ))
        }
    };
    match (n, unit == singular) {
        (1, false) => Err(format!(
            "rate({inner}): a value of 1 takes the singular: rate(1 {singular})"
        )),
        (n, true) if n != 1 => Err(format!(
            "rate({inner}): a value above 1 takes the plural: rate({n} {plural})"
        )),
        _ => Ok(()),
    }
}

fn at(inner: &str) -> Result<(), String> {
    let bad = || format!("at({inner}): expected at(yyyy-mm-ddThh:mm:ss)");
    let (date, time) = inner.split_once('T').ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3
        || t.len() != 3
        || d[0].len() != 4
        || [d[1], d[2], t[0], t[1], t[2]].iter().any(|x| x.len() != 2)
    {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let (y, mo, da, h, mi, se) = (
        num(d[0])?,
        num(d[1])?,
        num(d[2])?,
        num(t[0])?,
        num(t[1])?,
        num(t[2])?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("at({inner}): month {mo} is not 01..12")),
    };
    if da == 0 || da > days {
        return Err(format!("at({inner}): day {da} is not in 01..{days}"));
    }
    if h > 23 || mi > 59 || se > 59 {
        return Err(format!("at({inner}): time {time} is not hh:mm:ss"));
    }
    Ok(())
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

fn cron(inner: &str) -> Result<(), String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "cron({inner}): {} fields; expected 6: minutes hours day-of-month month day-of-week year",
            fields.len()
        ));
    }
    let spec = [
        Field {
            name: "minutes",
            min: 0,
            max: 59,
            names: &[],
        },
        Field {
            name: "hours",
            min: 0,
            max: 23,
            names: &[],
        },
        Field {
            name: "day-of-month",
            min: 1,
            max: 31,
            names: &[],
        },
        Field {
            name: "month",
            min: 1,
            max: 12,
            names: &MONTHS,
        },
        Field {
            name: "day-of-week",
            min: 1,
            max: 7,
            names: &DAYS,
        },
        Field {
            name: "year",
            min: 1970,
            max: 2199,
            names: &[],
        },
    ];
    let (dom, dow) = (fields[2], fields[4]);
    match (dom == "?", dow == "?") {
        (true, true) => {
            return Err(format!(
                "cron({inner}): day-of-month and day-of-week cannot both be '?'"
            ))
        }
        (false, false) => {
            return Err(format!(
                "cron({inner}): one of day-of-month ('{dom}') and day-of-week ('{dow}') must be '?'"
            ))
        }
        _ => {}
    }
    for (i, (value, f)) in fields.iter().zip(spec.iter()).enumerate() {
        if *value == "?" {
            if i != 2 && i != 4 {
                return Err(format!(
                    "cron({inner}): '?' is only allowed in day-of-month and day-of-week, not {}",
                    f.name
                ));
            }
            continue;
        }
        field(value, f, i).map_err(|e| format!("cron({inner}): {}: {e}", f.name))?;
    }
    Ok(())
}

fn field(value: &str, f: &Field, index: usize) -> Result<(), String> {
    for part in value.split(',') {
        if part.is_empty() {
            return Err(format!("empty list item in '{value}'"));
        }
        // Specials: L (last), W (weekday), # (nth weekday).
        if index == 2 && (part == "L" || part == "LW") {
            continue;
        }
        if index == 2 {
            if let Some(d) = part.strip_suffix('W') {
                number(d, f)?;
                continue;
            }
        }
        if index == 4 {
            if let Some((d, n)) = part.split_once('#') {
                number(d, f)?;
                let n: u32 = n.parse().map_err(|_| format!("'{part}': '#' takes 1..5"))?;
                if !(1..=5).contains(&n) {
                    return Err(format!("'{part}': '#' takes 1..5"));
                }
                continue;
            }
            if part == "L" {
                continue;
            }
            if let Some(d) = part.strip_suffix('L') {
                number(d, f)?;
                continue;
            }
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        if let Some(s) = step {
            let s: u32 = s
                .parse()
                .map_err(|_| format!("'{part}': step '{s}' is not a number"))?;
            if s == 0 || s > f.max {
                return Err(format!("'{part}': step {s} is not in 1..{}", f.max));
            }
        }
        if range == "*" {
            continue;
        }
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a, f)?, number(b, f)?);
                if a > b && index != 4 {
                    return Err(format!("'{part}': range {a}-{b} runs backwards"));
                }
            }
            None => {
                number(range, f)?;
            }
        }
    }
    Ok(())
}

fn number(s: &str, f: &Field) -> Result<u32, String> {
    if let Some(i) = f.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(f.min + i as u32);
    }
    let n: u32 = s.parse().map_err(|_| {
        if f.names.is_empty() {
            format!("'{s}' is not a number in {}..{}", f.min, f.max)
        } else {
            format!(
                "'{s}' is not {}..{} or one of {}",
                f.min,
                f.max,
                f.names.join(",")
            )
        }
    })?;
    if n < f.min || n > f.max {
        return Err(format!("{n} is out of range: allowed {}..{}", f.min, f.max));
    }
    Ok(n)
}

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

/// (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's
/// civil_from_days).
pub fn civil(days: i64) -> (i64, u32, u32) {
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

/// Days from 1970-01-01 to a date (Howard Hinnant's days_from_civil).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let (m, d) = (i64::from(m), i64::from(d));
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

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
    use super::check;
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

    #[test]
    fn valid_expressions() {
        for e in [
            "cron(0 3 * * ? *)",
            "cron(0/15 * ? * MON-FRI *)",
            "cron(0 8 1 * ? *)",
            "cron(0 18 ? * 6#3 *)",
            "cron(0 0 L * ? 2026-2030)",
            "cron(15 10 ? JAN,JUL 2L *)",
            "cron(0 9 15W * ? *)",
            "rate(1 minute)",
            "rate(5 minutes)",
            "rate(2 days)",
            "at(2026-02-28T23:59:00)",
            "at(2028-02-29T00:00:00)",
        ] {
            assert_eq!(check(e), Ok(()), "{e}");
        }
    }

    #[test]
    fn invalid_expressions_say_why() {
        for (e, why) in [
            ("cron(0 3 * * *)", "expected 6"),
            ("cron(0 3 * * * *)", "must be '?'"),
            ("cron(0 3 ? * ? *)", "cannot both"),
            (
                "cron(60 3 * * ? *)",
                "minutes: 60 is out of range: allowed 0..59",
            ),
            ("cron(0 24 * * ? *)", "hours"),
            ("cron(0 3 * 13 ? *)", "month"),
            ("cron(0 3 * FOO ? *)", "JAN"),
            ("cron(0 3 ? * 8 *)", "day-of-week"),
            ("cron(0 3 ? * MON#6 *)", "'#' takes 1..5"),
            ("cron(0 3 * * ? 1969)", "year"),
            ("cron(? 3 * * ? *)", "only allowed"),
            ("cron(0/0 3 * * ? *)", "step 0"),
            ("rate(1 minutes)", "singular"),
            ("rate(5 minute)", "plural"),
            ("rate(0 minutes)", "at least 1"),
            ("rate(5 weeks)", "minute(s), hour(s) or day(s)"),
            ("at(2026-02-29T00:00:00)", "day 29"),
            ("at(2026-1-1T00:00:00)", "yyyy-mm-dd"),
            ("every day", "is not cron"),
        ] {
            let err = check(e).unwrap_err();
            assert!(err.contains(why), "{e}: {err}");
        }
    }
}
