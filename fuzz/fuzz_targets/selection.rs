//! Fuzz target `selection`: arbitrary bytes into `keepa::fuzz::selection` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keepa::fuzz::selection(data));
