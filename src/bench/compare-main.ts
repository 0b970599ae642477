// The bench's comparison and load sections, registered in main.ts: each brings up its own
// generated lab (named bench-cmp-*), measures, and brings it down; an error becomes the
// section's `...Error` field, so the rest of the run still reports.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DatapathOptions } from './datapath.js';
import type { BenchReport } from './report.js';
import { compareTopologyYaml } from './compare-topology.js';
import { measureCompare, type CompareOptions } from './compare.js';
import { COMPARE_HEADERS, compareTableRows } from './compare-format.js';
import { measureLoad, type LoadOptions } from './load-1k.js';
import { waypointTopologyYaml } from './waypoint-topology.js';
import { measureHops } from './compare-hops.js';
import { benchLabName } from './lab-cli.js';

export const COMPARE_PARTS = ['compare', 'load', 'hops'];

export const compareOptions = (quick: boolean, d: DatapathOptions): CompareOptions => ({
  latencyRequests: d.latencyRequests, latencyRuns: d.latencyRuns, connections: d.connections, concurrentSeconds: d.concurrentSeconds,
  bulkBytes: d.bulkBytes, bulkRuns: quick ? 1 : 2, bulkMaxSeconds: quick ? 2 : 4, sameNode: !quick,
});

export const loadOptions = (quick: boolean): LoadOptions => (quick
  ? { connections: 1000, seconds: 3, shortRequests: 3000, shortConcurrency: 50, settleMs: 20_000 }
  : { connections: 1000, seconds: 5, shortRequests: 10_000, shortConcurrency: 50, settleMs: 20_000 });

type Sections = Pick<BenchReport, 'compare' | 'compareError' | 'load' | 'loadError' | 'hops' | 'hopsError'>;

const firstLines = (e: unknown): string => (e as Error).message.split('\n').slice(0, 3).join(' ');

/** One section: its generated lab file, then its figures or, on an error, the error's first lines. */
async function section<T>(name: string, yaml: string, tmp: string, log: (m: string) => void, run: (file: string) => Promise<T>): Promise<{ value?: T; error?: string }> {
  const file = join(tmp, `bench-cmp-${name}.yaml`);
  writeFileSync(file, yaml);
  try {
    return { value: await run(file) };
  } catch (e) {
    log(`${name}: ${firstLines(e)}`);
    return { error: firstLines(e) };
  }
}

export async function runCompareSections(skip: Set<string>, quick: boolean, d: DatapathOptions, tmp: string, log: (m: string) => void):
  Promise<Sections> {
  const out: Sections = {};
  if (skip.has('mesh')) return out;
  if (!skip.has('compare')) {
    const o = compareOptions(quick, d);
    const r = await section('compare', compareTopologyYaml('bench-cmp', o.sameNode), tmp, log, (f) => measureCompare(f, benchLabName('bench-cmp-lab'), o, log));
    if (r.value) out.compare = { ...r.value, table: { headers: COMPARE_HEADERS, rows: compareTableRows(r.value.rows) } };
    if (r.error) out.compareError = r.error;
  }
  if (!skip.has('load')) {
    const r = await section('load', waypointTopologyYaml('bench-cmp-load'), tmp, log, (f) => measureLoad(f, benchLabName('bench-cmp-load'), loadOptions(quick), log));
    if (r.value) out.load = r.value;
    if (r.error) out.loadError = r.error;
  }
  if (!skip.has('hops')) {
    const r = await section('hops', waypointTopologyYaml('bench-cmp-hops'), tmp, log, (f) => measureHops(f, benchLabName('bench-cmp-hops'), quick ? 2 : 5, log));
    if (r.value) out.hops = r.value;
    if (r.error) out.hopsError = r.error;
  }
  return out;
}
