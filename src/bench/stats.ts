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
 * Least-squares slope and intercept of y over x: how `lab up` grows per pod or per node.
 * With two points this is the line through them; undefined when x does not vary.
 */
export function linearFit(points: ReadonlyArray<{ x: number; y: number }>): { slope: number; intercept: number; r2: number } | undefined {
  const n = points.length;
  if (n < 2) return undefined;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  if (sxx === 0) return undefined;
  const sxy = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const syy = points.reduce((a, p) => a + (p.y - my) ** 2, 0);
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { slope, intercept, r2 };
}

/**
 * Least squares for y = base + perNode * nodes + perPod * pods, so `lab up` growth can be
 * split between what a node costs (its netns, rules, ztunnel) and what a pod costs.
 * Undefined when the points cannot separate the two (fewer than 3, or nodes and pods in
 * a fixed proportion).
 */
export function fitNodesPods(points: ReadonlyArray<{ nodes: number; pods: number; y: number }>): { base: number; perNode: number; perPod: number } | undefined {
  if (points.length < 3) return undefined;
  // Normal equations A^T A beta = A^T y with A = [1, nodes, pods], solved by Cramer's rule.
  const rows = points.map((p) => [1, p.nodes, p.pods]);
  const ata = [0, 1, 2].map((i) => [0, 1, 2].map((j) => rows.reduce((a, r) => a + r[i] * r[j], 0)));
  const aty = [0, 1, 2].map((i) => rows.reduce((a, r, k) => a + r[i] * points[k].y, 0));
  const det = (m: number[][]) =>
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  const d = det(ata);
  const scale = Math.max(...ata.flat().map(Math.abs));
  if (Math.abs(d) < 1e-9 * scale ** 3) return undefined;
  const solve = (col: number) => det(ata.map((r, i) => r.map((v, j) => (j === col ? aty[i] : v)))) / d;
  return { base: solve(0), perNode: solve(1), perPod: solve(2) };
}
