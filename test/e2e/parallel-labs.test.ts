// Two labs brought up and down in parallel loops: labs are separate worlds (same addresses, same
// Service names, their own namespaces, state, processes and certificates), so one lab's `up`,
// traffic or `down` must never reach into the other. Each lab is the demo's mesh with its httpbin
// pod renamed after the lab (pod-pa / pod-pb): `/hostname` through the Service then says which
// lab's pod answered. Every cycle: up, one request from sleep through the mesh (ztunnels,
// HBONE), down; at the end: every request answered by its own lab, the labs were really up at
// the same time, nothing of either is left, the root namespace is unchanged.
// AMBIENT_LAB_PARALLEL_SECONDS sets how long the loops run (default 75; minutes for a soak).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, envNumber, lab, labAsync, leftovers, rootSnapshot } from './helpers.js';

const LABS = ['pa-1', 'pb-1'] as const;
const SECONDS = envNumber('AMBIENT_LAB_PARALLEL_SECONDS', 75);
const scratch = mkdtempSync(join(tmpdir(), 'pf-parallel-'));

// The loops stop starting cycles after SECONDS; the last ones (and the checks) still need time.
t.setTimeout((SECONDS + 300) * 1000);

t.teardown(() => {
  for (const name of LABS) lab(['down', name]);
  rmSync(scratch, { recursive: true, force: true });
});

/** The demo topology with httpbin's pod named after the lab. */
function topologyFor(name: string): { file: string; pod: string } {
  const pod = `httpbin-${name.split('-')[0]}`;
  const text = readFileSync(join(REPO, 'topologies/demo.yaml'), 'utf8')
    .replace(/^name: demo$/m, `name: ${name}`)
    // The Service still selects app=httpbin: only the pod's name (what /hostname says) changes.
    .replace(/^ {2}- name: httpbin$/m, `  - name: ${pod}\n    labels: {app: httpbin}`);
  if (!text.includes(`name: ${pod}`)) throw new Error('topologies/demo.yaml changed shape: no httpbin pod to rename');
  const file = join(scratch, `${name}.yaml`);
  writeFileSync(file, text);
  return { file, pod };
}

interface Cycle {
  lab: string;
  ok: boolean;
  /** What went wrong, when not ok. */
  why?: string;
  /** Wall-clock interval during which the lab was up (ms since the test started). */
  upFrom?: number;
  upTo?: number;
  /** Seconds spent in up, the request and down. */
  took?: string;
}

async function loop(name: string, until: number, t0: number): Promise<Cycle[]> {
  const { file, pod } = topologyFor(name);
  const cycles: Cycle[] = [];
  while (Date.now() < until) {
    const c0 = performance.now();
    const up = await labAsync(['up', file, name, '--json']);
    if (up.code !== 0) {
      cycles.push({ lab: name, ok: false, why: `lab up exited ${up.code}: ${up.stderr.slice(-400)}` });
      await labAsync(['down', name]);
      continue;
    }
    const upFrom = performance.now() - t0;
    const r = await labAsync(['exec', '--lab', name, 'sleep', '--', 'curl', '-s', '--max-time', '10', 'http://httpbin:8000/hostname']);
    const answer = r.stdout.trim();
    const upTo = performance.now() - t0;
    const down = await labAsync(['down', name]);
    const took = [upFrom, upTo, performance.now() - t0].map((x, i, all) => ((x - (i ? all[i - 1] : c0 - t0)) / 1000).toFixed(1)).join('/');
    const left = leftovers(name);
    const problems = [
      ...(r.code !== 0 ? [`curl exit ${r.code} (${r.stderr.trim()})`] : []),
      ...(r.code === 0 && answer !== pod ? [`answered by "${answer}", not ${pod}`] : []),
      ...(down.code !== 0 ? [`lab down exited ${down.code}: ${down.stderr.trim()}`] : []),
      ...(left.length ? [`left after down: ${left.join(', ')}`] : []),
    ];
    cycles.push({ lab: name, ok: !problems.length, ...(problems.length ? { why: problems.join('; ') } : {}), upFrom, upTo, took });
  }
  return cycles;
}

t.test(`${LABS.join(' and ')} up and down in parallel loops for ${SECONDS} s`, async (t) => {
  for (const name of LABS) t.same(leftovers(name), [], `nothing of ${name} before the test`);
  const before = rootSnapshot();
  const t0 = performance.now();
  const until = Date.now() + SECONDS * 1000;
  const [a, b] = await Promise.all(LABS.map((name) => loop(name, until, t0)));
  for (const [name, cycles] of [[LABS[0], a], [LABS[1], b]] as const) {
    const bad = cycles.filter((c) => !c.ok);
    t.ok(cycles.length >= 2, `${name}: ${cycles.length} up/request/down cycles`);
    t.same(bad.map((c) => c.why), [], `${name}: every request answered by its own lab's pod, every down clean (${cycles.length - bad.length}/${cycles.length})`);
  }
  // Parallel for real: some request of one lab was made while the other lab was up.
  const wasUp = (c: Cycle): c is Cycle & { upFrom: number; upTo: number } => c.upFrom !== undefined && c.upTo !== undefined;
  const overlaps = a.filter(wasUp).filter((x) => b.filter(wasUp).some((y) => x.upFrom < y.upTo && y.upFrom < x.upTo)).length;
  t.ok(overlaps > 0, `${overlaps} of ${a.length} cycles of ${LABS[0]} overlapped with ${LABS[1]} being up`);
  for (const name of LABS) t.same(leftovers(name), [], `nothing of ${name} left`);
  t.same(rootSnapshot(), before, 'root namespace unchanged');
  for (const c of [...a, ...b]) if (c.took) t.comment(`${c.lab}: up/request/down ${c.took} s`);
  t.comment(`${a.length} + ${b.length} cycles in ${Math.round((performance.now() - t0) / 1000)} s, ${overlaps} overlapping`);
});
