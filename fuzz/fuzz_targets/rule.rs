//! Fuzz target `rule`: arbitrary bytes into `harvest::fuzz::rule` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| harvest::fuzz::rule(data));
