// `lab up` SIGKILLed at a random moment (not only at the start of a step, as
// sigkill-cleanup.test.ts does): a kill can land in the middle of an `ip -batch`, between
// starting a process and recording its PID, while a certificate is written... Each trial kills
// the `up` child after a random delay in [0, the measured duration of a whole `up`], then runs
// `lab down NAME` and asserts that nothing of the lab is left (namespaces, /etc/netns entries,
// processes, state) and that the host's root namespace is unchanged.
//
// The delays come from a seeded PRNG: the seed is printed, and AMBIENT_LAB_SIGKILL_SEED=<seed>
// replays the same trials. AMBIENT_LAB_SIGKILL_TRIALS sets their number (default 92: with the 8
// deterministic step kills of sigkill-cleanup.test.ts, 100 in all). Never `lab down --all`
// here: other labs may be up on the machine.
import t from 'tap';
import { spawn } from 'node:child_process';
import { CLI, REPO, envNumber, lab, leftoverKinds, leftovers, rootSnapshot, seededRandom } from './helpers.js';

const NAME = 'pf-krand';
const SEED = envNumber('AMBIENT_LAB_SIGKILL_SEED', 20261127);
const TRIALS = envNumber('AMBIENT_LAB_SIGKILL_TRIALS', 92);
/** The demo has the mesh (ztunnels, certificates, Geneve daemons); plain.yaml is the same cluster without it. */
const TOPOLOGIES = ['topologies/demo.yaml', 'topologies/plain.yaml'] as const;

t.teardown(() => { lab(['down', NAME]); });
// A trial is ~4 s on a quiet machine and up to ~15 s on a loaded one: beyond tap's 600 s default.
t.setTimeout(Math.max(600, 120 + TRIALS * 30) * 1000);

/** `8 netns, 5 /etc/netns, 9 process, 1 state`: what a kill left, short enough for a message. */
const counted = (left: string[]): string =>
  leftoverKinds(left).map((k) => `${left.filter((l) => (k === '/etc/netns' ? l.startsWith('/etc/netns/') : l.startsWith(`${k} `))).length} ${k}`).join(', ') || 'nothing';

interface UpRun {
  /** True when the SIGKILL landed before `up` finished. */
  killed: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  stderr: string;
}

/** Runs `lab up FILE NAME` and SIGKILLs it after `killAfterMs` (never, when undefined). */
function runUp(file: string, killAfterMs?: number): Promise<UpRun> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, 'up', file, NAME, '--json'], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += String(d); });
    let killed = false;
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => { killed = child.kill('SIGKILL'); }, killAfterMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ killed: killed && signal === 'SIGKILL', code, signal, ms: performance.now() - t0, stderr });
    });
  });
}

t.comment(`seed ${SEED}, ${TRIALS} trials (replay: AMBIENT_LAB_SIGKILL_SEED=${SEED} AMBIENT_LAB_SIGKILL_TRIALS=${TRIALS})`);

/** How long a whole `up` of each topology takes on this machine now: the range the kills are drawn from (updated as trials finish). */
const typicalMs: Record<string, number> = {};

t.test('calibration: a whole lab up of each topology, then lab down', async (t) => {
  t.same(leftovers(NAME), [], `nothing of lab ${NAME} before the test`);
  for (const file of TOPOLOGIES) {
    const up = await runUp(file);
    t.equal(up.code, 0, `${file}: lab up exits 0\n${up.stderr}`);
    typicalMs[file] = up.ms;
    const down = lab(['down', NAME]);
    t.equal(down.code, 0, `lab down exits 0\n${down.stderr}`);
    t.same(leftovers(NAME), [], 'nothing left');
    t.comment(`${file}: lab up took ${Math.round(up.ms)} ms (process start included)`);
  }
});

const rand = seededRandom(SEED);
const tally = new Map<string, number>();
let killedMidway = 0;

for (let i = 1; i <= TRIALS; i++) {
  // Drawn up front, in order, so a seed gives the same trials whatever happens in them.
  const file = TOPOLOGIES[rand() < 0.7 ? 0 : 1];
  const fraction = rand();
  t.test(`trial ${i}/${TRIALS} (seed ${SEED}): ${file} killed at ${(fraction * 100).toFixed(1)}% of a typical up`, async (t) => {
    t.same(leftovers(NAME), [], 'nothing of the lab before up');
    const before = rootSnapshot();
    const delay = Math.round(fraction * typicalMs[file]);
    const up = await runUp(file, delay);
    t.ok(up.killed || up.code === 0, `lab up was killed (after ${delay} ms) or had finished (exit 0): code ${up.code} signal ${up.signal}\n${up.stderr}`);
    const left = leftovers(NAME);
    const what = up.killed ? (leftoverKinds(left).join('+') || 'nothing yet') : 'finished before the kill';
    // The machine's load changes during the test: an `up` that finished is the new measure of a whole one.
    if (!up.killed && up.code === 0) typicalMs[file] = up.ms;
    tally.set(what, (tally.get(what) ?? 0) + 1);
    if (up.killed) killedMidway++;
    const down = lab(['down', NAME]);
    // With nothing created yet, `lab down NAME` may say there is no such lab (exit 2): a typo's answer.
    if (left.length) t.equal(down.code, 0, `lab down exits 0 (the kill left: ${counted(left)})\n${down.stderr}`);
    else t.ok([0, 2].includes(down.code), `nothing was created: lab down exits 0, or 2 saying there is no such lab\n${down.stderr}`);
    t.notMatch(down.stderr, /^\s+at /m, 'no stack trace from lab down');
    t.same(leftovers(NAME), [], `nothing left after lab down (the kill left: ${counted(left)})`);
    t.same(rootSnapshot(), before, 'root namespace unchanged');
  });
}

t.test('the kills landed while up was working', async (t) => {
  t.comment(`what each kill left for lab down: ${[...tally].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  // A test that only ever brought labs up and down would prove nothing about kills.
  t.ok(killedMidway >= TRIALS / 2, `${killedMidway} of ${TRIALS} trials killed lab up before it finished`);
  const kinds = new Set([...tally.keys()]);
  t.ok(kinds.size >= 3, `kills landed at several stages of up: ${[...kinds].join(' | ')}`);
});
