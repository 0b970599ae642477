// What `npm run bench` prints: unit formatting, figures next to their baselines, and the
// target / measured / met? table, including the rows for a mesh that did not come up.
import t from 'tap';
import { fmtMs, fmtMiB, fmtMbit, fmtSpread, fmtRatio, fmtDeltaMs, fmtMet } from '../../src/bench/format-units.js';
import { renderDatapath, renderTargets, renderLifecycle } from '../../src/bench/format.js';
import { evaluateTargets } from '../../src/bench/targets.js';
import type { LabFigures, PathFigures } from '../../src/bench/datapath.js';
import type { LifecycleFigures, LifecycleVariant } from '../../src/bench/lifecycle.js';
import type { Spread } from '../../src/bench/stats.js';

const one = (v: number): Spread => ({ median: v, min: v, max: v, n: 1 });

t.test('units', (t) => {
  t.equal(fmtMs(0.6123), '0.61 ms');
  t.equal(fmtMs(37.4), '37 ms');
  t.equal(fmtMs(1450), '1.45 s');
  t.equal(fmtMs(NaN), 'n/a');
  t.equal(fmtMiB(74512), '72.8 MB');
  t.equal(fmtMbit(862.4), '862 Mbit/s');
  t.equal(fmtMbit(7640), '7.64 Gbit/s');
  t.equal(fmtMet(true), 'yes');
  t.equal(fmtMet(false), 'NO');
  t.equal(fmtMet(undefined), 'n/a');
  t.end();
});

t.test('median (min-max) shares the unit when it can', (t) => {
  t.equal(fmtSpread({ median: 0.61, min: 0.55, max: 0.66, n: 3 }, fmtMs), '0.61 (0.55-0.66) ms');
  t.equal(fmtSpread({ median: 980, min: 950, max: 1200, n: 3 }, fmtMs), '980 ms (950 ms-1.20 s)');
  t.equal(fmtSpread(one(1450), fmtMs), '1.45 s');
  t.equal(fmtSpread({ median: NaN, min: NaN, max: NaN, n: 0 }, fmtMs), 'n/a');
  t.end();
});

t.test('ratios and differences against the baseline', (t) => {
  t.equal(fmtRatio(1862, 7640), '0.24x');
  t.equal(fmtRatio(5, 0), 'n/a');
  t.equal(fmtDeltaMs(2.4, 0.61), '+1.79 ms');
  t.equal(fmtDeltaMs(0.5, 0.61), '-0.11 ms');
  t.end();
});

function path(p: 'cross-node' | 'same-node', p50: number, mbit: number, errors = 0): PathFigures {
  return {
    path: p, client: p === 'cross-node' ? 'default/sleep' : 'default/sleep2',
    newConnection: { p50: one(p50), p99: one(p50 * 3), errors },
    keepAlive: { p50: one(p50 / 2), p99: one(p50), errors: 0 },
    bulk: { mbitPerS: one(mbit), bytes: 2 ** 30, complete: true, cpuSecondsPerGiB: { 'ztunnel/node-a': 3.06, 'load-client': 1.25 } },
    concurrent: { connections: 50, maxOpen: 50, errors, droppedEarly: 0, requests: 9000, rps: 4567, p50: 9, p99: 33 },
  };
}
function lab(mesh: boolean, cross: [number, number], same: [number, number], ztunnelKb = 74512): LabFigures {
  return {
    mesh, lab: mesh ? 'bench-dp-mesh' : 'bench-dp-base', tunnel: mesh ? 'userspace' : undefined,
    paths: [path('cross-node', ...cross), path('same-node', ...same)],
    memory: {
      processes: mesh ? [{ id: 'ztunnel/node-a', role: 'ztunnel', idleKb: ztunnelKb, peakKb: 123904 }, { id: 'geneve/node-a', role: 'geneve', idleKb: 86630, peakKb: 86700 }] : [],
      totalIdleKb: 658534, totalPeakKb: 770867,
    },
  };
}
const variant = (up: number, down: number): LifecycleVariant => ({ upWallMs: one(up), upTotalMs: one(up - 200), downWallMs: one(down), stepsMs: { netns: 22, ready: 860, links: 40 }, podNamespaces: 5 });

t.test('the target table says met / NO with the measured figure', (t) => {
  const lifecycle: LifecycleFigures[] = [{ label: 'demo', nodes: 2, pods: 5, reps: 5, noMesh: variant(494, 379), mesh: variant(1450, 545) }];
  const rows = evaluateTargets({ lifecycle, growth: [], datapath: { baseline: lab(false, [0.61, 7640], [0.48, 6989]), mesh: lab(true, [2.4, 1862], [2.29, 2767]) } });
  const by = (prefix: string) => rows.find((r) => r.target.startsWith(prefix))!;
  t.same(by('demo lab up'), { target: 'demo lab up (mesh) < 1.00 s', measured: '1.45 s', met: false });
  t.same(by('demo lab down'), { target: 'demo lab down (mesh) < 1.00 s', measured: '545 ms', met: true });
  t.same(by('20x10'), { target: '20x10 lab up (mesh) < 10.00 s, linear growth', measured: 'n/a: not run (--quick or --skip scale)' });
  t.same(by('three-node'), { target: 'three-node lab up (mesh) < 2.00 s', measured: 'n/a: mesh not available' }, 'a case not measured');
  t.same(by('ambient cross-node new-connection'), { target: 'ambient cross-node new-connection p50 added < 1 ms', measured: '+1.79 ms (2.40 vs 0.61 ms)', met: false });
  t.same(by('ambient cross-node kept-alive'), { target: 'ambient cross-node kept-alive request p50 added < 0.2 ms', measured: '+0.90 ms (1.20 vs 0.30 ms)', met: false });
  t.same(by('ambient cross-node one stream'), { target: 'ambient cross-node one stream >= 30% of baseline', measured: '24.4% (1862 vs 7640 Mbit/s)', met: false });
  t.same(by('ambient same-node one stream'), { target: 'ambient same-node one stream >= 50% of baseline', measured: '39.6% (2767 vs 6989 Mbit/s)', met: false },
    'same-node is held to half the no-mesh speed');
  t.same(by('ztunnel pair CPU'), { target: 'ztunnel pair CPU per GiB (one stream, cross-node) <= 3 s', measured: '3.06 s/GiB (ztunnel/node-a 3.06)', met: false },
    'the load client is not the ztunnels');
  t.same(by('ztunnel RSS'), { target: 'ztunnel RSS idle <= 50 MB', measured: '72.8 MB (largest of 1, data-path lab)', met: false });
  t.equal(by('ambient cross-node: 50').met, true);

  const table = renderTargets(rows).split('\n');
  t.match(table[0], /^TARGET\s+MEASURED\s+MET\?$/);
  t.match(table.find((l) => l.startsWith('ambient cross-node new-connection')), /\+1\.79 ms \(2\.40 vs 0\.61 ms\)\s+NO$/);
  t.match(table.find((l) => l.startsWith('demo lab up')), /1\.45 s\s+NO$/);
  t.end();
});

t.test('issue 14 interactivity rows: three-node up, 20x10 with its growth, lab exec', (t) => {
  const withExec = (v: LifecycleVariant, exec: number): LifecycleVariant => ({ ...v, execWallMs: { median: exec, min: exec - 10, max: exec + 40, n: 5 } });
  const lifecycle: LifecycleFigures[] = [
    { label: 'demo', nodes: 2, pods: 5, reps: 5, noMesh: withExec(variant(494, 379), 90), mesh: withExec(variant(950, 545), 118) },
    { label: 'three-node', nodes: 3, pods: 7, reps: 5, noMesh: variant(600, 400), mesh: variant(2100, 700) },
    { label: '20x10', nodes: 20, pods: 221, reps: 1, noMesh: variant(5000, 3000), mesh: variant(9500, 3000) },
  ];
  const growth = [{ variant: 'mesh' as const, baseMs: 200, perNodeMs: 300, perPodMs: 20, doublingRatio: 2.05 }];
  const rows = evaluateTargets({ lifecycle, growth, datapath: {} });
  const by = (prefix: string) => rows.find((r) => r.target.startsWith(prefix))!;
  t.same(by('demo lab up'), { target: 'demo lab up (mesh) < 1.00 s', measured: '950 ms', met: true });
  t.same(by('three-node'), { target: 'three-node lab up (mesh) < 2.00 s', measured: '2.10 s', met: false });
  t.same(by('20x10'), { target: '20x10 lab up (mesh) < 10.00 s, linear growth', measured: '9.50 s, x2.05 for 2x size', met: true });
  t.same(by('lab exec'), { target: 'lab exec POD -- true < 150 ms', measured: '118 ms', met: true }, 'the mesh lab\'s exec figure');
  const slowGrowth = evaluateTargets({ lifecycle, growth: [{ ...growth[0], doublingRatio: 2.4 }], datapath: {} });
  t.equal(slowGrowth.find((r) => r.target.startsWith('20x10'))!.met, false, 'under 10 s but worse than linear fails');
  t.end();
});

t.test('concurrency with errors and a too-big ztunnel fail their targets', (t) => {
  const mesh = lab(true, [0.9, 5000], [0.8, 5000], 90 * 1024);
  mesh.paths[0].concurrent.errors = 3;
  const rows = evaluateTargets({ lifecycle: [], growth: [], datapath: { baseline: lab(false, [0.6, 7000], [0.5, 7000]), mesh } });
  t.equal(rows.find((r) => r.target.startsWith('ambient cross-node: 50'))!.met, false);
  t.equal(rows.find((r) => r.target.startsWith('ambient same-node: 50'))!.met, true);
  t.same(rows.find((r) => r.target.startsWith('ztunnel RSS'))!.met, false);
  t.end();
});

t.test('without a mesh every mesh row reads "n/a: mesh not available"', (t) => {
  const lifecycle: LifecycleFigures[] = [
    { label: 'demo', nodes: 2, pods: 5, reps: 3, noMesh: variant(494, 379), meshError: 'lab up failed' },
    { label: '20x10', nodes: 20, pods: 221, reps: 1, noMesh: variant(19000, 9000), meshError: 'lab up failed' },
  ];
  const datapath = { baseline: lab(false, [0.61, 7640], [0.48, 6989]), meshError: 'ztunnel/node-a exited before it was ready' };
  const all = evaluateTargets({ lifecycle, growth: [], datapath, waypointError: 'lab up failed', footprintError: 'lab up failed' });
  t.equal(all.length, 18);
  t.same(all.pop(), { target: 'waypoint adds < 2 ms p50 per new request', measured: 'n/a: waypoint lab not available', informational: true }, 'the waypoint row is last');
  const footprint = all.splice(-4);
  for (const r of footprint) t.same([r.measured, r.met], ['n/a: footprint lab not available: lab up failed', undefined], r.target);
  const rows = all;
  for (const r of rows) {
    t.equal(r.measured, 'n/a: mesh not available', r.target);
    t.equal(r.met, undefined);
  }
  const dp = renderDatapath(datapath);
  t.match(dp, /new connection p50\s+cross-node\s+0\.61 ms\s+n\/a: mesh not available/);
  t.match(dp, /mesh lab: ztunnel\/node-a exited before it was ready/);
  t.match(renderLifecycle({ lifecycle, growth: [] }), /mesh\s+n\/a: mesh not available/);
  t.end();
});

t.test('the data-path table puts each figure next to its baseline', (t) => {
  const out = renderDatapath({ baseline: lab(false, [0.61, 7640], [0.48, 6989]), mesh: lab(true, [2.4, 1862], [2.29, 2767]) });
  const line = (re: RegExp) => out.split('\n').find((l) => re.test(l)) ?? '';
  t.match(line(/^new connection p50\s+cross-node/), /0\.61 ms\s+2\.40 ms\s+\+1\.79 ms$/);
  t.match(line(/^one bulk stream\s+cross-node/), /7\.64 Gbit\/s\s+1\.86 Gbit\/s\s+0\.24x$/);
  t.match(line(/^mesh\s+ztunnel\/node-a/), /72\.8 MB\s+121\.0 MB/);
  t.match(out, /mesh cross-node\s+4\.31\s+ztunnel\/node-a 3\.06, load-client 1\.25/);
  t.end();
});

t.test('lab up/down rows and where the time goes', (t) => {
  const out = renderLifecycle({ lifecycle: [{ label: 'demo', nodes: 2, pods: 5, reps: 5, noMesh: variant(494, 379), mesh: variant(1450, 545) }], growth: [] });
  t.match(out, /demo \(2 nodes, 5 pods\)\s+no mesh\s+494 ms\s+379 ms\s+5/);
  t.match(out, /mesh\s+1\.45 s\s+545 ms\s+up 2\.94x, down 1\.44x\s+5/);
  t.match(out, /demo mesh\s+.*ready 93%/);
  t.end();
});
