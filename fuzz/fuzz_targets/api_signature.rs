#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wxbridge_testkit::fuzz::api_signature(data));
