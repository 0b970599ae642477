// Starting lab processes through one launcher, and waiting for their ready files by
// notification. `ip` is replaced by a stand-in on PATH that skips `netns exec NS` (what the
// real one does besides entering the namespace is tested end to end), so what is checked
// here is the launcher's promise: the PID it reports is the process itself (what state.json
// records and the supervisor restarts), in a session of its own, tagged, logging to its file.
import t from 'tap';
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, readFileSync, renameSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcesses, launchOrder, launcherScript, waitReady, isAlive, processOwner, OWNER_ENV } from '../../src/host/processes.js';
import type { ProcessSpec } from '../../src/plan/lab-build.js';

const dir = mkdtempSync(join(tmpdir(), 'lab-launch-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const bin = join(dir, 'bin');
mkdirSync(bin);
// `ip netns exec NS CMD...` -> CMD... (exec, like the real one: same PID).
writeFileSync(join(bin, 'ip'), '#!/bin/sh\n[ "$1 $2" = "netns exec" ] || exit 99\nshift 3\nexec "$@"\n');
chmodSync(join(bin, 'ip'), 0o755);
process.env.PATH = `${bin}:${process.env.PATH}`;

const spec = (id: string, role: ProcessSpec['role'], argv: string[]): ProcessSpec => ({
  id, role, netns: `al-t-pod-${id.replace(/\W/g, '.')}`, argv, log: join(dir, 'logs', `${id.replace(/\W/g, '.')}.log`),
});

const stat = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');

t.test('what the others depend on (startFirst) starts first, otherwise build order', (t) => {
  const first = (x: ProcessSpec): ProcessSpec => ({ ...x, startFirst: true });
  const specs = [spec('pod/a', 'app', ['x']), first(spec('geneve/n', 'geneve', ['x'])), spec('pod/b', 'app', ['x']), first(spec('ztunnel/n', 'ztunnel', ['x'])), first(spec('pod/dns', 'dns', ['x']))];
  t.same(launchOrder(specs).map((s) => s.id), ['geneve/n', 'ztunnel/n', 'pod/dns', 'pod/a', 'pod/b']);
  t.end();
});

t.test('the launcher script quotes every argument', (t) => {
  const s = launcherScript("it's", [spec('pod/a', 'app', ['sh', '-c', "echo 'a b' $HOME; exit"])]);
  t.match(s, `${OWNER_ENV}='it'\\''s:pod/a' setsid ip netns exec 'al-t-pod-pod.a' 'sh' '-c' 'echo '\\''a b'\\'' $HOME; exit'`);
  t.match(s, /<\/dev\/null >>'[^']+' 2>&1 & echo \$!\n$/);
  t.end();
});

t.test('startProcesses: each PID is the process itself, tagged, in its own session, logging', async (t) => {
  const specs = [
    spec('pod/one', 'app', ['sh', '-c', 'echo "hello from one $0"; exec sleep 30', "it's"]),
    spec('pod/two', 'app', ['sleep', '31']),
  ];
  const recs = await startProcesses('t', specs);
  t.teardown(() => { for (const r of recs) try { process.kill(r.pid, 'SIGKILL'); } catch { /* gone */ } });
  t.same(recs.map((r) => r.id), ['pod/one', 'pod/two']);
  // The PID is setsid's, which becomes `ip netns exec`, which execs the command: under load the
  // last exec can come a moment after startProcesses returns, so wait for it (bounded).
  const cmdline = () => readFileSync(`/proc/${recs[1].pid}/cmdline`, 'utf8');
  const execDeadline = Date.now() + 3000;
  while (cmdline() !== 'sleep\x0031\x00' && Date.now() < execDeadline) await new Promise((r) => setTimeout(r, 10));
  t.equal(cmdline(), 'sleep\x0031\x00', 'the recorded PID runs the command');
  for (const r of recs) {
    t.equal(processOwner(r.pid), `t:${r.id}`, 'owner tag in its environment');
    const [, , pgid, sid] = stat(r.pid);
    t.equal(Number(sid), r.pid, 'session leader (detached from the CLI)');
    t.equal(Number(pgid), r.pid);
  }
  const deadline = Date.now() + 5000;
  while (!existsSync(specs[0].log) || !readFileSync(specs[0].log, 'utf8').includes('hello')) {
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(readFileSync(specs[0].log, 'utf8'), "hello from one it's\n", 'output goes to its log');
  process.kill(recs[0].pid, 'SIGKILL');
  while (isAlive(recs[0].pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.notOk(isAlive(recs[0].pid), 'signalling the recorded PID stops the process');
});

t.test('startProcesses of nothing starts nothing', async (t) => {
  t.same(await startProcesses('t', []), []);
});

const item = (name: string, pid = process.pid) => ({ readyFile: join(dir, 'ready', name), pid, log: join(dir, 'logs', `${name}.log`), id: name });

t.test('waitReady returns when every file was renamed into place', async (t) => {
  const items = [item('a'), item('b'), item('c')];
  writeFileSync(join(dir, 'early'), '{}');
  mkdirSync(join(dir, 'ready'), { recursive: true });
  renameSync(join(dir, 'early'), items[0].readyFile); // before the wait: found by the first look
  const t0 = Date.now();
  setTimeout(() => { writeFileSync(join(dir, 'ready', '.b.tmp'), '{}'); renameSync(join(dir, 'ready', '.b.tmp'), items[1].readyFile); }, 50);
  setTimeout(() => { writeFileSync(join(dir, 'ready', '.c.tmp'), '{}'); renameSync(join(dir, 'ready', '.c.tmp'), items[2].readyFile); }, 120);
  // A slow check period: returning well before it proves the notification did the work.
  await waitReady(items, 10_000, 5_000);
  t.ok(Date.now() - t0 < 2000, `ready in ${Date.now() - t0} ms, by notification`);
});

t.test('waitReady fails early, with the log tail, when a process died', async (t) => {
  const dead = 2 ** 22 + 1; // above the kernel's PID_MAX_LIMIT: never a process
  writeFileSync(join(dir, 'logs', 'gone.log'), 'line 1\nboom: address in use\n');
  await t.rejects(waitReady([item('gone', dead)], 10_000, 20), /gone exited before it was ready; last log lines:\nline 1\nboom: address in use/);
});

t.test('waitReady times out naming what is not ready', async (t) => {
  await t.rejects(waitReady([item('never')], 150, 20), /timed out waiting for never to be ready/);
});
