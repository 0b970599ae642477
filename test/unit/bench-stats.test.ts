// The arithmetic behind every printed bench figure: percentiles, median (min-max), growth fits,
// and the /proc parsers that memory and CPU figures come from.
import t from 'tap';
import { percentile, median, spread, latencySummary, fitNodesPods } from '../../src/bench/stats.js';
import { parseVmRssKb, parseCpuTicks } from '../../src/bench/procfs.js';
import { computeGrowth, doublingRatio } from '../../src/bench/growth.js';
import type { LifecycleFigures, LifecycleVariant } from '../../src/bench/lifecycle.js';

t.test('percentile is nearest-rank: the value of a sample that happened', (t) => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  t.equal(percentile(hundred, 50), 50);
  t.equal(percentile(hundred, 99), 99);
  t.equal(percentile(hundred, 100), 100);
  t.equal(percentile(hundred, 0), 1);
  // 10 samples: p99 is the slowest one, not an interpolation past it.
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 50], 99), 50);
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 50], 90), 9);
  t.equal(percentile([7], 50), 7);
  t.ok(Number.isNaN(percentile([], 50)));
  t.end();
});

t.test('latencySummary sorts its input and reports p50/p90/p99/min/max/mean', (t) => {
  const s = latencySummary([5, 1, 3, 2, 4]);
  t.same(s, { n: 5, p50: 3, p90: 5, p99: 5, min: 1, max: 5, mean: 3 });
  t.equal(latencySummary([]).n, 0);
  t.ok(Number.isNaN(latencySummary([]).p50));
  t.end();
});

t.test('median and spread of repeated runs', (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.same(spread([1400, 1460, 1450]), { median: 1450, min: 1400, max: 1460, n: 3 });
  // A failed run (NaN) does not poison the figure.
  t.same(spread([10, NaN, 20]), { median: 15, min: 10, max: 20, n: 2 });
  t.equal(spread([]).n, 0);
  t.end();
});

t.test('fitNodesPods separates per-node from per-pod cost', (t) => {
  // y = 200 + 300 per node + 40 per pod, at the bench's three shapes.
  const y = (nodes: number, pods: number) => 200 + 300 * nodes + 40 * pods;
  const fit = fitNodesPods([
    { nodes: 2, pods: 5, y: y(2, 5) },
    { nodes: 10, pods: 111, y: y(10, 111) },
    { nodes: 20, pods: 221, y: y(20, 221) },
  ])!;
  t.ok(Math.abs(fit.base - 200) < 1e-6, `base ${fit.base}`);
  t.ok(Math.abs(fit.perNode - 300) < 1e-6, `perNode ${fit.perNode}`);
  t.ok(Math.abs(fit.perPod - 40) < 1e-6, `perPod ${fit.perPod}`);
  // Pods a fixed multiple of nodes: the two costs cannot be told apart.
  t.equal(fitNodesPods([{ nodes: 1, pods: 10, y: 1 }, { nodes: 2, pods: 20, y: 2 }, { nodes: 3, pods: 30, y: 3 }]), undefined);
  t.equal(fitNodesPods([{ nodes: 1, pods: 10, y: 1 }, { nodes: 2, pods: 5, y: 2 }]), undefined);
  t.end();
});

const variant = (upMs: number): LifecycleVariant => ({
  upWallMs: { median: upMs, min: upMs, max: upMs, n: 1 }, upTotalMs: { median: upMs, min: upMs, max: upMs, n: 1 },
  downWallMs: { median: 1, min: 1, max: 1, n: 1 }, stepsMs: {}, podNamespaces: 0,
});
const lc = (label: string, nodes: number, pods: number, noMesh: number, mesh?: number): LifecycleFigures =>
  ({ label, nodes, pods, reps: 1, noMesh: variant(noMesh), mesh: mesh === undefined ? undefined : variant(mesh) });

t.test('growth: per node, per pod, and what doubling the largest lab costs', (t) => {
  const cases = [lc('demo', 2, 5, 500, 1400), lc('10x10', 10, 111, 9000, 12000), lc('20x10', 20, 221, 19000, 26000)];
  const g = computeGrowth(cases);
  t.same(g.map((x) => x.variant), ['no-mesh', 'mesh']);
  t.equal(g[1].doublingRatio, 26000 / 12000);
  t.equal(doublingRatio(cases, (c) => c.noMesh), 19000 / 9000);
  // Reproduces the measured points exactly (three points, three unknowns).
  const m = g[1];
  t.ok(Math.abs(m.baseMs + m.perNodeMs * 20 + m.perPodMs * 221 - 26000) < 1e-6);
  // Without the mesh figures, only the baseline growth is reported.
  t.same(computeGrowth([lc('demo', 2, 5, 500), lc('5x10', 5, 56, 4000), lc('10x10', 10, 111, 9000)]).map((x) => x.variant), ['no-mesh']);
  t.end();
});

t.test('VmRSS and CPU ticks come out of /proc text', (t) => {
  const status = 'Name:\tnode\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1234567 kB\nVmRSS:\t   74512 kB\nRssAnon:\t   40000 kB\n';
  t.equal(parseVmRssKb(status), 74512);
  t.equal(parseVmRssKb('Name:\tkthreadd\n'), undefined, 'kernel threads have no VmRSS');
  // comm with a space and a parenthesis must not shift the fields; utime=1500, stime=250.
  const stat = '4242 (node (zt) x) S 1 4242 4242 0 -1 4194560 9000 0 0 0 1500 250 0 0 20 0 11 0 123456 1000000 18000';
  t.equal(parseCpuTicks(stat), 1750);
  t.end();
});
