// `lab up` killed with SIGKILL at any point leaves nothing that `lab down` cannot remove,
// even when the state directory is gone too (`lab down --all` finds owner marks).
import t from 'tap';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { lab, leftovers, rootSnapshot, CLI, REPO } from './helpers.js';

const NAME = 'e2e-kill';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.teardown(() => { lab(['down', NAME]); });

for (const delay of [40, 120, 250, 450, 800]) {
  t.test(`SIGKILL after ${delay} ms`, async (t) => {
    const before = rootSnapshot();
    const child = spawn(process.execPath, [CLI, 'up', 'topologies/demo.yaml', NAME, '--json'], { cwd: REPO, stdio: 'ignore' });
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
  const child = spawn(process.execPath, [CLI, 'up', 'topologies/demo.yaml', NAME, '--json'], { cwd: REPO, stdio: 'ignore' });
  await sleep(700);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  await sleep(300);
  rmSync(`/run/ambient-lab/${NAME}`, { recursive: true, force: true });
  const r = lab(['down', '--all']);
  t.equal(r.code, 0, `lab down --all exits 0\n${r.stderr}`);
  t.same(leftovers(NAME), [], 'nothing left');
});
