// `lab ztunnel restart NODE [--graceful]` under real traffic: a loop of new connections from
// sleep (node-a) to httpbin (node-b) through both ztunnels, and one long transfer read slowly,
// both running across the restart. Graceful: not one request fails, the long transfer
// completes with every byte (its SHA-256 is that of the same URL read without a restart),
// the old ztunnel drains it and then exits on its own, the state and `lab status` name the
// new PID and the old one is gone. Plain: the long transfer breaks. Bad input, or no supervisor: exit 2, nothing restarted.
import t, { type Test as Tap } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lab, leftovers, upJson, waitFor, REPO } from './helpers.js';
import { isAlive } from '../../src/host/processes.js';
import { readState } from '../../src/state/store.js';

const NAME = 'dr-restart';
const LOOP = `${REPO}/test/fixtures/traffic-loop.mjs`;
// 60 MB read one chunk per 20 ms: some 15-20 s, so it is open when the restart happens and
// still has seconds to go when the old ztunnel starts draining (the drain timeout is 40 s).
const LONG_URL = 'http://10.96.0.11:8000/bytes/60000000';
const LOOP_URL = 'http://10.96.0.11:8000/ip';

t.teardown(() => { lab(['down', NAME]); });

interface LoopResult { requests: number; ok: number; failed: number; retries: number; failures: Array<{ error: string }>; maxGapMs: number; maxMs: number }
interface SlowResult { ok: boolean; bytes: number; expected: number; sha256?: string; ms: number; endAt: number; error?: string }

/** Runs the fixture in sleep's netns (lab exec, so with its resolv.conf); resolves with its JSON line. */
function inSleep(args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [`${REPO}/dist/cli/main.js`, 'exec', '--lab', NAME, 'sleep', '--', 'node', LOOP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += String(d); });
    p.stderr.on('data', (d) => { err += String(d); });
    p.once('exit', () => { try { resolve(JSON.parse(out)); } catch { reject(new Error(`traffic-loop printed ${JSON.stringify(out)}; stderr ${err}`)); } });
  });
}

/** A loop and a long transfer across one restart; returns what each saw and the restart's own result. */
async function acrossRestart(t: Tap, restartArgs: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'fl-restart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stop = join(dir, 'stop');
  const progress = join(dir, 'progress');
  const slowProgress = join(dir, 'slow-progress');
  const num = (f: string): number => (existsSync(f) ? Number(readFileSync(f, 'utf8')) : 0);
  const count = (): number => num(progress);
  const loop = inSleep(['loop', '--url', LOOP_URL, '--stop-file', stop, '--progress', progress, '--connect-ms', '1000', '--timeout-ms', '3000']) as Promise<LoopResult>;
  const slow = inSleep(['slow', '--url', LONG_URL, '--tick-ms', '20', '--progress', slowProgress]) as Promise<SlowResult>;
  await waitFor(() => count() >= 100, 30_000, 'the loop to make 100 requests before the restart');
  await waitFor(() => num(slowProgress) >= 1_000_000, 30_000, 'the long transfer to be under way');
  const before = count();
  const restartAt = Date.now();
  const r = lab(['ztunnel', 'restart', ...restartArgs, '--lab', NAME, '--json'], { timeoutMs: 240_000 });
  // The command answers once the old ztunnel has exited (graceful) or the new one is ready.
  const restartEnd = Date.now();
  const atRestartEnd = count();
  // At least as many again after the restart returned, so the loop spans it on both sides.
  await waitFor(() => count() >= atRestartEnd + 150, 30_000, '150 more requests after the restart');
  writeFileSync(stop, '');
  const [l, s] = await Promise.all([loop, slow]);
  t.comment(`${restartArgs.join(' ')}: ${l.requests} requests (${before} before the restart), ${l.failed} failed ${JSON.stringify(l.failures.map((f) => f.error))}, ` +
    `${l.retries} connects retried, longest gap ${l.maxGapMs} ms; long transfer: ${s.ok ? 'complete' : `broken (${s.error})`} ${s.bytes}/${s.expected} B in ${s.ms} ms`);
  t.ok(s.endAt > restartAt, `the long transfer was under way when the restart began (it ended ${s.endAt - restartAt} ms later)`);
  return { r, loop: l, slow: s, restartEnd, restart: r.code === 0 ? JSON.parse(r.stdout) : undefined };
}

/** The long transfer's SHA-256 read at full speed with no restart: httpbin's /bytes/ body is the same every time for one httpbin process. */
let referenceSha = '';

t.test('up', async (t) => {
  t.same(leftovers(NAME), [], 'no earlier lab of this name');
  const up = upJson('topologies/demo.yaml', NAME);
  t.ok(up.ok, `lab up\n${up.stderr}`);
  const ref = await inSleep(['slow', '--url', LONG_URL, '--tick-ms', '0']) as SlowResult;
  t.ok(ref.ok && ref.bytes === ref.expected, `the long transfer's reference read is complete (${ref.bytes}/${ref.expected} B)`);
  referenceSha = ref.sha256 ?? '';
});

t.test('bad input: exit 2, nothing restarted', async (t) => {
  const pid = readState(NAME)!.processes.find((p) => p.id === 'ztunnel/node-a')!.pid;
  for (const [args, msg] of [
    [['node-z'], /no node "node-z"/],
    [['node-a', '--graceful', '--drain-timeout', 'soon'], /--drain-timeout "soon" is not a duration/],
    [['node-a', '--graceful', '--drain-timeout', '10h'], /not a duration from 100ms to 5m/],
    [['node-a', '--drain-timeout', '5s'], /--drain-timeout goes with --graceful/],
  ] as Array<[string[], RegExp]>) {
    const r = lab(['ztunnel', 'restart', ...args, '--lab', NAME]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, msg, `${args.join(' ')}: says what was wrong`);
  }
  t.equal(readState(NAME)!.processes.find((p) => p.id === 'ztunnel/node-a')!.pid, pid, 'the ztunnel was not touched');
});

for (const node of ['node-a', 'node-b']) {
  t.test(`graceful restart of ${node}'s ztunnel: no request fails, the long transfer completes`, async (t) => {
    const old = readState(NAME)!.processes.find((p) => p.id === `ztunnel/${node}`)!;
    // node-b is the destination's ztunnel: its drain is the one a GOAWAY'd HBONE session goes
    // through (the client ztunnel on node-a keeps reading the stream it already has).
    const { r, loop, slow, restart, restartEnd } = await acrossRestart(t, [node, '--graceful', '--drain-timeout', '3m']);
    t.equal(r.code, 0, `restart exits 0\n${r.stderr}`);
    t.ok(loop.requests >= 300, `a loop of at least 300 requests spanned the restart (${loop.requests})`);
    t.equal(loop.failed, 0, 'not one request failed');
    t.ok(slow.ok, `the long transfer under way at the restart completed (${slow.bytes}/${slow.expected} bytes${slow.error ? `, ${slow.error}` : ''})`);
    t.equal(slow.bytes, 60_000_000, 'with every byte');
    t.equal(slow.sha256, referenceSha, 'and the bytes httpbin sent (SHA-256 as read without a restart)');
    t.match(restart, { ok: true, kind: 'graceful', oldPid: old.pid }, 'the graceful restart completed');
    t.match(restart, { oldEnded: 'exited' }, `the old ztunnel drained and exited on its own (${restart?.oldEnded}, after ${restart?.drainedMs} ms)`);
    t.ok(restartEnd - slow.endAt < 5000, `it exited once the transfer had ended (${restartEnd - slow.endAt} ms after its last byte)`);
    t.ok(restart.openAtDrain.outbound + restart.openAtDrain.inbound >= 1, `it was carrying the long transfer when it stopped accepting (${JSON.stringify(restart.openAtDrain)})`);
    t.notOk(isAlive(old.pid), 'the old ztunnel is gone');
    const rec = readState(NAME)!.processes.find((p) => p.id === `ztunnel/${node}`)!;
    t.equal(rec.pid, restart.newPid, 'state.json records the new PID');
    t.ok(isAlive(rec.pid), 'and it runs');
    t.notOk(readState(NAME)!.processes.some((p) => p.id.endsWith('#draining')), 'no draining record left');
    const status = JSON.parse(lab(['status', '--lab', NAME, '--json']).stdout);
    t.match(status.processes.find((p: { id: string }) => p.id === `ztunnel/${node}`), { pid: restart.newPid, alive: true, ready: true, rollout: { kind: 'graceful', previousPid: old.pid } }, 'lab status shows the new PID, ready');
    t.equal(status.healthy, true, 'the lab is healthy');
    t.match(lab(['status', '--lab', NAME]).stdout, new RegExp(`ztunnel/${node} +${restart.newPid} +ready .*graceful restart at`), 'the table says so too');
  });
}

t.test('plain restart of node-a\'s ztunnel: the long transfer breaks', async (t) => {
  const old = readState(NAME)!.processes.find((p) => p.id === 'ztunnel/node-a')!;
  const { r, slow, restart } = await acrossRestart(t, ['node-a']);
  t.equal(r.code, 0, `restart exits 0\n${r.stderr}`);
  t.match(restart, { ok: true, kind: 'plain', oldPid: old.pid }, 'restarted');
  t.notOk(slow.ok, 'the transfer the old ztunnel carried was cut');
  t.ok(slow.bytes < slow.expected, `it stopped short (${slow.bytes}/${slow.expected} bytes)`);
  t.equal(readState(NAME)!.processes.find((p) => p.id === 'ztunnel/node-a')!.pid, restart.newPid, 'state.json records the new PID');
  // The supervisor counted it as a rollout, not a crash.
  const rec = readState(NAME)!.processes.find((p) => p.id === 'ztunnel/node-a')!;
  t.equal(rec.restarts ?? 0, 0, 'not counted as a crash restart');
});

t.test('without a running supervisor: exit 2 naming it, nothing restarted', async (t) => {
  const sup = readState(NAME)!.processes.find((p) => p.role === 'supervisor')!;
  const zt = readState(NAME)!.processes.find((p) => p.id === 'ztunnel/node-a')!;
  process.kill(sup.pid, 'SIGKILL');
  await waitFor(() => !isAlive(sup.pid), 5000, 'the supervisor to die');
  const r = lab(['ztunnel', 'restart', 'node-a', '--graceful', '--lab', NAME]);
  t.equal(r.code, 2, 'exit 2');
  t.match(r.stderr, /has no running supervisor/, 'says why');
  t.equal(readState(NAME)!.processes.find((p) => p.id === 'ztunnel/node-a')!.pid, zt.pid, 'the ztunnel was not touched');
});

t.test('down leaves nothing', async (t) => {
  const r = lab(['down', NAME]);
  t.equal(r.code, 0, `lab down\n${r.stderr}`);
  t.same(leftovers(NAME), [], 'no process, netns or state left');
});
