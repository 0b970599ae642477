// The footprint section's target rows and table, from hand-made figures: totals against 600 MB
// and 1 GB, Geneve per node (one daemon per node or one for the lab, or none with kernel Geneve), the largest
// ztunnel, the largest waypoint or sidecar; PSS parsed from smaps_rollup.
import t from 'tap';
import { footprintRows, evaluateTargets } from '../../src/bench/targets.js';
import { renderFootprint, parsePssKb, type FootprintFigures, type FootprintProcess } from '../../src/bench/footprint.js';
import { benchLabName } from '../../src/bench/lab-cli.js';

const MB = 1024;
const proc = (id: string, role: string, mb: number, node?: string): FootprintProcess => ({ id, role, node, rssKb: mb * MB, pssKb: (mb / 4) * MB });
const figs = (label: FootprintFigures['label'], tunnel: string | undefined, processes: FootprintProcess[]): FootprintFigures => ({
  label, lab: `bench-fp-${label}`, tunnel, nodes: new Set(processes.map((p) => p.node).filter(Boolean)).size, processes,
  totalRssKb: processes.reduce((a, p) => a + p.rssKb, 0), totalPssKb: processes.reduce((a, p) => a + (p.pssKb ?? 0), 0),
});
const three = (genevemb: number, ztmb: number, tunnel = 'userspace') => figs('three-node', tunnel, [
  ...['a', 'b', 'c'].flatMap((n) => [
    ...(tunnel === 'userspace' ? [proc(`geneve/node-${n}`, 'geneve', genevemb, `node-${n}`)] : []),
    proc(`ztunnel/node-${n}`, 'ztunnel', ztmb, `node-${n}`),
  ]),
  proc('pod/default/httpbin-1', 'app', 53, 'node-b'), proc('supervisor', 'supervisor', 50),
]);
const bookinfo = (wp: number, sc: number) => figs('bookinfo', 'userspace', [
  proc('waypoint/default/reviews', 'waypoint', wp, 'node-a'), proc('sidecar/a', 'sidecar', sc, 'node-b'), proc('sidecar/b', 'sidecar', sc - 2, 'node-a'),
  ...Array.from({ length: 10 }, (_, i) => proc(`pod/default/app-${i}`, 'app', 53, 'node-a')),
]);
const by = (rows: ReturnType<typeof footprintRows>, prefix: string) => rows.find((r) => r.target.startsWith(prefix))!;

t.test('met: small daemons, small proxies, totals under the limits', async (t) => {
  const rows = footprintRows({ footprint: [three(38, 49), bookinfo(58, 60)] });
  t.same(by(rows, 'three-node'), { target: 'three-node ambient lab RSS at rest < 600 MB', measured: '364.0 MB in 8 processes (PSS 91.0 MB)', met: true });
  t.same(by(rows, 'userspace Geneve'), { target: 'userspace Geneve <= 40 MB per node', measured: '38.0 MB per node (3 daemons for 3 nodes)', met: true });
  t.same(by(rows, 'waypoint and sidecar'), { target: 'waypoint and sidecar proxy RSS <= 60 MB', measured: 'waypoint 58.0 MB, sidecar 60.0/58.0 MB (bookinfo lab)', met: true });
  t.same(by(rows, 'bookinfo'), { target: 'bookinfo lab (waypoint, two sidecars) RSS at rest < 1 GB', measured: '706.0 MB in 13 processes (PSS 176.5 MB)', met: true });
  const zt = evaluateTargets({ lifecycle: [], growth: [], datapath: {}, footprint: [three(38, 49)] }).find((r) => r.target.startsWith('ztunnel RSS'))!;
  t.same(zt, { target: 'ztunnel RSS idle <= 50 MB', measured: '49.0 MB (largest of 3, three-node lab)', met: true }, 'the ztunnel row reads the three-node lab');
});

t.test('one daemon for the lab (no node of its own): its RSS is shared by the nodes', async (t) => {
  const lab = three(0, 49, 'userspace');
  const one = figs('three-node', 'userspace', [proc('geneve', 'geneve', 49), ...lab.processes.filter((p) => p.role !== 'geneve')]);
  t.equal(one.nodes, 3, 'the nodes are counted from the ztunnels');
  const row = by(footprintRows({ footprint: [one] }), 'userspace Geneve');
  t.same([row.measured, row.met], ['16.3 MB per node (1 daemon for 3 nodes)', true], '49 MB / 3 nodes');
  t.match(renderFootprint([one], undefined), /three-node\s+geneve x1\s+49\.0 MB\s+49\.0 MB/);
});

t.test('not met: what each row compares', async (t) => {
  const rows = footprintRows({ footprint: [three(49.4, 57.6), bookinfo(66, 61)] });
  t.equal(by(rows, 'three-node').met, true, '3 x 49.4 + 3 x 57.6 + 103 = 424 MB < 600');
  t.same([by(rows, 'userspace Geneve').measured, by(rows, 'userspace Geneve').met], ['49.4 MB per node (3 daemons for 3 nodes)', false]);
  t.equal(by(rows, 'waypoint and sidecar').met, false, 'the largest proxy counts');
  const big = footprintRows({ footprint: [three(170, 72), bookinfo(80, 80)] });
  t.equal(by(big, 'three-node').met, false, '3 x 170 + 3 x 72 + 103 > 600');
});

t.test('kernel Geneve has no daemon; a missing section is "not run"; a failed lab says why', async (t) => {
  const rows = footprintRows({ footprint: [three(0, 49, 'kernel')] });
  t.same(by(rows, 'userspace Geneve'), { target: 'userspace Geneve <= 40 MB per node', measured: 'n/a: Geneve kernel (no userspace daemon)' });
  t.equal(by(rows, 'bookinfo').measured, 'n/a: mesh not available', 'bookinfo did not come up after the three-node lab');
  t.ok(footprintRows({}).every((r) => r.measured === 'n/a: not run (--skip)' && r.met === undefined), '--skip footprint');
  t.ok(footprintRows({ footprintError: 'lab up failed' }).every((r) => r.measured === 'n/a: footprint lab not available: lab up failed'));
});

t.test('the table: each kind of process with its largest, sum and PSS; then the lab', async (t) => {
  const out = renderFootprint([three(49.4, 57.6)], undefined).split('\n');
  t.match(out[0], /^LAB\s+PROCESSES\s+LARGEST RSS\s+RSS\s+PSS$/);
  t.match(out.find((l) => /geneve x3/.test(l)), /three-node\s+geneve x3\s+49\.4 MB\s+148\.2 MB\s+37\.0 MB/);
  t.match(out.at(-1), /three-node\s+all 8 processes \(3 nodes, Geneve userspace\)\s+424\.0 MB\s+106\.0 MB/);
  t.match(renderFootprint([], 'lab up failed'), /n\/a: lab up failed/);
});

t.test('PSS from smaps_rollup', async (t) => {
  t.equal(parsePssKb('00400000-7ffd0 ---p 00000000 00:00 0  [rollup]\nRss:               49380 kB\nPss:               12712 kB\nPss_Anon:  11000 kB\n'), 12712);
  t.equal(parsePssKb('Rss: 1 kB\n'), undefined);
});

t.test('AMBIENT_LAB_BENCH_TAG keeps two footprint runs on one machine apart', async (t) => {
  t.equal(benchLabName('bench-fp-3n', undefined), 'bench-fp-3n');
  t.equal(benchLabName('bench-fp-3n', 'gv'), 'bench-fp-3n-gv');
  t.equal(benchLabName('bench-fp-bookinfo', 'gv'), 'bench-fp-bookinfo-gv', '20 characters: still a lab name');
  t.throws(() => benchLabName('bench-fp-bookinfo', 'mem'), /AMBIENT_LAB_BENCH_TAG=mem makes the lab name bench-fp-bookinfo-mem: .*20/);
  t.throws(() => benchLabName('bench-fp-3n', 'A/B'), /AMBIENT_LAB_BENCH_TAG=A\/B/);
});
