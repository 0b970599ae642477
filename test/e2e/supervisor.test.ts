// The real supervisor (dist/lab/supervisor.js) in a real namespace, over a small hand-made lab:
// it restarts a dead process and records it, backs off a crash loop and records how it exited,
// and when `lab down` stops it no replacement it started survives; `lab down` then leaves nothing.
// Then a real lab with every kind of proxy (test/fixtures/topologies/faults.yaml) under traffic:
// each kind is SIGKILLed several times; the median time from the kill to the first new request
// served is reported and must be within 3 s (the goal, 1 s, holds on a machine that is not
// overloaded: see the README; a ztunnel's ready file says where its start-up time went); a
// crash loop (its port taken) backs off and shows in `lab status`; `lab down` racing a restart
// leaves nothing.
import t, { type Test as Tap } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { lab, leftovers, sh, upJson, waitFor, REPO } from './helpers.js';
import { startProcess, isAlive } from '../../src/host/processes.js';
import { readState, writeState, labStateDir, type ProcessRecord } from '../../src/state/store.js';
import type { ProcessSpec } from '../../src/plan/lab-build.js';
import { BACKOFF, type SupervisedRecord } from '../../src/lab/supervisor.js';

const NAME = 'dr-sup-fake';
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
  ({ id, role, netns: NETNS, argv: ['sh', '-c', script], log: `${dir}/logs/${role}.log`, restart: 'always' });
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
  // The state is written just before the 'restarted' line is logged.
  const restarted = await waitFor(() => { const r = supervisorLog().filter((l) => l.id === 'geneve/node-a' && l.msg === 'restarted'); return r.length >= 4 && r; }, 5000, 'four restarts logged');
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

// ---- a real lab, every kind of proxy killed under traffic ------------------------------------

const REAL = 'dr-sup';
const KILLS = 5;
const LOOP = `${REPO}/test/fixtures/traffic-loop.mjs`;

interface LoopOut { requests: number; failed: number; oks: Array<[number, number]> }

/** traffic-loop.mjs in sleep's netns until `stop` exists; `progress` counts finished requests. */
function loopInSleep(args: string[]): { done: Promise<LoopOut>; child: ChildProcess } {
  const child = spawn(process.execPath, [`${REPO}/dist/cli/main.js`, 'exec', '--lab', REAL, 'sleep', '--', 'node', LOOP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += String(d); });
  const done = new Promise<LoopOut>((resolve, reject) => child.once('exit', () => {
    try { resolve(JSON.parse(out)); } catch { reject(new Error(`traffic-loop printed ${JSON.stringify(out)}`)); }
  }));
  return { done, child };
}

const realRec = (id: string): SupervisedRecord => readState(REAL)!.processes.find((p) => p.id === id)! as SupervisedRecord;
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const readyFileOf = (id: string): string | undefined =>
  (JSON.parse(readFileSync(`${labStateDir(REAL)}/build.json`, 'utf8')).processes as ProcessSpec[]).find((p) => p.id === id)?.readyFile;

t.test('real lab: every kind of proxy, killed, serves a new request again within 3 s (goal 1 s), times reported', async (t) => {
  t.teardown(() => { lab(['down', REAL]); });
  t.same(leftovers(REAL), [], 'no earlier lab of this name');
  const up = upJson('test/fixtures/topologies/faults.yaml', REAL);
  t.ok(up.ok, `lab up\n${up.stderr}`);
  if (!up.ok) return;
  const vip = (name: string): string => up.summary.services.find((s: { name: string }) => s.name === name).vip;
  const http = (svc: string, port: number): string[] => ['loop', '--url', `http://${vip(svc)}:${port}/ip`];
  const procs = readState(REAL)!.processes;
  // Discovered by role: the lab's one userspace Geneve daemon (none with kernel Geneve).
  const targets: Array<{ id: string; what: string; traffic: string }> = [
    { id: 'ztunnel/node-a', what: 'ztunnel (client node)', traffic: 'httpbin' },
    { id: 'ztunnel/node-b', what: 'ztunnel (server node)', traffic: 'httpbin' },
    ...procs.filter((p) => p.role === 'geneve').map((p) => ({ id: p.id, what: 'userspace Geneve', traffic: 'httpbin' })),
    ...procs.filter((p) => p.role === 'waypoint').map((p) => ({ id: p.id, what: 'waypoint', traffic: 'reviews' })),
    ...procs.filter((p) => p.role === 'sidecar').map((p) => ({ id: p.id, what: 'sidecar proxy', traffic: 'httpbin-sc' })),
    ...procs.filter((p) => p.role === 'dns').map((p) => ({ id: p.id, what: 'cluster DNS', traffic: 'dns' })),
  ];
  t.ok(targets.length >= 6, `kinds found: ${targets.map((x) => x.id).join(', ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'dr-sup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  // One loop of new requests per path, running the whole time.
  const paths: Record<string, string[]> = {
    httpbin: http('default/httpbin', 8000), reviews: http('default/reviews', 9080), 'httpbin-sc': http('default/httpbin-sc', 8000),
    dns: ['dns', '--server', vip('kube-system/kube-dns'), '--name', 'httpbin.default.svc.cluster.local'],
  };
  const stop = join(dir, 'stop');
  const loops = Object.fromEntries(Object.entries(paths).map(([k, args]) => {
    const progress = join(dir, `${k}.progress`);
    // Short timeouts: an attempt stuck on a dropped SYN (anywhere on the path) is given up and
    // tried afresh, so the first success after a kill comes soon after the path works again.
    const l = loopInSleep([...args, '--stop-file', stop, '--progress', progress, ...(k === 'dns' ? ['--timeout-ms', '100'] : ['--connect-ms', '100', '--timeout-ms', '500'])]);
    return [k, { ...l, count: (): number => (existsSync(progress) ? Number(readFileSync(progress, 'utf8')) : 0) }];
  }));
  t.teardown(() => writeFileSync(stop, ''));
  for (const [k, l] of Object.entries(loops)) await waitFor(() => l.count() >= 20, 30_000, `traffic on ${k}`);

  // Round-robin: each process is killed once per round, so two kills of the same process are
  // more than BACKOFF.stableMs apart and none of them counts as a crash loop (no back-off).
  const kills = new Map<string, number[]>(targets.map((x) => [x.id, []]));
  /** Kill -> the new process's ready file (its listeners are up). */
  const readyAfter = new Map<string, number[]>(targets.map((x) => [x.id, []]));
  /** A ztunnel's own account of its start-up (ztunnel/startup.ts), per restart. */
  const startups = new Map<string, Array<Record<string, number>>>(targets.map((x) => [x.id, []]));
  for (let round = 0; round < KILLS; round++) {
    for (const target of targets) {
      const before = realRec(target.id);
      await waitFor(() => Date.now() > Date.parse(before.startedAt) + BACKOFF.stableMs + 200, BACKOFF.stableMs + 1000, `${target.id} up for ${BACKOFF.stableMs} ms`, 100);
      const loop = loops[target.traffic];
      kills.get(target.id)!.push(Date.now());
      process.kill(before.pid, 'SIGKILL');
      const after = await waitFor(() => { const r = realRec(target.id); return r.pid !== before.pid && r; }, 10_000, `${target.id} restarted`);
      t.equal(after.restarts, (before.restarts ?? 0) + 1, `${target.id}: restart ${round + 1} counted`);
      const ready = readyFileOf(target.id);
      if (ready) {
        await waitFor(() => { try { return JSON.parse(readFileSync(ready, 'utf8')).pid === after.pid; } catch { return false; } }, 30_000, `${target.id} ready`);
        readyAfter.get(target.id)!.push(Math.round(statSync(ready).mtimeMs - kills.get(target.id)!.at(-1)!));
        const startup = JSON.parse(readFileSync(ready, 'utf8')).startup as Record<string, number> | undefined;
        if (startup) startups.get(target.id)!.push(startup);
      }
      const n = loop.count();
      await waitFor(() => loop.count() >= n + 5, 30_000, `requests through the new ${target.id}`);
    }
  }
  writeFileSync(stop, '');
  const load = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  const busy = load > 2 * cpus().length;
  const outs = Object.fromEntries(await Promise.all(Object.entries(loops).map(async ([k, l]) => [k, await l.done] as const)));
  const summary: string[] = [];
  for (const target of targets) {
    // Kill -> the end of the first request that started after the kill and succeeded.
    const times = kills.get(target.id)!.map((k) => { const ok = outs[target.traffic].oks.find(([start]) => start > k); return ok ? ok[1] - k : Infinity; });
    const m = median(times);
    const ready = readyAfter.get(target.id)!;
    const st = startups.get(target.id)!;
    const part = (k: string): string => `${k} ${median(st.map((x) => x[k]))}`;
    summary.push(`${target.what} ${target.id}: kill -> serving ${times.join(', ')} ms, median ${m} ms` +
      (ready.length ? `; kill -> ready ${ready.join(', ')} ms, median ${median(ready)} ms` : '') +
      (st.length ? `; its start-up (medians, ms): ${['nodeMs', 'listeningMs', 'loadedMs', 'readyMs', 'cpuMs'].map(part).join(', ')}` : ''));
    // The 1 s goal is for a machine that is not overloaded (the README has the figures): a new
    // Node process needs some 0.1-0.2 s of CPU, and on a shared machine it waits for a CPU most
    // of its start. 3 s holds on a loaded CI machine; above twice as many runnable processes
    // as cores, only a sanity bound.
    const budget = busy ? 5000 : 3000;
    t.ok(m <= budget, `${target.id}: median kill -> first successful new request ${m} ms (each: ${times.join(', ')} ms), within ${budget} ms${busy ? ` (load ${load})` : ''}`);
  }
  t.comment(`load average ${sh('cut -d" " -f1-3 /proc/loadavg').trim()} on ${cpus().length} cores`);
  for (const l of summary) t.comment(l);

  // A crash loop: cluster DNS's port taken by another process; each new DNS server exits 1 at once.
  const dns = procs.find((p) => p.role === 'dns')!;
  const blocker = spawn('ip', ['netns', 'exec', dns.netns, 'python3', '-c',
    'import socket,time\nwhile True:\n  try:\n    s=socket.socket(); s.bind(("0.0.0.0",53)); s.listen(); break\n  except OSError: time.sleep(0.001)\nprint("bound", flush=True)\ntime.sleep(600)'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => { blocker.kill('SIGKILL'); });
  const bound = new Promise((r) => blocker.stdout!.once('data', r));
  // Up for a while first: the loop's deaths count from here.
  process.kill(realRec(dns.id).pid, 'SIGKILL');
  await bound;
  const looping = await waitFor(() => { const r = realRec(dns.id); return (r.restarts ?? 0) >= 3 + KILLS && r.backoffUntil && r; }, 20_000, 'the DNS server to crash-loop');
  t.match(looping.lastExit, { code: 1, signal: null }, 'state: last exit code 1');
  const st = await waitFor(() => {
    const s = JSON.parse(lab(['status', '--lab', REAL, '--json']).stdout);
    const p = s.processes.find((x: { id: string }) => x.id === dns.id);
    return !p.alive && p.backoffUntil && { s, p };
  }, 10_000, 'lab status to catch it backing off');
  t.match(st.p, { alive: false, lastExit: { code: 1 }, backoffUntil: String }, 'lab status --json: dead, last exit 1, backing off until');
  t.ok(Date.parse(st.p.backoffUntil) > Date.now() - 30_000, `backing off until ${st.p.backoffUntil}`);
  t.equal(st.s.healthy, false, 'the lab is not healthy meanwhile');
  const table = await waitFor(() => { const o = lab(['status', '--lab', REAL]).stdout; return /BACKOFF .*exit 1 at .*backing off until/.test(o) && o; }, 10_000, 'the table to show the back-off');
  t.match(table, new RegExp(`${dns.id.replace(/\//g, '\\/')} +\\d+ +BACKOFF +\\d+ +exit 1 at \\d\\d:\\d\\d:\\d\\d; backing off until \\d\\d:\\d\\d:\\d\\d`), 'lab status: BACKOFF, restarts, last exit, backing off until');
  const restartsInLoop = realRec(dns.id).restarts!;
  t.ok(restartsInLoop < KILLS + 8, `not restarted every tick (${restartsInLoop - KILLS} restarts in the loop)`);
  // The port is free again: the next try (after its back-off, at most 30 s) serves.
  blocker.kill('SIGKILL');
  await waitFor(() => { const r = realRec(dns.id); return isAlive(r.pid) && r.restarts! > restartsInLoop; }, 40_000, 'the DNS server back after the back-off');
  const q = lab(['exec', '--lab', REAL, 'sleep', '--', 'getent', 'hosts', 'httpbin.default.svc.cluster.local']);
  await waitFor(() => lab(['exec', '--lab', REAL, 'sleep', '--', 'getent', 'hosts', 'httpbin.default.svc.cluster.local']).code === 0, 10_000, `DNS answering again (${q.stdout}${q.stderr})`);

  // lab down right after a kill: the supervisor may be starting a replacement as down runs.
  process.kill(realRec('ztunnel/node-a').pid, 'SIGKILL');
  const r = lab(['down', REAL]);
  t.equal(r.code, 0, `lab down exits 0\n${r.stderr}`);
  t.same(leftovers(REAL), [], 'nothing left behind: no process, netns or state');
});
