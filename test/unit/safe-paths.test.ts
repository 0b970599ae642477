// Lab names and the paths built from user input: the one lab-name rule, insideDir, the state
// directory's owner mark before the only recursive delete, and capture's -w FILE.
import t from 'tap';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, symlinkSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { insideDir, PathEscapeError } from '../../src/util/inside-dir.js';
import { checkLabName, labNameProblem, MAX_LAB_NAME } from '../../src/topology/lab-name.js';
import { UserError } from '../../src/util/errors.js';

const BAD_NAMES = ['..', '../..', 'a/../..', '/etc', '.', '', 'x'.repeat(300), 'a/b', 'Demo', '-a', 'a.b', 'a b', 'a\0b'];

t.test('lab names: DNS-1123 labels of at most 20 characters, nothing a path could read differently', async (t) => {
  for (const ok of ['demo', 'sf-1', 'a', 'x'.repeat(MAX_LAB_NAME), '0lab']) t.equal(labNameProblem(ok), undefined, `"${ok}" is valid`);
  for (const bad of BAD_NAMES) {
    t.match(labNameProblem(bad), /must be a DNS-1123 label.*at most 20 characters.*network namespace names/, `${JSON.stringify(bad.slice(0, 30))} is invalid`);
    t.throws(() => checkLabName(bad, 'lab name given with --lab'), UserError);
  }
  t.equal(checkLabName('demo', 'NAME'), 'demo');
  try { checkLabName('..', 'lab name given with NAME'); } catch (e) {
    t.match((e as Error).message, /^lab name given with NAME: invalid name "\.\.": must be a DNS-1123 label/, 'the message says where the name came from and what was given');
  }
});

t.test('insideDir: joins and resolves, and refuses anything not strictly inside the root', async (t) => {
  t.equal(insideDir('/run/ambient-lab', 'demo'), '/run/ambient-lab/demo');
  t.equal(insideDir('/run/ambient-lab/', 'demo', 'logs', 'a.log'), '/run/ambient-lab/demo/logs/a.log');
  t.equal(insideDir('/out', 'a/../b.pcap'), '/out/b.pcap', 'a .. that stays inside is fine');
  t.equal(insideDir('/out', '..x'), '/out/..x', 'a name that merely starts with .. is inside');
  t.equal(insideDir('rel', 'f'), resolve('rel/f'), 'a relative root is resolved');
  for (const parts of [['..'], ['../..'], ['a/../..'], ['/etc'], ['.'], [''], ['a', '../..'], ['../ambient-lab-other'], ['x\0y']]) {
    t.throws(() => insideDir('/run/ambient-lab', ...parts), PathEscapeError, `${JSON.stringify(parts)} escapes`);
  }
  t.throws(() => insideDir('/', '..'), PathEscapeError, '/ itself is not inside /');
  t.equal(insideDir('/', 'etc'), '/etc');
});

t.test('state directory: a direct child of the state root; removed only when it holds state.json', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'sf-store-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  // Two levels of padding: were removeStateDir ever to follow `../..`, it would stay inside tmp.
  const beside = join(tmp, 'd1', 'd2');
  const root = join(beside, 'state');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(beside, 'sentinel'), 'beside the state root');
  const saved = process.env.AMBIENT_LAB_STATE_DIR;
  process.env.AMBIENT_LAB_STATE_DIR = root;
  t.teardown(() => { if (saved === undefined) delete process.env.AMBIENT_LAB_STATE_DIR; else process.env.AMBIENT_LAB_STATE_DIR = saved; });
  const { labStateDir, labStateFile, removeStateDir, writeState, readState, listStateLabs } = await import('../../src/state/store.js');

  t.equal(labStateDir('demo'), join(root, 'demo'));
  t.equal(labStateFile('demo', 'logs', 'default.sleep.log'), join(root, 'demo', 'logs', 'default.sleep.log'));
  for (const bad of ['..', '../..', 'a/../..', '/etc', '.', '', 'a/b']) {
    t.throws(() => labStateDir(bad), Error, `labStateDir(${JSON.stringify(bad)}) throws`);
    t.throws(() => removeStateDir(bad), Error, `removeStateDir(${JSON.stringify(bad)}) throws`);
  }
  t.throws(() => labStateFile('demo', '..', 'other', 'state.json'), PathEscapeError, 'a file of one lab cannot name another lab');
  t.ok(existsSync(join(beside, 'sentinel')), 'the sentinel beside the state root survives');

  // A lab's directory with its owner mark: removed, with everything in it.
  writeState({ lab: 'sf-a', file: 'x.yaml', phase: 'up', createdAt: '', netns: [], files: [], processes: [] });
  mkdirSync(join(root, 'sf-a', 'logs'));
  writeFileSync(join(root, 'sf-a', 'logs', 'lab.log'), '{}');
  t.same(listStateLabs(), ['sf-a']);
  t.equal(readState('sf-a')?.lab, 'sf-a');
  t.equal(removeStateDir('sf-a'), true);
  t.notOk(existsSync(join(root, 'sf-a')), 'sf-a is gone');

  // Without state.json: not made by `lab up`, so never recursively deleted.
  mkdirSync(join(root, 'sf-nomark'));
  writeFileSync(join(root, 'sf-nomark', 'keep'), 'not ours');
  t.equal(removeStateDir('sf-nomark'), false, 'a directory without state.json is kept');
  t.ok(existsSync(join(root, 'sf-nomark', 'keep')), 'and its files too');
  mkdirSync(join(root, 'sf-empty'));
  t.equal(removeStateDir('sf-empty'), true, 'an empty directory is removed (rmdir, not recursive)');

  // A symlink in the state root, even to a directory holding a state.json, is not followed.
  const elsewhere = join(beside, 'elsewhere');
  mkdirSync(elsewhere);
  writeFileSync(join(elsewhere, 'state.json'), '{}');
  symlinkSync(elsewhere, join(root, 'sf-link'));
  t.equal(removeStateDir('sf-link'), false, 'a symlinked lab directory is left alone');
  t.ok(existsSync(join(elsewhere, 'state.json')), 'its target survives');
  t.equal(removeStateDir('sf-never-was'), true, 'a lab with no directory: nothing to do');
  t.same(readdirSync(beside).sort(), ['elsewhere', 'sentinel', 'state']);
});

t.test('capture -w FILE: an absolute path in an existing directory, no symlink, not the lab\'s own files', async (t) => {
  const { checkCaptureArgs } = await import('../../src/cli/capture.js');
  const tmp = mkdtempSync(join(tmpdir(), 'sf-capture-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const roots = [join(tmp, 'state'), '/etc/netns'];
  const check = (args: string[]) => checkCaptureArgs(args, tmp, roots);
  t.same(check(['-nn', 'udp', 'port', '6081']), ['-nn', 'udp', 'port', '6081'], 'no -w: unchanged');
  t.same(check(['-w', 'out.pcap', 'udp']), ['-w', join(tmp, 'out.pcap'), 'udp'], 'relative: resolved against the working directory');
  t.same(check(['-wout.pcap']), [`-w${join(tmp, 'out.pcap')}`], '-wFILE');
  t.same(check(['-nnw', 'out.pcap']), ['-nnw', join(tmp, 'out.pcap')], 'in a cluster of flags');
  t.same(check(['udp', '-w', 'out.pcap']), ['udp', '-w', join(tmp, 'out.pcap')], 'after the filter (getopt permutes)');
  t.same(check(['-i', 'w', '-w', '-']), ['-i', 'w', '-w', '-'], 'the value of -i is not an option; -w - is stdout');
  t.same(check(['-s0w', 'a.pcap']), ['-s0w', 'a.pcap'], 'w inside the value of -s is not -w');
  t.throws(() => check(['-w', 'nodir/out.pcap']), /directory .*nodir does not exist/);
  t.throws(() => check(['-w']), /-w needs a file name/);
  symlinkSync('/etc/passwd', join(tmp, 'link.pcap'));
  t.throws(() => check(['-w', 'link.pcap']), /is not a regular file \(a symlink\)/, 'a symlink is refused (tcpdump would follow it as root)');
  t.throws(() => check(['-w', tmp]), /is not a regular file \(a directory\)/);
  mkdirSync(join(tmp, 'state', 'demo'), { recursive: true });
  t.throws(() => check(['-w', 'state/demo/state.json']), /the lab's own files/);
  t.throws(() => check(['-w', '/etc/resolv.conf']), /the lab's own files/, 'ip netns exec bind-mounts the pod\'s resolv.conf there');
  t.throws(() => check(['-w', '/etc/netns/x.pcap']), /the lab's own files/);
});
