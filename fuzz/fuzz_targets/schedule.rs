//! cron(...), rate(...) and at(...) expressions: checked, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = bosun::deploy::stack::schedule::check(text);
        let _ = bosun::deploy::stack::schedule::check(&format!("cron({text})"));
        let _ = bosun::deploy::stack::schedule::check(&format!("rate({text})"));
    }
});
