//! DNS replies as bosun's resolver reads them: any bytes, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bosun::resolve::fuzz_reply(data);
});
