//! Fuzz target `config`: arbitrary bytes into `harvest::fuzz::config` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| harvest::fuzz::config(data));
