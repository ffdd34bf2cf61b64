//! Deterministic hashing and generators: everything random in the server
//! is derived from the seed and an index, never from a shared stream, so a
//! product, a deal or a seller costs nothing until asked for.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser: a good 64-bit mix.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of (seed, tag, index).
pub(crate) fn hash(seed: u64, tag: u64, index: u64) -> u64 {
    mix(seed ^ mix(tag.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ mix(index)))
}

/// A uniform float in `[0, 1)` from a hash.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1_u64 << 53) as f64
}

/// A generator for one (seed, tag, index).
pub(crate) fn rng(seed: u64, tag: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(hash(seed, tag, index))
}

/// `a⁻¹ mod m` for `a` coprime to `m`.
pub(crate) fn mod_inverse(a: u128, m: u128) -> u128 {
    let (mut old_r, mut r) = (a as i128, m as i128);
    let (mut old_s, mut s) = (1_i128, 0_i128);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    old_s.rem_euclid(m as i128) as u128
}

/// The first odd multiplier at or after `start` that is coprime to `m`.
pub(crate) fn coprime_multiplier(start: u64, m: u64) -> u64 {
    let mut a = (start % m.max(2)) | 1;
    while gcd(a, m) != 1 {
        a += 2;
    }
    a
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_inverts() {
        for m in [10_u128.pow(9), 36_u128.pow(8), 100_000, 7] {
            let a = coprime_multiplier(387_420_489, m as u64) as u128;
            assert_eq!(a * mod_inverse(a, m) % m, 1 % m, "m = {m}");
        }
    }
}
