//! EventBridge Scheduler expressions: `cron(min hour day-of-month month day-of-week
//! year)`, `rate(N unit)` and `at(yyyy-mm-ddThh:mm:ss)`, checked as AWS documents them
//! (moto does not check them at all).

pub use super::when::{
    civil, days_from_civil, duration_secs, iso_secs, longest_gap, next_after, rate_secs,
};

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

pub(super) const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
pub(super) const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) min: u32,
    pub(super) max: u32,
    pub(super) names: &'static [&'static str],
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

pub(super) fn number(s: &str, f: &Field) -> Result<u32, String> {
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

#[cfg(test)]
mod tests {
    use super::check;

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
