//! 64-byte bitmasks of the bytes the event scanner looks for: quotes and backslashes (to find the
//! end of a string), and with them the brackets (to skip a whole object or array). A `Cursor` keeps
//! the mask of the 64 bytes at its last refill, so the next interesting byte after a position is a
//! shift and a trailing-zero count as long as it lies in the same block; the bytes of an event are
//! classified 64 at a time (SSE2 compares on x86_64, word-at-a-time arithmetic elsewhere) instead
//! of once per string searched.

/// Quotes and backslashes.
pub(crate) const QUOTES: bool = false;
/// Quotes, backslashes and `[`, `]`, `{`, `}`.
pub(crate) const STRUCTURE: bool = true;

/// The mask of one 64-byte block (bit i: byte `base + i` is in the class) and its start.
/// `S`: the class (`QUOTES` or `STRUCTURE`).
#[derive(Clone, Copy, Default)]
pub(crate) struct Cursor<const S: bool> {
    base: usize,
    bits: u64,
}

impl<const S: bool> Cursor<S> {
    pub const fn new() -> Self {
        Cursor { base: 0, bits: 0 }
    }

    /// The index of the first byte of the class at or after `j` in `b`, if any. `b` must be the
    /// same slice at every call (the cursor remembers its bytes' classes).
    #[inline(always)]
    pub fn next(&mut self, b: &[u8], j: usize) -> Option<usize> {
        let off = j.wrapping_sub(self.base);
        if off < 64 {
            let m = self.bits >> off;
            if m != 0 {
                return Some(j + m.trailing_zeros() as usize);
            }
        }
        self.refill(b, j)
    }

    /// Classify blocks from `j` on until one holds a byte of the class.
    #[inline]
    fn refill(&mut self, b: &[u8], mut j: usize) -> Option<usize> {
        loop {
            if j >= b.len() {
                return None;
            }
            let bits = match b.get(j..j + 64) {
                Some(block) => mask64::<S>(block.try_into().unwrap_or(&[0; 64])),
                None => {
                    // The tail, padded with zero bytes (in no class).
                    let mut pad = [0u8; 64];
                    pad[..b.len() - j].copy_from_slice(&b[j..]);
                    mask64::<S>(&pad)
                }
            };
            self.base = j;
            self.bits = bits;
            if bits != 0 {
                return Some(j + bits.trailing_zeros() as usize);
            }
            j += 64;
        }
    }
}

/// Bit i set when byte i of `c` is in the class.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn mask64<const S: bool>(c: &[u8; 64]) -> u64 {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let mut out = 0u64;
    for k in 0..4 {
        let mut lanes = [0u8; 16];
        lanes.copy_from_slice(&c[16 * k..16 * k + 16]);
        let v = m128i::from(lanes);
        let eq = |x: m128i, y: u8| cmp_eq_mask_i8_m128i(x, set_splat_i8_m128i(y as i8));
        let mut m = bitor_m128i(eq(v, b'"'), eq(v, b'\\'));
        if S {
            // With bit 5 set, `[` and `{` are both 0x7b, `]` and `}` both 0x7d (and no other byte
            // becomes either).
            let w = bitor_m128i(v, set_splat_i8_m128i(0x20));
            m = bitor_m128i(m, bitor_m128i(eq(w, 0x7b), eq(w, 0x7d)));
        }
        out |= ((move_mask_i8_m128i(m) as u32) as u64 & 0xffff) << (16 * k);
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn mask64<const S: bool>(c: &[u8; 64]) -> u64 {
    mask64_swar::<S>(c)
}

/// The portable `mask64`: eight bytes at a time.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn mask64_swar<const S: bool>(c: &[u8; 64]) -> u64 {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // High bit of each byte set exactly where the byte of x is zero.
    let zero = |x: u64| !(((x & LO7).wrapping_add(LO7)) | x) & !LO7;
    let mut out = 0u64;
    for k in 0..8 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&c[8 * k..8 * k + 8]);
        let w = u64::from_le_bytes(w);
        let mut m = zero(w ^ (ONES * b'"' as u64)) | zero(w ^ (ONES * b'\\' as u64));
        if S {
            let f = w | (ONES * 0x20);
            m |= zero(f ^ (ONES * 0x7b)) | zero(f ^ (ONES * 0x7d));
        }
        // Gather the eight high bits into one byte (byte i's bit to bit i).
        let byte = ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
        out |= byte << (8 * k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(c: &[u8], s: bool) -> u64 {
        c.iter().enumerate().fold(0, |m, (i, &x)| {
            let hit = x == b'"' || x == b'\\' || (s && matches!(x, b'[' | b']' | b'{' | b'}'));
            m | ((hit as u64) << i)
        })
    }

    #[test]
    fn masks_agree_with_a_byte_loop() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"\"\\[]{}{;;:,a0 \x00\xff\x7b\x5b\x5d\x7d\x22\x5c\x02\x3b\x3d\x80";
        for _ in 0..2000 {
            let mut c = [0u8; 64];
            for x in c.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *x = if seed & 1 == 0 {
                    alphabet[(seed >> 8) as usize % alphabet.len()]
                } else {
                    (seed >> 16) as u8
                };
            }
            assert_eq!(mask64::<QUOTES>(&c), naive(&c, false));
            assert_eq!(mask64::<STRUCTURE>(&c), naive(&c, true));
            assert_eq!(mask64_swar::<QUOTES>(&c), naive(&c, false));
            assert_eq!(mask64_swar::<STRUCTURE>(&c), naive(&c, true));
        }
    }

    #[test]
    fn cursor_finds_every_byte_in_order() {
        for len in [0usize, 1, 5, 63, 64, 65, 127, 128, 129, 300] {
            let b: Vec<u8> = (0..len)
                .map(|i| if i % 7 == 3 || i == 64 { b'"' } else { b'x' })
                .collect();
            let mut c = Cursor::<QUOTES>::new();
            for j in 0..=len + 2 {
                let want = (j..len).find(|&k| b[k] == b'"');
                assert_eq!(c.next(&b, j), want, "len {len} j {j}");
            }
            // Backwards too (a refill may land anywhere).
            let mut c = Cursor::<QUOTES>::new();
            for j in (0..len).rev() {
                let want = (j..len).find(|&k| b[k] == b'"');
                assert_eq!(c.next(&b, j), want, "len {len} j {j}");
            }
        }
    }
}
