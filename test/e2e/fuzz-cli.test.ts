// The property-based input tests (test/unit/fuzz-*.test.ts) run thousands of mutated documents
// in-process; this runs a sample of the same documents through the real compiled CLI, as a user
// would: `lab up FILE --dry-run` and `lab apply -f FILE` against one small running lab. Each
// must exit 0 or 2 with no stack trace; a refused `apply` (exit 2) must change nothing: the
// lab's state files and proxy configs on disk, and what every ztunnel reports on /config_dump.
// AMBIENT_LAB_FUZZ_SEED picks the seed (printed), AMBIENT_LAB_FUZZ_CLI_RUNS the sample size.
import t from 'tap';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, envNumber, lab, leftovers, sh, upJson } from './helpers.js';
import { fuzzTargets } from '../unit/fuzz-targets.js';
import { FUZZ_SEED } from '../unit/fuzz-harness.js';
import type { FuzzDoc } from '../unit/fuzz-mutate.js';

const NAME = 'pf-fzapply';
const RUNS = envNumber('AMBIENT_LAB_FUZZ_CLI_RUNS', 30);
const scratch = mkdtempSync(join(tmpdir(), 'pf-fuzz-cli-'));
// Seeds with relative manifests (bookinfo.yaml) find them beside the written file.
symlinkSync(join(REPO, 'topologies/bookinfo'), join(scratch, 'bookinfo'));

// Each document costs a CLI start (1-2 s, more on a loaded machine) and an apply may wait for proxies.
t.setTimeout(Math.max(600, RUNS * 2 * 15) * 1000);

t.teardown(() => {
  lab(['down', NAME]);
  rmSync(scratch, { recursive: true, force: true });
});

t.comment(`seed ${FUZZ_SEED}, ${RUNS} documents per verb (replay: AMBIENT_LAB_FUZZ_SEED=${FUZZ_SEED})`);
const targets = fuzzTargets();
const sample = (docs: fc.Arbitrary<FuzzDoc>): FuzzDoc[] => fc.sample(docs, { seed: FUZZ_SEED, numRuns: RUNS });
const STACK = /^\s+at /m;
const describeDoc = (d: FuzzDoc): string => `${d.seed} [${d.ops.join('; ')}]`;

t.test(`lab up FILE --dry-run of ${RUNS} mutated topologies: exit 0 or 2, never a stack trace`, async (t) => {
  const codes = { 0: 0, 2: 0 } as Record<number, number>;
  sample(targets.topology.docs).forEach((doc, i) => {
    const file = join(scratch, `topology-${i}.yaml`);
    writeFileSync(file, doc.text);
    const r = lab(['up', file, '--dry-run'], { timeoutMs: 60_000 });
    codes[r.code] = (codes[r.code] ?? 0) + 1;
    t.ok(r.code === 0 || r.code === 2, `document ${i} (${describeDoc(doc)}): exit ${r.code}\n${r.stderr.slice(0, 1500)}`);
    t.notMatch(r.stderr, STACK, `document ${i}: no stack trace`);
    if (r.code === 2) t.match(r.stderr, /^lab: \S/, `document ${i}: a message: ${r.stderr.split('\n')[0].slice(0, 200)}`);
  });
  t.comment(`exit codes: ${JSON.stringify(codes)}`);
});

/** What a refused apply must not change: state and config files, and the proxies' loaded configs. */
function labFingerprint(): Record<string, string> {
  const dir = `/run/ambient-lab/${NAME}`;
  const out: Record<string, string> = {};
  const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);
  for (const f of ['state.json', 'applied.json', 'build.json', 'plan.json']) {
    out[f] = existsSync(join(dir, f)) ? hash(readFileSync(join(dir, f), 'utf8')) : 'absent';
  }
  const build = JSON.parse(readFileSync(join(dir, 'build.json'), 'utf8')) as { files: Array<{ path: string }>; processes: Array<{ id: string; role: string; netns: string }> };
  for (const f of build.files) out[f.path] = existsSync(f.path) ? hash(readFileSync(f.path, 'utf8')) : 'absent';
  for (const p of build.processes.filter((x) => ['ztunnel', 'waypoint'].includes(x.role))) {
    const dump = sh(`ip netns exec ${p.netns} curl -s --max-time 5 http://127.0.0.1:15000/config_dump`);
    let config: unknown;
    try { config = (JSON.parse(dump) as { config?: { hash?: string; version?: number } }).config; } catch { config = `unreadable: ${dump.slice(0, 100)}`; }
    out[`config_dump ${p.id}`] = JSON.stringify(config);
  }
  return out;
}

t.test(`lab apply -f of ${RUNS} mutated object files to a running lab: exit 0 or 2; refused ones change nothing`, async (t) => {
  t.same(leftovers(NAME), [], `nothing of ${NAME} before the test`);
  const up = upJson('test/fixtures/topologies/apply.yaml', NAME);
  t.ok(up.ok, `lab up ${NAME}\n${up.stderr}`);
  if (!up.ok) return;
  // Real objects first (a waypoint, then a VirtualService on it): the refused files below are
  // then compared against a lab with applied objects and a waypoint's live config too.
  for (const f of ['test/fixtures/apply/waypoint.yaml', 'test/fixtures/apply/fault.yaml']) {
    const r = lab(['apply', '-f', f, '--lab', NAME], { timeoutMs: 60_000 });
    t.equal(r.code, 0, `lab apply -f ${f}\n${r.stderr}`);
  }
  const codes = { 0: 0, 2: 0 } as Record<number, number>;
  let i = 0;
  for (const doc of sample(targets.apply.docs)) {
    const file = join(scratch, `apply-${i}.yaml`);
    writeFileSync(file, doc.text);
    const before = labFingerprint();
    const r = lab(['apply', '-f', file, '--lab', NAME], { timeoutMs: 60_000 });
    codes[r.code] = (codes[r.code] ?? 0) + 1;
    t.ok(r.code === 0 || r.code === 2, `document ${i} (${describeDoc(doc)}): exit ${r.code}\n${r.stderr.slice(0, 1500)}`);
    t.notMatch(r.stderr, STACK, `document ${i}: no stack trace`);
    if (r.code === 2) t.same(labFingerprint(), before, `document ${i} was refused and changed nothing: ${r.stderr.split('\n')[0].slice(0, 200)}`);
    i++;
  }
  t.comment(`exit codes: ${JSON.stringify(codes)}`);
  const down = lab(['down', NAME]);
  t.equal(down.code, 0, `lab down ${NAME}\n${down.stderr}`);
  t.same(leftovers(NAME), [], 'nothing left');
});
