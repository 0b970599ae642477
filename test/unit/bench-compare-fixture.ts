// A comparison section's figures as a run would produce them, for the table and chart tests.
import { modeSpec } from '../../src/bench/compare-topology.js';
import type { CompareFigures, CompareRow } from '../../src/bench/compare.js';
import type { Spread } from '../../src/bench/stats.js';

const one = (v: number): Spread => ({ median: v, min: v, max: v, n: 1 });

export function row(mode: CompareRow['mode'], p50: number, mbit: number, cpu: number, kb: number, errors = 0): CompareRow {
  const spec = modeSpec(mode);
  const lat = { p50: one(p50), p99: one(p50 * 3), errors };
  const mem = { perPodKb: kb, pathKb: kb * 2, parts: [] };
  return {
    mode, label: spec.label, placement: 'cross-node', client: `default/${spec.client['cross-node']}`, server: `default/${spec.server}`, target: '10.96.0.11:8000',
    origin: '10.244.0.4', newConnection: lat, keepAlive: { ...lat, p50: one(p50 / 2), errors: 0 },
    bulk: { mbitPerS: one(mbit), complete: true },
    concurrent: { connections: 50, maxOpen: 50, errors: 0, droppedEarly: 0, requests: 10_000, rps: 3000, p50: 10, p99: 30 },
    cpu: { per1kRequests: cpu, byRole: { app: cpu / 2, ztunnel: cpu / 2 } }, memory: { idle: mem, peak: mem },
  };
}

export const figures: CompareFigures = {
  lab: 'bench-cmp-lab', tunnel: 'userspace',
  options: { latencyRequests: 200, latencyRuns: 3, connections: 50, concurrentSeconds: 3, bulkBytes: 2 ** 30, bulkRuns: 2, bulkMaxSeconds: 4, sameNode: false },
  rows: [row('none', 0.6, 9000, 0.2, 0), row('ambient', 2.2, 2000, 0.9, 70_000), row('waypoint', 2.9, 1500, 1.4, 105_000, 2),
    row('sidecar', 3.1, 1200, 1.6, 52_000), row('sidecar-mtls', 2.8, 1300, 1.5, 52_000)],
  proxies: [{ id: 'ztunnel/node-a', role: 'ztunnel', idleKb: 60_000, peakKb: 90_000 }],
  ambientPodsPerNode: { 'node-a': 1, 'node-b': 2 },
};
