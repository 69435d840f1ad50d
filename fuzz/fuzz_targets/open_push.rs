#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wxbridge_testkit::fuzz::open_push(data));
