// `lab up` killed with SIGKILL at any point leaves nothing that `lab down` cannot remove,
// even when the state directory is gone too (`lab down --all` finds owner marks).
import t from 'tap';
import { spawn } from 'node:child_process';
import { rmSync, existsSync } from 'node:fs';
import { lab, leftovers, rootSnapshot, CLI, REPO } from './helpers.js';

const NAME = 'e2e-kill';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.teardown(() => { lab(['down', NAME]); });

/** Starts `lab up` and resolves once it has recorded its state (it is about to create things). */
async function startUp() {
  const child = spawn(process.execPath, [CLI, 'up', 'topologies/demo.yaml', NAME, '--json'], { cwd: REPO, stdio: 'ignore' });
  const t0 = Date.now();
  while (!existsSync(`/run/ambient-lab/${NAME}/state.json`) && Date.now() - t0 < 10_000) await sleep(2);
  return child;
}

// Delays after the state is written: namespaces, links, rules, files, process start, readiness.
for (const delay of [0, 15, 40, 80, 150, 300, 600]) {
  t.test(`SIGKILL ${delay} ms into the build`, async (t) => {
    const before = rootSnapshot();
    const child = await startUp();
    await sleep(delay);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await sleep(300); // commands the killed CLI had already spawned finish on their own
    const r = lab(['down', NAME]);
    t.equal(r.code, 0, `lab down exits 0\n${r.stderr}`);
    t.same(leftovers(NAME), [], 'nothing left');
    t.same(rootSnapshot(), before, 'root namespace unchanged');
  });
}

t.test('SIGKILL, then the state directory is lost: lab down --all still cleans up', async (t) => {
  const child = await startUp();
  await sleep(150);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  await sleep(300);
  rmSync(`/run/ambient-lab/${NAME}`, { recursive: true, force: true });
  const r = lab(['down', '--all']);
  t.equal(r.code, 0, `lab down --all exits 0\n${r.stderr}`);
  t.same(leftovers(NAME), [], 'nothing left');
});
