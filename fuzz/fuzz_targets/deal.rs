//! Fuzz target `deal`: arbitrary bytes into `harvest::fuzz::deal_feed` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| harvest::fuzz::deal_feed(data));
