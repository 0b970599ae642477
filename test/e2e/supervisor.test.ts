// The real supervisor (dist/lab/supervisor.js) in a real namespace, over a small hand-made lab:
// it restarts a dead process and records it, backs off a crash loop and records how it exited,
// and when `lab down` stops it no replacement it started survives; `lab down` then leaves nothing.
import t, { type Test as Tap } from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { lab, leftovers, sh, waitFor, REPO } from './helpers.js';
import { startProcess, isAlive } from '../../src/host/processes.js';
import { readState, writeState, labStateDir, type ProcessRecord } from '../../src/state/store.js';
import type { ProcessSpec } from '../../src/plan/lab-build.js';
import type { SupervisedRecord } from '../../src/lab/supervisor.js';

const NAME = 'tt-sup';
const NETNS = `al-${NAME}-underlay`;
const dir = labStateDir(NAME);

t.teardown(() => { lab(['down', NAME]); });

/** A lab of just a netns, the given supervised processes (started as `lab up` would) and the supervisor. */
function fakeLab(t: Tap, specs: ProcessSpec[]): { supervisor: ProcessRecord } {
  t.teardown(() => { lab(['down', NAME]); });
  t.same(leftovers(NAME), [], 'no earlier lab of this name');
  mkdirSync(`${dir}/logs`, { recursive: true });
  sh(`ip netns add ${NETNS}`);
  writeFileSync(`${dir}/build.json`, JSON.stringify({ netns: [], files: [], processes: specs }));
  const processes = specs.map((s) => startProcess(NAME, s));
  writeState({ lab: NAME, file: 'fixture', phase: 'up', createdAt: new Date().toISOString(), netns: [NETNS], files: [], processes });
  const supervisor = startProcess(NAME, {
    id: 'supervisor', role: 'supervisor', netns: NETNS, log: `${dir}/logs/supervisor.log.stdout`,
    argv: [process.execPath, `${REPO}/dist/lab/supervisor.js`, '--lab', NAME],
  });
  writeState({ ...readState(NAME)!, processes: [...processes, supervisor] });
  return { supervisor };
}

const spec = (id: string, role: 'ztunnel' | 'geneve', script: string): ProcessSpec =>
  ({ id, role, netns: NETNS, argv: ['sh', '-c', script], log: `${dir}/logs/${role}.log` });
const rec = (id: string): SupervisedRecord => readState(NAME)!.processes.find((p) => p.id === id)! as SupervisedRecord;
const supervisorLog = () => readFileSync(`${dir}/logs/supervisor.log`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

t.test('restarts a dead process, backs off a crash loop, records restarts and the last exit; down leaves nothing', async (t) => {
  fakeLab(t, [spec('ztunnel/node-a', 'ztunnel', 'exec sleep 600'), spec('geneve/node-a', 'geneve', 'sleep 0.1; exit 3')]);
  await waitFor(() => existsLog() && supervisorLog().some((l) => l.msg === 'supervising'), 10_000, 'the supervisor to start');

  const zt = rec('ztunnel/node-a');
  process.kill(zt.pid, 'SIGKILL');
  const zt2 = await waitFor(() => { const r = rec('ztunnel/node-a'); return r.pid !== zt.pid && r; }, 5000, 'the ztunnel to be restarted');
  t.equal(zt2.restarts, 1, 'one restart recorded');
  t.ok(isAlive(zt2.pid), 'the replacement runs');
  t.equal(sh(`ip netns identify ${zt2.pid}`).trim(), NETNS, 'in the process\'s namespace');

  // The Geneve stand-in exits with 3 every 0.1 s: restarts wait 0, 0.5, 1, 2 s (not every tick).
  const gv = await waitFor(() => { const r = rec('geneve/node-a'); return (r.restarts ?? 0) >= 4 && r; }, 15_000, 'four restarts of the crash loop');
  t.match(gv.lastExit, { code: 3, signal: null }, 'last exit: code 3');
  const deaths = supervisorLog().filter((l) => l.id === 'geneve/node-a' && l.restartInMs !== undefined);
  t.same(deaths.slice(0, 4).map((l) => l.restartInMs), [0, 500, 1000, 2000], 'the wait doubles');
  const restarted = supervisorLog().filter((l) => l.id === 'geneve/node-a' && l.msg === 'restarted');
  for (let i = 1; i < 4; i++) {
    // A few ms of slack: the death's log line is timed just after the decision the wait counts from.
    const waited = restarted[i].time - deaths[i].time;
    t.ok(waited >= deaths[i].restartInMs - 5, `restart ${i + 1} came ${waited} ms after the death, after its ${deaths[i].restartInMs} ms wait`);
  }

  const r = lab(['down', NAME]);
  t.equal(r.code, 0, `lab down exits 0\n${r.stderr}`);
  t.same(leftovers(NAME), [], 'nothing left: no process, netns or state');
});

t.test('stopped by lab down (SIGTERM), the supervisor kills the replacement it started', async (t) => {
  const { supervisor } = fakeLab(t, [spec('ztunnel/node-a', 'ztunnel', 'exec sleep 600')]);
  await waitFor(() => existsLog() && supervisorLog().some((l) => l.msg === 'supervising'), 10_000, 'the supervisor to start');
  const zt = rec('ztunnel/node-a');
  process.kill(zt.pid, 'SIGKILL');
  const fresh = await waitFor(() => { const r = rec('ztunnel/node-a'); return r.pid !== zt.pid && r.pid; }, 5000, 'the restart');
  // What `lab down` does to the supervisor; `down` may have read the state before the new PID was in it.
  process.kill(supervisor.pid, 'SIGTERM');
  await waitFor(() => !isAlive(supervisor.pid), 5000, 'the supervisor to exit');
  await waitFor(() => !isAlive(fresh), 2000, 'the replacement to be killed');
  t.ok(supervisorLog().some((l) => l.msg === 'stopped: killed the replacements started here' && l.pids.includes(fresh)), 'the supervisor says it killed it');
  const r = lab(['down', NAME]);
  t.equal(r.code, 0, `lab down exits 0\n${r.stderr}`);
  t.same(leftovers(NAME), [], 'nothing left');
});

function existsLog(): boolean {
  try { readFileSync(`${dir}/logs/supervisor.log`); return true; } catch { return false; }
}
