//! A stack file through YAML parsing, the schema, the model and every rule: any text
//! gives the stack or a report, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = bosun::deploy::stack::validate::check("fuzz.yaml", text);
    }
});
