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

export async function runCompareSections(skip: Set<string>, quick: boolean, d: DatapathOptions, tmp: string, log: (m: string) => void):
  Promise<Sections> {
  const out: Sections = {};
  if (skip.has('mesh')) return out;
  if (!skip.has('compare')) {
    const file = join(tmp, 'bench-cmp.yaml');
    const o = compareOptions(quick, d);
    writeFileSync(file, compareTopologyYaml('bench-cmp', o.sameNode));
    try {
      out.compare = await measureCompare(file, 'bench-cmp-lab', o, log);
      out.compare.table = { headers: COMPARE_HEADERS, rows: compareTableRows(out.compare.rows) };
    } catch (e) {
      out.compareError = firstLines(e);
      log(`compare: ${out.compareError}`);
    }
  }
  if (!skip.has('load')) {
    const file = join(tmp, 'bench-cmp-load.yaml');
    writeFileSync(file, waypointTopologyYaml('bench-cmp-load'));
    try {
      out.load = await measureLoad(file, 'bench-cmp-load', loadOptions(quick), log);
    } catch (e) {
      out.loadError = firstLines(e);
      log(`load: ${out.loadError}`);
    }
  }
  if (!skip.has('hops')) {
    const file = join(tmp, 'bench-cmp-hops.yaml');
    writeFileSync(file, waypointTopologyYaml('bench-cmp-hops'));
    try {
      out.hops = await measureHops(file, 'bench-cmp-hops', quick ? 2 : 5, log);
    } catch (e) {
      out.hopsError = firstLines(e);
      log(`hops: ${out.hopsError}`);
    }
  }
  return out;
}
