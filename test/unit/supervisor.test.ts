// The supervisor's decisions, driven tick by tick against a scratch state directory, with real
// (short-lived, namespace-less) processes standing in for a ztunnel and a fake clock for the
// back-off. The races with `lab down` are made to happen at the exact point that matters by
// flipping the phase from inside the supervisor's own calls.
import t from 'tap';
import { SUCCESSOR_ENV } from '../../src/ztunnel/successor.js';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, destination } from 'pino';
import { Supervisor, realDeps, restartDelayMs, drainingId, BACKOFF, type SupervisorDeps, type SupervisedRecord, type OnExit } from '../../src/lab/supervisor.js';
import { awaitRestart, parseDuration, submitRestart, takeRequests } from '../../src/lab/ztunnel-restart.js';
import { supervisionNote } from '../../src/cli/status.js';
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

t.test('a crash loop records its last exit and how long it backs off, for lab status', async (t) => {
  freshLab(deadPid());
  const { sup } = supervisor();
  await sup.tick();
  const r1 = record();
  clock += 1000;
  process.kill(r1.pid, 'SIGKILL');
  await waitFor(async () => { await sup.tick(); return record().backoffUntil; }, 5000, 'the back-off to be recorded');
  t.equal(record().pid, r1.pid, 'not restarted yet');
  t.equal(record().backoffUntil, new Date(clock + 500).toISOString(), 'backing off until 500 ms after the death');
  t.match(record().lastExit, { signal: 'SIGKILL' }, 'with how it ended');
  t.equal(supervisionNote(record(), false), `exit SIGKILL at ${record().lastExit!.at.slice(11, 19)}; backing off until ${record().backoffUntil!.slice(11, 19)}`);
  clock += 500;
  await sup.tick();
  t.equal(record().backoffUntil, undefined, 'restarted: no longer backing off');
  t.equal(supervisionNote({ ...record(), lastExit: { at: '2026-01-01T10:11:12.000Z' } }, true), 'died at 10:11:12', 'a process not ours: only when it died');
  sup.killChildren();
});

/** A lab whose ztunnel is a live process of ours (`sh -c`), for rollouts. */
function liveLab(script: string): number {
  const child = spawn('sh', ['-c', script], { stdio: 'ignore' });
  started.push(child.pid!);
  freshLab(child.pid!);
  return child.pid!;
}

t.test('plain restart on request: old stopped (SIGTERM), new recorded, not counted as a crash', async (t) => {
  const old = liveLab('exec sleep 60');
  const { sup, lines } = supervisor({ now: () => Date.now() });
  const r = await sup.rollout({ id: spec.id, kind: 'plain', drainMs: 1000 });
  t.match(r, { ok: true, kind: 'plain', oldPid: old, oldEnded: 'SIGTERM' });
  t.notOk(isAlive(old), 'the old one is gone');
  t.equal(record().pid, r.newPid, 'the state names the new PID');
  t.equal(record().restarts, undefined, 'not a crash restart');
  t.match(record().rollout, { kind: 'plain', previousPid: old });
  await sup.tick();
  t.equal(record().pid, r.newPid, 'the next tick leaves it alone');
  t.ok(lines().some((l) => l.msg === 'restart (plain) done'), 'logged');
  sup.killChildren();
});

t.test('graceful restart on request: new one first, old one drained (SIGUSR2) and kept on record meanwhile', async (t) => {
  // Exits on SIGUSR2 after 300 ms, as a ztunnel finishing its last connection would.
  const old = liveLab('trap "sleep 0.3; exit 0" USR2; while :; do sleep 0.05; done');
  const envs: Array<Record<string, string> | undefined> = [];
  const { sup } = supervisor({ now: () => Date.now(), start: (lab, s, onExit, env) => { envs.push(env); return startSleep(lab, s, onExit); } });
  let seenDraining: SupervisedRecord | undefined;
  const watch = setInterval(() => { seenDraining ??= readState(LAB)!.processes.find((p) => p.id === drainingId(spec.id)) as SupervisedRecord; }, 5);
  const r = await sup.rollout({ id: spec.id, kind: 'graceful', drainMs: 5000 });
  clearInterval(watch);
  t.match(r, { ok: true, kind: 'graceful', oldPid: old, oldEnded: 'exited' });
  t.ok(r.drainedMs! >= 250 && r.drainedMs! < 5000, `drained in ${r.drainedMs} ms`);
  t.match(seenDraining, { pid: old, draining: { since: String, until: String } }, 'the old one stayed on record while it drained (lab down finds it)');
  t.equal(record().pid, r.newPid, 'the state names the new PID');
  t.notOk(readState(LAB)!.processes.some((p) => p.id === drainingId(spec.id)), 'the draining record is gone once it exited');
  t.match(record().rollout, { kind: 'graceful', previousPid: old });
  t.same(envs, [{ [SUCCESSOR_ENV]: '1' }], 'the new one was told it is a successor (it does not listen before it can serve)');
  sup.killChildren();
});

t.test('graceful restart: an old one that does not finish in the drain time gets SIGTERM', async (t) => {
  const old = liveLab('trap "" USR2; while :; do sleep 0.05; done');
  const { sup } = supervisor({ now: () => Date.now() });
  const r = await sup.rollout({ id: spec.id, kind: 'graceful', drainMs: 300 });
  t.match(r, { ok: true, oldEnded: 'SIGTERM' });
  t.notOk(isAlive(old), 'gone');
  t.notOk(readState(LAB)!.processes.some((p) => p.id === drainingId(spec.id)), 'no draining record left');
  sup.killChildren();
});

t.test('restart requests: refused for an unknown or dead process; handed over through files', async (t) => {
  freshLab(deadPid());
  const { sup } = supervisor({ now: () => Date.now() });
  t.match(await sup.rollout({ id: 'ztunnel/node-z', kind: 'plain', drainMs: 1000 }), { ok: false, error: /not a process this supervisor looks after/ });
  t.match(await sup.rollout({ id: spec.id, kind: 'graceful', drainMs: 1000 }), { ok: false, error: /is not running/ });
  const key = submitRestart(LAB, { id: 'ztunnel/node-z', kind: 'plain', drainMs: 1000 });
  sup.handleRequests();
  const res = await awaitRestart(LAB, key, 5000, () => true);
  t.match(res, { ok: false, id: 'ztunnel/node-z', error: /not a process/ }, 'the answer comes back to the CLI');
  t.same(takeRequests(LAB), [], 'each request is handled once');
});

t.test('--drain-timeout values', async (t) => {
  t.same(['10s', '500ms', '2m', '1.5', 30, '100ms', '5m'].map(parseDuration), [10_000, 500, 120_000, 1500, 30_000, 100, 300_000]);
  t.same(['', 'soon', '10h', '-1s', '50ms', '6m', '1e3'].map(parseDuration), Array(7).fill(undefined));
});
