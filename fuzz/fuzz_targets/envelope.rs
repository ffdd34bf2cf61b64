//! Fuzz target `envelope`: arbitrary bytes into `keepa::fuzz::answer` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keepa::fuzz::answer(data));
