// A pod's process may run as another uid/gid (a sidecar proxy runs as 1337, which istio-init's
// rules exempt from capture): startProcess enters the netns as root, then drops to the user.
import t from 'tap';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, startProcesses, isAlive } from '../../src/host/processes.js';
import { withScratchNetns } from '../../src/host/probe.js';
import { waitFor } from './helpers.js';


t.test('a process spec with user runs as that uid/gid inside its netns', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'al-user-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await withScratchNetns('usertest', async (netns) => {
    const log = join(dir, 'id.log');
    const rec = startProcess('usertest', {
      id: 'pod/default/x', role: 'sidecar', netns, log, user: { uid: 1337, gid: 1337 },
      argv: ['sh', '-c', 'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"; readlink /proc/self/ns/net'],
    });
    t.ok(await waitFor(() => !isAlive(rec.pid) && existsSync(log) && readFileSync(log, 'utf8').includes('net:')), 'the process ran and exited');
    const out = readFileSync(log, 'utf8');
    t.match(out, /^uid=1337 gid=1337 groups=1337$/m, 'uid, gid and supplementary groups are 1337');
    const root = (await import('node:fs')).readlinkSync('/proc/self/ns/net');
    const seen = /net:\[\d+\]/.exec(out)?.[0];
    t.match(seen, /^net:\[\d+\]$/, 'it printed its netns');
    t.not(seen, root, 'it ran in the scratch netns, not the root one');

    const asRoot = startProcess('usertest', { id: 'pod/default/y', role: 'app', netns, log: join(dir, 'root.log'), argv: ['id', '-u'] });
    t.ok(await waitFor(() => !isAlive(asRoot.pid) && existsSync(join(dir, 'root.log')) && readFileSync(join(dir, 'root.log'), 'utf8').trim() !== ''), 'the root process ran');
    t.equal(readFileSync(join(dir, 'root.log'), 'utf8').trim(), '0', 'without user: root');
  });
});

// `lab up` starts its processes through the launcher (startProcesses): the same netns, user
// and owner tag, and the PID it records is the process itself.
t.test('through the launcher: the same user, netns and owner tag; the recorded PID is the process', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'al-user-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await withScratchNetns('usertest', async (netns) => {
    const script = 'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G) pid=$$ owner=$AMBIENT_LAB_OWNER"; readlink /proc/self/ns/net; exec sleep 30';
    const [proxy, app] = await startProcesses('usertest', [
      { id: 'pod/default/x', role: 'sidecar', netns, log: join(dir, 'x.log'), user: { uid: 1337, gid: 1337 }, argv: ['sh', '-c', script] },
      { id: 'pod/default/y', role: 'app', netns, log: join(dir, 'y.log'), argv: ['sh', '-c', script] },
    ]);
    t.teardown(() => { for (const r of [proxy, app]) try { process.kill(r.pid, 'SIGKILL'); } catch { /* gone */ } });
    const fs = await import('node:fs');
    const root = fs.readlinkSync('/proc/self/ns/net');
    for (const [rec, id] of [[proxy, '1337'], [app, '0']] as const) {
      const log = rec.log;
      t.ok(await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('net:')), `${rec.id} ran`);
      const out = readFileSync(log, 'utf8');
      t.match(out, new RegExp(`^uid=${id} gid=${id} groups=${id} pid=${rec.pid} owner=usertest:${rec.id}$`, 'm'), `${rec.id}: uid/gid ${id}, the recorded PID, its owner tag`);
      t.not(/net:\[\d+\]/.exec(out)?.[0], root, `${rec.id} runs in the scratch netns`);
    }
  });
});
