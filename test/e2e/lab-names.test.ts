// A lab name is a name, never a path: every verb that takes one (`up FILE NAME`, `down NAME`,
// `--lab`) checks it with the topology's `name:` rule before anything else runs (exit 2, a
// message saying what was given and what is expected), so `lab down ..` cannot delete the
// state root's parent. Runs against a scratch state root; brings up no lab.
import t, { type Test } from 'tap';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { lab as labCli, type CliResult } from './helpers.js';

// The scratch state root sits three levels below the scratch directory, so that even a CLI
// that joined names unchecked (the bug this guards against) would delete only inside `tmp`:
// `../..` from <tmp>/d1/d2/d3/state is <tmp>/d1/d2, never the real /tmp.
const tmp = mkdtempSync(join(tmpdir(), 'sf-lab-names-'));
const besideRoot = join(tmp, 'd1', 'd2', 'd3');
const stateRoot = join(besideRoot, 'state');
mkdirSync(stateRoot, { recursive: true });
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

// Sentinels where a name that escapes would land: beside the state root (written once directly
// and once through state/..), two levels up (`../..`), and a lab directory of someone else inside it.
const sentinels = [
  join(besideRoot, 'sentinel'), join(stateRoot, '..', 'sentinel-via-dotdot'), join(tmp, 'd1', 'd2', 'sentinel-two-up'),
  join(stateRoot, 'sf-other', 'state.json'),
];
mkdirSync(join(stateRoot, 'sf-other'));
for (const s of sentinels) writeFileSync(s, 'must survive\n');

const lab = (args: string[]): CliResult => labCli(args, { env: { AMBIENT_LAB_STATE_DIR: stateRoot }, timeoutMs: 30_000 });
const netns = (): string[] => (existsSync('/run/netns') ? readdirSync('/run/netns') : []);

const BAD = ['..', '../..', 'a/../..', '/etc', '.', '', 'x'.repeat(300)];
const RULE = /must be a DNS-1123 label: lowercase letters, digits and '-', start and end with a letter or digit, at most 20 characters/;
const shown = (name: string) => `"${name.replace(/[/.]/g, '\\$&')}"`;

function assertRefused(t: Test, r: CliResult, name: string, where: string, what: string): void {
  t.equal(r.code, 2, `${what}: exit code 2\n${r.stderr}`);
  t.match(r.stderr, new RegExp(`lab name given with ${where.replace('-', '\\-')}: invalid name ${shown(name)}`), `${what}: names what was given and where`);
  t.match(r.stderr, RULE, `${what}: says what is expected`);
  t.equal(r.stdout, '', `${what}: prints nothing else`);
}

function assertUntouched(t: Test): void {
  for (const s of sentinels) t.equal(existsSync(s) && readFileSync(s, 'utf8'), 'must survive\n', `${s} survives`);
  t.same(readdirSync(stateRoot), ['sf-other'], 'the state root holds what it held');
  // Other labs may come and go on this machine; none of ours may have appeared.
  t.same(netns().filter((n) => /^al-([^a-z0-9]|x{21}|$)/.test(n)), [], 'no network namespace named after a bad lab name');
}

t.test('lab up FILE NAME refuses a bad NAME before reading state or creating anything', async (t) => {
  for (const name of BAD) assertRefused(t, lab(['up', 'topologies/demo.yaml', name]), name, 'NAME', `up ... ${JSON.stringify(name.slice(0, 20))}`);
  assertUntouched(t);
});

t.test('lab down NAME and lab down --lab NAME refuse a bad name: nothing is deleted', async (t) => {
  for (const name of BAD) {
    assertRefused(t, lab(['down', name]), name, 'NAME', `down ${JSON.stringify(name.slice(0, 20))}`);
    assertRefused(t, lab(['down', '--lab', name]), name, '--lab', `down --lab ${JSON.stringify(name.slice(0, 20))}`);
  }
  assertUntouched(t);
});

t.test('--lab NAME is checked by every verb that takes it', async (t) => {
  for (const name of BAD) {
    const n = JSON.stringify(name.slice(0, 20));
    assertRefused(t, lab(['status', '--lab', name]), name, '--lab', `status --lab ${n}`);
    assertRefused(t, lab(['exec', '--lab', name, 'sleep', '--', 'true']), name, '--lab', `exec --lab ${n}`);
    assertRefused(t, lab(['logs', '--lab', name]), name, '--lab', `logs --lab ${n}`);
  }
  const others: [string, string[]][] = [
    ['ztunnel', ['ztunnel', 'config', 'node-a', '--lab', '..']],
    ['graph', ['graph', '--lab', '..']],
    ['capture', ['capture', 'node-a', '--lab', '..', '--', '-w', join(tmp, 'x.pcap')]],
    ['trace', ['trace', 'sleep', 'http://httpbin:8000/ip', '--lab', '..', '--out', join(tmp, 'trace')]],
  ];
  for (const [verb, args] of others) assertRefused(t, lab(args), '..', '--lab', `${verb} --lab ".."`);
  t.notOk(existsSync(join(tmp, 'x.pcap')) || existsSync(join(tmp, 'trace')), 'capture and trace wrote nothing');
  assertUntouched(t);
});

t.test('lab down of a lab that does not exist says so and exits 2', async (t) => {
  const r = lab(['down', 'sf-nosuchlab']);
  t.equal(r.code, 2, `exit code 2\n${r.stderr}`);
  t.match(r.stderr, /no lab "sf-nosuchlab": no state directory and no network namespaces of it/);
  t.equal(r.stdout, '');
  assertUntouched(t);
});

t.test('lab down NAME removes the scratch namespace of a lab up killed while probing the host', async (t) => {
  // Named after the killed process (a pid that is not running), not after the lab: the only debris.
  let pid = 4_000_000;
  while (existsSync(`/proc/${pid}`)) pid++;
  const ns = `al-probe-${pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => { try { execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' }); } catch { /* removed */ } });
  const r = lab(['down', 'sf-killedprobe']);
  t.equal(r.code, 0, `exit 0: the debris of a killed up was removed\n${r.stderr}`);
  t.match(r.stdout, new RegExp(`removed: 1 scratch namespace.*${ns}`));
  t.notOk(netns().includes(ns), 'the scratch namespace is gone');
  const again = lab(['down', 'sf-killedprobe']);
  t.equal(again.code, 2, 'with nothing left, the name is unknown again (exit 2)');
});

t.test('lab down removes a state directory only when it holds state.json (the owner mark)', async (t) => {
  // No lab processes or namespaces: these are state directories alone, which down handles without the kernel.
  mkdirSync(join(stateRoot, 'sf-nomark'));
  writeFileSync(join(stateRoot, 'sf-nomark', 'keep'), 'not made by lab up\n');
  const kept = lab(['down', 'sf-nomark']);
  t.equal(kept.code, 0, kept.stderr);
  t.match(kept.stderr, /left .*sf-nomark in place: it holds no state\.json/, 'says why it kept it');
  t.ok(existsSync(join(stateRoot, 'sf-nomark', 'keep')), 'the unmarked directory and its file survive');
  rmSync(join(stateRoot, 'sf-nomark'), { recursive: true });

  mkdirSync(join(stateRoot, 'sf-marked', 'logs'), { recursive: true });
  writeFileSync(join(stateRoot, 'sf-marked', 'state.json'), JSON.stringify({ lab: 'sf-marked', file: 'x.yaml', phase: 'failed', createdAt: '', netns: [], files: [], processes: [] }));
  writeFileSync(join(stateRoot, 'sf-marked', 'logs', 'lab.log'), '{}\n');
  const removed = lab(['down', 'sf-marked']);
  t.equal(removed.code, 0, removed.stderr);
  t.match(removed.stdout, /lab "sf-marked" removed: 0 processes, 0 namespaces, 0 files/);
  t.notOk(existsSync(join(stateRoot, 'sf-marked')), 'the marked state directory is gone');
  assertUntouched(t);
});

t.test('lab down deletes a namespace its state.json lists only when it is the lab\'s: named after it, no other lab\'s owner mark', async (t) => {
  // A state file edited by hand (or gone wrong) lists a namespace of nobody's, one marked by
  // another lab, and one of its own that `up` created but had not marked yet (killed early).
  const victim = `sf-victim-${process.pid}`;
  const foreign = 'al-sf-forged-node-x';
  const own = 'al-sf-forged-underlay';
  for (const ns of [victim, foreign, own]) execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['-n', foreign, 'link', 'set', 'lo', 'alias', 'ambient-lab:sf-forged-node:node:x']);
  // An untagged process in the victim namespace: `down` kills untagged processes only in its own.
  const sleeper = spawn('ip', ['netns', 'exec', victim, 'sleep', '300'], { stdio: 'ignore', detached: true });
  t.teardown(() => {
    try { process.kill(-sleeper.pid!, 'SIGKILL'); } catch { /* gone */ }
    for (const ns of [victim, foreign, own]) { try { execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' }); } catch { /* removed */ } }
  });
  const inVictim = async (): Promise<string> => {
    for (let i = 0; i < 100; i++) {
      const pids = execFileSync('ip', ['netns', 'pids', victim], { encoding: 'utf8' }).trim();
      if (pids) return pids;
      await new Promise((r) => setTimeout(r, 20));
    }
    return '';
  };
  const pidsBefore = await inVictim();
  t.match(pidsBefore, /^\d+$/, 'a process runs in the victim namespace');
  mkdirSync(join(stateRoot, 'sf-forged'));
  writeFileSync(join(stateRoot, 'sf-forged', 'state.json'), JSON.stringify({
    lab: 'sf-forged', file: 'x.yaml', phase: 'failed', createdAt: '', netns: [victim, foreign, own], files: [], processes: [],
  }));
  const r = lab(['down', 'sf-forged']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /lab "sf-forged" removed: 0 processes, 1 namespaces, 0 files/, 'one namespace removed: its own');
  t.notOk(netns().includes(own), `${own} (the lab's, not yet marked) is gone`);
  t.ok(netns().includes(victim), `${victim} (not named after the lab) survives`);
  t.ok(netns().includes(foreign), `${foreign} (marked by lab sf-forged-node) survives`);
  t.equal(execFileSync('ip', ['netns', 'pids', victim], { encoding: 'utf8' }).trim(), pidsBefore, 'the process in the victim namespace was not killed');
  t.notOk(existsSync(join(stateRoot, 'sf-forged')), 'the state directory is gone');
  assertUntouched(t);
});
