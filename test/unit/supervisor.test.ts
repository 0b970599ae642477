// The supervisor's decisions, driven tick by tick against a scratch state directory, with real
// (short-lived, namespace-less) processes standing in for a ztunnel and a fake clock for the
// back-off. The races with `lab down` are made to happen at the exact point that matters by
// flipping the phase from inside the supervisor's own calls.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, destination } from 'pino';
import { Supervisor, realDeps, restartDelayMs, BACKOFF, type SupervisorDeps, type SupervisedRecord, type OnExit } from '../../src/lab/supervisor.js';
import { readState, writeState, type LabState } from '../../src/state/store.js';
import { isAlive } from '../../src/host/processes.js';
import type { ProcessSpec } from '../../src/plan/lab-build.js';
import { waitFor } from '../e2e/helpers.js';

const root = mkdtempSync(join(tmpdir(), 'tt-supervisor-'));
process.env.AMBIENT_LAB_STATE_DIR = root;
const LAB = 'tt-sup-unit';
const started: number[] = [];
t.teardown(() => {
  for (const pid of started) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  rmSync(root, { recursive: true, force: true });
});

const spec: ProcessSpec = { id: 'ztunnel/node-a', role: 'ztunnel', netns: 'unused', argv: ['sleep', '60'], log: join(root, 'ztunnel.log') };

/** A PID that is certainly dead: a process that already exited. */
const deadPid = (): number => spawnSync('true').pid;

/** Starts `sleep 60` directly (no netns: the supervisor's logic is under test, not `ip netns exec`). */
function startSleep(_lab: string, s: ProcessSpec, onExit: OnExit) {
  const child = spawn(s.argv[0], s.argv.slice(1), { stdio: 'ignore' });
  child.once('exit', onExit);
  started.push(child.pid!);
  return { id: s.id, role: s.role, pid: child.pid!, netns: s.netns, log: s.log, argv: s.argv, startedAt: new Date(clock).toISOString() };
}

let clock = Date.parse('2026-01-01T00:00:00Z');

function freshLab(pid: number, startedAt = new Date(clock - 60_000).toISOString()): void {
  rmSync(join(root, LAB), { recursive: true, force: true });
  const state: LabState = {
    lab: LAB, file: 'fixture.yaml', phase: 'up', createdAt: startedAt, netns: [], files: [],
    processes: [{ id: spec.id, role: 'ztunnel', pid, netns: 'unused', log: spec.log, argv: spec.argv, startedAt }],
  };
  writeState(state);
}

function supervisor(deps: Partial<SupervisorDeps> = {}) {
  const logFile = join(root, `supervisor-${Math.random().toString(16).slice(2)}.log`);
  const log = pino({ base: null }, destination({ dest: logFile, sync: true }));
  const sup = new Supervisor(LAB, new Map([[spec.id, spec]]), log, { ...realDeps, start: startSleep, now: () => clock, ...deps });
  const lines = () => readFileSync(logFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { sup, lines };
}

const record = (): SupervisedRecord => readState(LAB)!.processes[0] as SupervisedRecord;

t.test('back-off schedule: first restart at once, then 500 ms doubling, capped at 30 s', async (t) => {
  t.same([1, 2, 3, 4, 5].map(restartDelayMs), [0, 500, 1000, 2000, 4000]);
  t.equal(restartDelayMs(40), BACKOFF.capMs);
  t.equal(BACKOFF.capMs, 30_000);
});

t.test('a dead process is restarted, then backs off when it dies again soon; restarts and last exit are recorded', async (t) => {
  const first = deadPid();
  freshLab(first);
  const { sup, lines } = supervisor();
  t.equal(await sup.tick(), true);
  const r1 = record();
  t.not(r1.pid, first, 'new PID recorded');
  t.ok(isAlive(r1.pid), 'the replacement runs');
  t.equal(r1.restarts, 1);
  t.ok(r1.lastExit?.at, 'time of the exit recorded');
  t.equal(r1.lastExit?.code, undefined, 'no exit code for a process the supervisor did not start');

  // It dies 1 s after its start: a quick death, so the next restart waits 500 ms.
  clock += 1000;
  process.kill(r1.pid, 'SIGKILL');
  // The supervisor waits for its child's exit to be reaped (to know how it ended), then backs off.
  await waitFor(async () => { await sup.tick(); return lines().some((l) => l.msg === 'process died again soon after its start; backing off'); }, 5000, 'the second death to be noticed');
  t.equal(record().pid, r1.pid, 'not restarted during the back-off');
  t.match(lines().at(-1), { restartInMs: 500, quickDeaths: 2, exit: { signal: 'SIGKILL', code: null } });
  clock += 499;
  await sup.tick();
  t.equal(record().pid, r1.pid, 'still backing off at 499 ms');
  clock += 1;
  await sup.tick();
  const r2 = record();
  t.not(r2.pid, r1.pid, 'restarted once the back-off is over');
  t.equal(r2.restarts, 2);
  t.match(r2.lastExit, { signal: 'SIGKILL', code: null }, 'last exit: killed by SIGKILL');

  // Up for longer than stableMs before dying: not a crash loop, restarted at once.
  clock += BACKOFF.stableMs + 1;
  process.kill(r2.pid, 'SIGTERM');
  await waitFor(async () => { await sup.tick(); return record().pid !== r2.pid; }, 5000, 'the immediate restart');
  t.equal(record().restarts, 3);
  t.match(record().lastExit, { signal: 'SIGTERM' });
  t.match(lines().filter((l) => l.msg === 'process died; restarting').at(-1), { restartInMs: 0, quickDeaths: 1 });
  sup.killChildren();
});

t.test('lab down begins while the replacement starts: it is killed and never recorded', async (t) => {
  const first = deadPid();
  freshLab(first);
  let fresh = 0;
  const { sup, lines } = supervisor({
    start: (lab, s, onExit) => {
      const rec = startSleep(lab, s, onExit);
      fresh = rec.pid;
      // What `lab down` does first, landing just after the spawn.
      writeState({ ...readState(LAB)!, phase: 'deleting' });
      return rec;
    },
  });
  await sup.tick();
  t.ok(fresh > 0, 'a replacement was started');
  t.notOk(isAlive(fresh), 'and it is gone by the time the tick returns');
  t.equal(record().pid, first, 'the state never named it');
  t.equal(record().restarts, undefined);
  t.ok(lines().some((l) => l.msg === 'lab is going down; stopping the replacement just started' && l.pid === fresh), 'logged why');
  t.same(sup.killChildren(), [], 'nothing of ours left running');
});

t.test('lab down begins between the tick\'s read and the start: nothing is started', async (t) => {
  freshLab(deadPid());
  let reads = 0;
  let starts = 0;
  const { sup } = supervisor({
    readState: (lab) => {
      const s = readState(lab);
      // The tick's own read sees "up"; down's phase change lands right after it.
      if (++reads === 1) writeState({ ...s!, phase: 'deleting' });
      return s;
    },
    start: (lab, s, onExit) => { starts++; return startSleep(lab, s, onExit); },
  });
  await sup.tick();
  t.ok(reads >= 2, 'the phase was read again before starting');
  t.equal(starts, 0, 'no replacement started');
});

t.test('stopped (SIGTERM from lab down): every replacement it started is killed', async (t) => {
  freshLab(deadPid());
  const { sup } = supervisor();
  await sup.tick();
  const pid = record().pid;
  t.ok(isAlive(pid));
  // Even one already recorded in the state: down may have read the state before our write.
  t.same(sup.killChildren(), [pid]);
  await waitFor(() => !isAlive(pid), 2000, 'the replacement to die');
});
