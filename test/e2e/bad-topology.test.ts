// A bad topology gets exit code 2, a message naming file, line and field, and no change to the machine.
import t from 'tap';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { lab, rootSnapshot, REPO } from './helpers.js';

const dir = 'test/golden/bad-topologies';
const netnsCount = () => (existsSync('/run/netns') ? readdirSync('/run/netns').length : 0);
const cases = readdirSync(`${REPO}/${dir}`).filter((f) => f.endsWith('.yaml')).slice(0, 4);

t.test('lab up of a bad topology changes nothing', async (t) => {
  const before = rootSnapshot();
  const netnsBefore = netnsCount();
  for (const c of cases) {
    const r = lab(['up', `${dir}/${c}`]);
    const expected = readFileSync(`${REPO}/${dir}/${c.replace(/\.yaml$/, '.expected')}`, 'utf8').trim();
    t.equal(r.code, 2, `${c}: exit code 2`);
    t.match(r.stderr, expected, `${c}: the message names file, line and field`);
  }
  t.equal(netnsCount(), netnsBefore, 'no namespace was created');
  t.same(rootSnapshot(), before, 'root namespace unchanged');
});

t.test('tunnel: kernel where the kernel has no Geneve: exit 2 before anything is created', async (t) => {
  const doctor = JSON.parse(lab(['doctor', '--json']).stdout) as { checks: Array<{ name: string; ok: boolean }> };
  if (doctor.checks.find((c) => c.name === 'geneve')?.ok) {
    t.plan(0, 'this kernel has Geneve; the kernel-Geneve VM test covers tunnel: kernel');
    return;
  }
  const before = rootSnapshot();
  const netnsBefore = netnsCount();
  const r = lab(['up', 'topologies/vm-kernel.yaml', 'badtunnel']);
  t.equal(r.code, 2, 'exit code 2');
  t.match(r.stderr, /topologies\/vm-kernel\.yaml: tunnel: kernel, but this kernel cannot create Geneve devices/);
  t.match(r.stderr, /lab doctor/, 'the hint names lab doctor');
  t.notMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  t.notOk(existsSync('/run/ambient-lab/badtunnel'), 'no state directory');
  t.equal(netnsCount(), netnsBefore, 'no namespace was created');
  t.same(rootSnapshot(), before, 'root namespace unchanged');
});
