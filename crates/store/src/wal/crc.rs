//! The crc32c of two byte strings put together, from the crc32c of each and
//! the second one's length, without reading either again.
//!
//! The writer thread seals each record with the crc32c of salt, LSN and
//! payload, and the payload's crc32c was computed earlier, in the task that
//! encoded it (`Frame::encode`). The `crc32c` crate's `crc32c_combine` is
//! zlib's first algorithm: it squares a 32x32 bit matrix for every bit of the
//! length, about 20,000 steps for a 50 KB payload, and was a third of the WAL
//! thread's CPU time at full speed. This is zlib's later one (`crc32_combine`
//! since zlib 1.2.12): appending `len` zero bytes multiplies the first crc by
//! x^(8 len) modulo the polynomial, and x^(8 len) is a product of the
//! precomputed powers x^(2^k), one per set bit of the length: about 500
//! steps for the same payload.

/// The crc32c (Castagnoli) polynomial, bit-reflected.
const POLY: u32 = 0x82F6_3B78;

/// `x^(2^k)` modulo [`POLY`] for k in 0..32, bit-reflected.
const X2N: [u32; 32] = {
    let mut table = [0u32; 32];
    // x^1: bit 30 in the reflected order, where x^0 is bit 31.
    let mut power = 1u32 << 30;
    table[0] = power;
    let mut k = 1;
    while k < 32 {
        power = multiply(power, power);
        table[k] = power;
        k += 1;
    }
    table
};

/// `a * b` modulo [`POLY`], both bit-reflected.
const fn multiply(a: u32, mut b: u32) -> u32 {
    if a == 0 {
        return 0;
    }
    let mut bit = 1u32 << 31;
    let mut product = 0;
    loop {
        if a & bit != 0 {
            product ^= b;
            if a & (bit - 1) == 0 {
                return product;
            }
        }
        bit >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
}

/// `x^(n * 2^k)` modulo [`POLY`], bit-reflected.
fn x_to_the(mut n: u64, mut k: usize) -> u32 {
    let mut power = 1u32 << 31;
    while n != 0 {
        if n & 1 != 0 {
            power = multiply(X2N[k % 32], power);
        }
        n >>= 1;
        k += 1;
    }
    power
}

/// The crc32c of `a` followed by `b`, given `crc32c(a)`, `crc32c(b)` and the
/// length of `b`: what `crc32c::crc32c_combine` returns.
pub fn combine(crc_a: u32, crc_b: u32, len_b: usize) -> u32 {
    // Shifting by 8 * len_b bits: x^(len_b * 2^3).
    multiply(x_to_the(len_b as u64, 3), crc_a) ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn combining_equals_the_crc_of_the_concatenation() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut lengths: Vec<usize> = (0..300).collect();
        lengths.extend([1023, 1024, 1025, 4096, 65_535, 65_536, 100_003, 1 << 20]);
        lengths.extend((0..50).map(|_| rng.random_range(0..200_000)));
        for len_b in lengths {
            let len_a = rng.random_range(0..40);
            let bytes: Vec<u8> = (0..len_a + len_b).map(|_| rng.random()).collect();
            let (a, b) = bytes.split_at(len_a);
            let whole = crc32c::crc32c(&bytes);
            let combined = combine(crc32c::crc32c(a), crc32c::crc32c(b), b.len());
            assert_eq!(combined, whole, "len_a {len_a} len_b {len_b}");
            assert_eq!(
                combined,
                crc32c::crc32c_combine(crc32c::crc32c(a), crc32c::crc32c(b), b.len())
            );
        }
    }

    #[test]
    fn the_powers_are_those_of_x() {
        // x^(2^k) for k < 5 has degree < 32: no reduction, a single bit.
        for (k, power) in X2N.iter().take(5).enumerate() {
            assert_eq!(*power, 1u32 << (31 - (1 << k)), "k {k}");
        }
        assert_eq!(x_to_the(0, 3), 1 << 31, "x^0 is 1");
        assert_eq!(multiply(0, 12345), 0);
    }
}
