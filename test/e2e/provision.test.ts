// lab/provision.sh is what a learner's machine (Vagrant or a bare Debian/Ubuntu host) runs; here
// it runs on the CI machine twice: the first run may install or build, the second must find
// everything in place and change nothing (check, then act). Then the Vagrantfile is validated
// by Debian's vagrant (`vagrant validate --ignore-provider`: no box, no provider needed).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './helpers.js';

// The `lab` link goes to a scratch directory: /usr/local/bin/lab on this machine may belong to
// another checkout.
const bin = mkdtempSync(join(tmpdir(), 'provision-bin-'));
t.teardown(() => rmSync(bin, { recursive: true, force: true }));
// vagrant's own state (.vagrant/) goes to the scratch directory too.
const env = { ...process.env, LAB_BIN_DIR: bin, PATH: `${bin}:${process.env.PATH}`, VAGRANT_DOTFILE_PATH: join(bin, '.vagrant') };

function provision(): { code: number; out: string } {
  const r = spawnSync('bash', [join(REPO, 'lab/provision.sh')], { cwd: REPO, encoding: 'utf8', env, timeout: 600_000 });
  return { code: r.status ?? -1, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

t.test('provision.sh twice: the second run is a no-op that ends with lab doctor and the first exercise', async (t) => {
  const first = provision();
  t.equal(first.code, 0, 'first run succeeds', { output: first.out });
  t.match(first.out, /node v\d+\.\d+\.\d+ is there: kept/, 'the Node already here is kept (NodeSource is never taken)');
  t.equal(readlinkSync(join(bin, 'lab')), join(REPO, 'bin/lab'), '`lab` is linked');
  const built = statSync(join(REPO, 'dist/cli/main.js')).mtimeMs;

  const second = provision();
  t.equal(second.code, 0, 'second run succeeds', { output: second.out });
  t.notMatch(second.out, /installing|setup: npm ci|setup: build\n|made .*answers/, 'the second run installs and builds nothing');
  t.match(second.out, /setup: build is up to date/);
  t.equal(statSync(join(REPO, 'dist/cli/main.js')).mtimeMs, built, 'dist/ untouched by the second run');
  t.match(second.out, /ready: the lab can run here/, 'lab doctor ran and found the machine ready');
  t.match(second.out.trim().split('\n').pop() ?? '', /^next: lab\/01-pods-and-nodes\.md/, 'the last line names the first exercise');
});

t.test('vagrant validate --ignore-provider', async (t) => {
  let v = spawnSync('vagrant', ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) {
    // Debian packages vagrant; setup.sh --with-vagrant installs it (and nothing else, here).
    spawnSync('bash', [join(REPO, 'scripts/setup.sh'), '--with-vagrant', '--check-first'], { cwd: REPO, env, encoding: 'utf8', timeout: 600_000 });
    v = spawnSync('vagrant', ['--version'], { encoding: 'utf8' });
  }
  if (v.status !== 0) { t.plan(0, 'vagrant cannot be installed on this machine'); return; }
  const r = spawnSync('vagrant', ['validate', '--ignore-provider'], { cwd: REPO, encoding: 'utf8', env: { ...env, VAGRANT_CHECKPOINT_DISABLE: '1' }, timeout: 120_000 });
  t.equal(r.status, 0, 'the Vagrantfile validates', { output: (r.stdout ?? '') + (r.stderr ?? '') });
  t.match(r.stdout, /Vagrantfile validated successfully/);
  // The Apple Silicon box is the same file with LAB_BOX.
  const arm = spawnSync('vagrant', ['validate', '--ignore-provider'], { cwd: REPO, encoding: 'utf8', env: { ...env, VAGRANT_CHECKPOINT_DISABLE: '1', LAB_BOX: 'bento/ubuntu-24.04' }, timeout: 120_000 });
  t.equal(arm.status, 0, 'validates with LAB_BOX=bento/ubuntu-24.04', { output: (arm.stdout ?? '') + (arm.stderr ?? '') });
});
