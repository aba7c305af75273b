//! A tiny reproducible random source for the Rust tests (xorshift64*), so random cases need no dependency.

/// xorshift64*: the same sequence for the same seed, on every platform.
pub struct Rng(pub u64);

impl Rng {
    /// Uniform in `[0, n)` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    /// `n` values from `pool`, in runs of 1 to `run + 1` equal values.
    pub fn pick<T: Copy>(&mut self, n: usize, pool: &[T], run: u64) -> Vec<T> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let v = pool[self.below(pool.len() as u64) as usize];
            for _ in 0..=self.below(run) {
                out.push(v);
            }
        }
        out.truncate(n);
        out
    }
}
