// A bad topology gets exit code 2, a message naming file, line and field, and no change to the machine.
import t from 'tap';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { lab, leftovers, rootSnapshot, REPO } from './helpers.js';

const dir = 'test/golden/bad-topologies';
const netns = (): string[] => (existsSync('/run/netns') ? readdirSync('/run/netns') : []);
const cases = readdirSync(`${REPO}/${dir}`).filter((f) => f.endsWith('.yaml')).slice(0, 4);
/** The lab a file would have made: its `name:`, else the file name (other agents' labs come and go meanwhile). */
const labOf = (file: string): string => /^name:\s*([\w-]+)/m.exec(readFileSync(`${REPO}/${file}`, 'utf8'))?.[1] ?? basename(file, '.yaml');
/** Namespaces that appeared since `before` and carry one of these labs' names. */
const appeared = (before: string[], labs: string[]): string[] =>
  netns().filter((n) => !before.includes(n) && labs.some((l) => n.startsWith(`al-${l}-`)));

t.test('lab up of a bad topology changes nothing', async (t) => {
  const before = rootSnapshot();
  const netnsBefore = netns();
  for (const c of cases) {
    const r = lab(['up', `${dir}/${c}`]);
    const expected = readFileSync(`${REPO}/${dir}/${c.replace(/\.yaml$/, '.expected')}`, 'utf8').trim();
    t.equal(r.code, 2, `${c}: exit code 2`);
    t.match(r.stderr, expected, `${c}: the message names file, line and field`);
  }
  t.same(appeared(netnsBefore, cases.map((c) => labOf(`${dir}/${c}`))), [], 'no namespace was created');
  t.same(rootSnapshot(), before, 'root namespace unchanged');
});

t.test('tunnel: kernel where the kernel has no Geneve: exit 2 before anything is created', async (t) => {
  const doctor = JSON.parse(lab(['doctor', '--json']).stdout) as { checks: Array<{ name: string; ok: boolean }> };
  if (doctor.checks.find((c) => c.name === 'geneve')?.ok) {
    t.plan(0, 'this kernel has Geneve; the kernel-Geneve VM test covers tunnel: kernel');
    return;
  }
  const before = rootSnapshot();
  const netnsBefore = netns();
  const r = lab(['up', 'topologies/vm-kernel.yaml', 'badtunnel']);
  t.equal(r.code, 2, 'exit code 2');
  t.match(r.stderr, /topologies\/vm-kernel\.yaml: tunnel: kernel, but this kernel cannot create Geneve devices/);
  t.match(r.stderr, /lab doctor/, 'the hint names lab doctor');
  t.notMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  t.notOk(existsSync('/run/ambient-lab/badtunnel'), 'no state directory');
  t.same(appeared(netnsBefore, ['badtunnel']), [], 'no namespace was created');
  t.same(leftovers('badtunnel'), [], 'nothing of the lab, and no probe namespace, left');
  t.same(rootSnapshot(), before, 'root namespace unchanged');
});
