//! Fuzz target `product`: arbitrary bytes into `harvest::fuzz::product` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| harvest::fuzz::product(data));
