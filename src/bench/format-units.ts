// How the bench prints numbers: one place, so the table and the target rows agree.
import type { Spread } from './stats.js';

export const fmtMs = (n: number): string =>
  !Number.isFinite(n) ? 'n/a' : n >= 1000 ? `${(n / 1000).toFixed(2)} s` : n >= 10 ? `${Math.round(n)} ms` : `${n.toFixed(2)} ms`;

export const fmtMiB = (kb: number): string => (!Number.isFinite(kb) ? 'n/a' : `${(kb / 1024).toFixed(1)} MB`);

export const fmtMbit = (n: number): string => (!Number.isFinite(n) ? 'n/a' : n >= 1000 ? `${(n / 1000).toFixed(2)} Gbit/s` : `${n.toFixed(0)} Mbit/s`);

/** "median (min-max)", or just the value for a single run. */
export function fmtSpread(s: Spread | undefined, fmt: (n: number) => string): string {
  if (!s || s.n === 0) return 'n/a';
  if (s.n === 1 || s.min === s.max) return fmt(s.median);
  const parts = [s.median, s.min, s.max].map((v) => /^(.*) (\S+)$/.exec(fmt(v)) ?? [fmt(v), fmt(v), '']);
  // One unit for the three numbers when they share it: "0.61 (0.55-0.66) ms".
  if (parts.every((p) => p[2] && p[2] === parts[0][2])) return `${parts[0][1]} (${parts[1][1]}-${parts[2][1]}) ${parts[0][2]}`;
  return `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`;
}

/** The figure against its baseline: a ratio for throughput-like values, a difference for latencies. */
export function fmtRatio(value: number, baseline: number): string {
  if (!Number.isFinite(value) || !Number.isFinite(baseline) || baseline === 0) return 'n/a';
  return `${(value / baseline).toFixed(2)}x`;
}

export function fmtDeltaMs(value: number, baseline: number): string {
  if (!Number.isFinite(value) || !Number.isFinite(baseline)) return 'n/a';
  const d = value - baseline;
  return `${d >= 0 ? '+' : '-'}${fmtMs(Math.abs(d))}`;
}

/** An informational row (no target set yet) reads "yes/no (informational)", never a shouted NO. */
export const fmtMet = (met: boolean | undefined, informational = false): string =>
  informational ? (met === undefined ? 'n/a (informational)' : `${met ? 'yes' : 'no'} (informational)`) : met === undefined ? 'n/a' : met ? 'yes' : 'NO';
