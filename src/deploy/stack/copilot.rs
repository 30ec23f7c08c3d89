//! AWS Copilot's ways of writing what a stack file writes otherwise: its job schedules
//! (`@daily`, `@every 1h`, a five-field Unix cron) and its CPU units (1024 = 1 vCPU).
//! Validation names the equivalent when a file holds Copilot's form.
//!
//! Copilot's forms: <https://aws.github.io/copilot-cli/docs/manifest/scheduled-job/>
//! (`on.schedule`). EventBridge Scheduler's:
//! <https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html>
//! (cron has six fields, one of day-of-month and day-of-week is `?`, and day-of-week
//! counts 1-7 from Sunday where Unix cron counts 0-6 from Sunday, 7 also Sunday).

use super::limits::FARGATE_CPUS;

/// The Scheduler expression for one of Copilot's schedules, or why there is none.
/// `None` when `expr` is not in one of Copilot's forms at all.
pub fn schedule(expr: &str) -> Option<Result<String, String>> {
    let e = expr.trim();
    let fixed = match e {
        "@hourly" => Some("cron(0 * * * ? *)"),
        "@daily" | "@midnight" => Some("cron(0 0 * * ? *)"),
        "@weekly" => Some("cron(0 0 ? * SUN *)"),
        "@monthly" => Some("cron(0 0 1 * ? *)"),
        "@yearly" | "@annually" => Some("cron(0 0 1 1 ? *)"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(Ok(f.to_owned()));
    }
    if let Some(d) = e.strip_prefix("@every ") {
        return Some(every(d.trim()));
    }
    let bare = e
        .strip_prefix("cron(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(e);
    let fields: Vec<&str> = bare.split_whitespace().collect();
    (fields.len() == 5).then(|| unix_cron(&fields))
}

/// A Go duration (`1h30m`, `250ms`, `96h`), as Copilot writes them, in milliseconds.
pub fn duration_ms(d: &str) -> Option<u64> {
    let d = d.trim();
    let mut ms: u64 = 0;
    let mut rest = d;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (n, tail) = rest.split_at(digits);
        let n: f64 = n.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let mult = match unit {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1000.0,
            "ms" => 1.0,
            _ => return None,
        };
        ms += (n * mult).round() as u64;
        rest = tail;
    }
    Some(ms)
}

/// `@every DURATION` (a Go duration: `1h30m`, `90m`, `2h`) as `rate(...)`.
fn every(d: &str) -> Result<String, String> {
    let bad = || format!("'@every {d}': not a duration such as 30m, 1h or 1h30m");
    let ms = duration_ms(d).filter(|ms| *ms > 0).ok_or_else(bad)?;
    if !ms.is_multiple_of(60_000) {
        return Err(format!(
            "'@every {d}': the Scheduler's shortest unit is a minute"
        ));
    }
    let secs = ms / 1000;
    let (n, unit) = if secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else {
        (secs / 60, "minute")
    };
    Ok(format!("rate({n} {unit}{})", if n == 1 { "" } else { "s" }))
}

/// A five-field Unix cron (minute hour day-of-month month day-of-week) as the
/// Scheduler's six fields: a year of `*`, `?` in whichever day field is `*`, and
/// day-of-week numbers counted from 1.
fn unix_cron(f: &[&str]) -> Result<String, String> {
    let (mut dom, mut dow) = (f[2].to_owned(), f[4].to_owned());
    if dow != "*" {
        dow = shift_days(&dow).ok_or_else(|| {
            format!(
                "day-of-week '{dow}' of '{}': write it with names (MON-FRI)",
                f.join(" ")
            )
        })?;
    }
    match (dom == "*", dow == "*") {
        (_, true) => dow = "?".into(),
        (true, false) => dom = "?".into(),
        (false, false) => {
            return Err(format!(
                "'{}' gives both a day of the month and a day of the week, which the Scheduler cannot: keep one",
                f.join(" ")
            ))
        }
    }
    Ok(format!("cron({} {} {dom} {} {dow} *)", f[0], f[1], f[3]))
}

/// Unix day-of-week numbers (0-7, Sunday 0 and 7) as the Scheduler's (1-7, Sunday 1);
/// a step after `/` stays as it is. Names pass through.
fn shift_days(dow: &str) -> Option<String> {
    let mut out = String::new();
    let mut num = String::new();
    let mut after_slash = false;
    let flush = |num: &mut String, out: &mut String, after_slash: bool| -> Option<()> {
        if num.is_empty() {
            return Some(());
        }
        let n: u32 = num.parse().ok()?;
        if after_slash {
            out.push_str(num);
        } else {
            if n > 7 {
                return None;
            }
            out.push_str(&(n % 7 + 1).to_string());
        }
        num.clear();
        Some(())
    };
    for ch in dow.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        flush(&mut num, &mut out, after_slash)?;
        after_slash = ch == '/';
        out.push(ch);
    }
    flush(&mut num, &mut out, after_slash)?;
    Some(out)
}

/// Copilot's CPU units (`cpu: 512`) as vCPU, when `cpu` reads as units: a Fargate size
/// once divided by 1024.
pub fn cpu_units(cpu: f64) -> Option<f64> {
    let v = cpu / 1024.0;
    (cpu >= 256.0 && FARGATE_CPUS.contains(&v)).then_some(v)
}

/// The hint a message about `cpu` ends with when it reads as Copilot's units.
pub fn cpu_hint(cpu: f64) -> String {
    cpu_units(cpu)
        .map(|v| format!(" ({cpu} is Copilot's CPU units: write cpu: {v})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copilots_schedules_in_the_schedulers_words() {
        let ok = |e: &str| schedule(e).unwrap().unwrap();
        assert_eq!(ok("@daily"), "cron(0 0 * * ? *)");
        assert_eq!(ok("@weekly"), "cron(0 0 ? * SUN *)");
        assert_eq!(ok("@every 1h"), "rate(1 hour)");
        assert_eq!(ok("@every 90m"), "rate(90 minutes)");
        assert_eq!(ok("@every 1h30m"), "rate(90 minutes)");
        assert_eq!(ok("@every 48h"), "rate(2 days)");
        assert_eq!(ok("0 3 * * *"), "cron(0 3 * * ? *)");
        assert_eq!(ok("cron(15 4 1 * *)"), "cron(15 4 1 * ? *)");
        // Unix counts Sunday 0 (and 7), the Scheduler 1; a step is not a day.
        assert_eq!(ok("0 9 * * 1-5"), "cron(0 9 ? * 2-6 *)");
        assert_eq!(ok("0 9 * * 0,7"), "cron(0 9 ? * 1,1 *)");
        assert_eq!(ok("0 9 * * MON"), "cron(0 9 ? * MON *)");
        assert_eq!(ok("0 9 * * */2"), "cron(0 9 ? * */2 *)");
        assert!(schedule("@every 30s").unwrap().is_err());
        assert!(schedule("@every soon").unwrap().is_err());
        assert!(schedule("@every 90").unwrap().is_err());
        assert_eq!(duration_ms("250ms"), Some(250));
        assert_eq!(duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(duration_ms("1.5s"), Some(1500));
        assert_eq!(duration_ms("4d"), None);
        assert!(schedule("0 9 1 * 1").unwrap().is_err());
        assert!(schedule("rate(1 hour)").is_none());
        assert!(schedule("cron(0 3 * * ? *)").is_none());
        for e in ["@daily", "@every 2h", "0 3 * * *", "0 9 * * 1-5"] {
            super::super::schedule::check(&ok(e)).unwrap();
        }
    }

    #[test]
    fn copilots_cpu_units() {
        assert_eq!(cpu_units(512.0), Some(0.5));
        assert_eq!(cpu_units(1024.0), Some(1.0));
        assert_eq!(cpu_units(3.0), None);
        assert_eq!(cpu_units(300.0), None);
    }
}
