// Seeded randomness for the fuzz tests: FUZZ_SEED=<n> replays a failing run, and every test
// that draws from it names the seed in its failure messages.
export interface Rng {
  seed: number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  bytes(n: number): Buffer;
  pick<T>(xs: readonly T[]): T;
}

export function seededRng(seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)): Rng {
  // mulberry32: tiny, fast, good enough to spread inputs; not for anything secret.
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    seed,
    int,
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => int(256))),
    pick: (xs) => xs[int(xs.length)],
  };
}
