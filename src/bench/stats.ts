// The arithmetic of the benchmark figures: percentiles of a latency sample and the
// "median (min-max)" of repeated runs. Pure, so the numbers printed can be unit-tested.

/** Nearest-rank percentile (p in 0..100) of an ascending array; NaN for an empty one. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  if (p <= 0) return sorted[0];
  if (p >= 100) return sorted[sorted.length - 1];
  // Nearest rank, not interpolation: a p99 of 100 samples is a latency that really happened.
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Median of repeated runs; the mean of the two middle values for an even count. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** What a repeated figure is reported as: median with min-max over the runs. */
export function spread(values: readonly number[]): Spread {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), n: finite.length };
}

export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

export function latencySummary(samplesMs: readonly number[]): LatencySummary {
  const s = [...samplesMs].sort((a, b) => a - b);
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN;
  return {
    n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99),
    min: s.length ? s[0] : NaN, max: s.length ? s[s.length - 1] : NaN, mean,
  };
}

/**
 * Least squares for y = base + perNode * nodes + perPod * pods, so `lab up` growth can be
 * split between what a node costs (its netns, rules, ztunnel) and what a pod costs.
 * Undefined when the points cannot separate the two (fewer than 3, or nodes and pods in
 * a fixed proportion).
 */
export function fitNodesPods(points: ReadonlyArray<{ nodes: number; pods: number; y: number }>): { base: number; perNode: number; perPod: number } | undefined {
  if (points.length < 3) return undefined;
  // Centred normal equations: a 2x2 system for the two slopes, then the intercept.
  const n = points.length;
  const mn = points.reduce((a, p) => a + p.nodes, 0) / n;
  const mp = points.reduce((a, p) => a + p.pods, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let snn = 0, spp = 0, snp = 0, sny = 0, spy = 0;
  for (const p of points) {
    const dn = p.nodes - mn, dp = p.pods - mp, dy = p.y - my;
    snn += dn * dn; spp += dp * dp; snp += dn * dp; sny += dn * dy; spy += dp * dy;
  }
  const det = snn * spp - snp * snp;
  // Relative test: nodes and pods perfectly correlated leave the split undetermined.
  if (!(snn > 0 && spp > 0) || det <= 1e-9 * snn * spp) return undefined;
  const perNode = (sny * spp - spy * snp) / det;
  const perPod = (spy * snn - sny * snp) / det;
  return { base: my - perNode * mn - perPod * mp, perNode, perPod };
}

/** One run of the latency load client: its own p50/p99 and how many requests failed. */
export interface LatencyRun {
  p50: number;
  p99: number;
  errors: number;
  firstError?: string;
}

/** Repeated latency runs as reported: median (min-max) of each run's p50 and p99, errors summed. */
export function combineLatencyRuns(runs: readonly LatencyRun[]): { p50: Spread; p99: Spread; errors: number; firstError?: string } {
  const firstError = runs.find((r) => r.firstError !== undefined)?.firstError;
  return {
    p50: spread(runs.map((r) => r.p50)),
    p99: spread(runs.map((r) => r.p99)),
    errors: runs.reduce((a, r) => a + r.errors, 0),
    ...(firstError !== undefined ? { firstError } : {}),
  };
}
