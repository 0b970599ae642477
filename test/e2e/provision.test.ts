// lab/provision.sh is what a learner's machine (Vagrant or a bare Debian/Ubuntu host) runs; here
// it runs on the CI machine twice: the first run may install or build, the second must find
// everything in place and change nothing (check, then act). Then the Vagrantfile is validated
// by Debian's vagrant (`vagrant validate --ignore-provider`: no box, no provider needed).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync, readlinkSync, rmSync, readFileSync } from 'node:fs';
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

// What `vagrant validate --ignore-provider` cannot see (it skips provider blocks, and no box is
// fetched here): the machine every learner gets.
t.test('the Vagrantfile: debian/bookworm64 at a pinned version, 2 vCPU and 4 GB per provider, the repo synced in, one provisioner', async (t) => {
  const vf = readFileSync(join(REPO, 'Vagrantfile'), 'utf8');
  t.match(vf, /ENV\.fetch\("LAB_BOX", "debian\/bookworm64"\)/, 'debian/bookworm64 unless LAB_BOX says otherwise');
  t.match(vf, /"debian\/bookworm64" => "12\.\d{8}\.\d+"/, 'a box version is pinned');
  t.match(vf, /^  config\.vm\.box_version = BOX_VERSION\[BOX\] if BOX_VERSION\[BOX\]$/m, 'and used for the box');
  for (const [provider, cpus, mem] of [['virtualbox', /vb\.cpus = 2\b/, /vb\.memory = 4096\b/], ['libvirt', /lv\.cpus = 2\b/, /lv\.memory = 4096\b/]] as const) {
    const block = new RegExp(`config\\.vm\\.provider "${provider}" do[^]*?\\n  end`).exec(vf)?.[0] ?? '';
    t.match(block, cpus, `${provider}: 2 vCPU`);
    t.match(block, mem, `${provider}: 4 GB`);
  }
  t.match(vf, /config\.vm\.synced_folder "\.", REPO_IN_VM/, 'the repository is synced into the VM');
  const provisioners = vf.match(/config\.vm\.provision /g) ?? [];
  t.equal(provisioners.length, 1, 'one provisioner');
  t.match(vf, /config\.vm\.provision "shell", path: "lab\/provision\.sh"/, 'the shell provisioner is lab/provision.sh');
});

t.test('vagrant validate --ignore-provider', async (t) => {
  let v = spawnSync('vagrant', ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) {
    // Only Debian/Ubuntu package vagrant the way setup.sh installs it; elsewhere there is nothing to run.
    if (spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status !== 0) { t.plan(0, 'no apt-get here: setup.sh cannot install vagrant'); return; }
    // CI machines have only Node, npm and git: setup.sh --with-vagrant installs Debian's vagrant
    // (and nothing else, here). On Debian/Ubuntu, failing to install it fails the test, never skips it.
    const s = spawnSync('bash', [join(REPO, 'scripts/setup.sh'), '--with-vagrant', '--check-first'], { cwd: REPO, env, encoding: 'utf8', timeout: 600_000 });
    v = spawnSync('vagrant', ['--version'], { encoding: 'utf8' });
    t.equal(v.status, 0, 'setup.sh --with-vagrant installed vagrant', { output: (s.stdout ?? '') + (s.stderr ?? '') });
    if (v.status !== 0) return;
  }
  const r = spawnSync('vagrant', ['validate', '--ignore-provider'], { cwd: REPO, encoding: 'utf8', env: { ...env, VAGRANT_CHECKPOINT_DISABLE: '1' }, timeout: 120_000 });
  t.equal(r.status, 0, 'the Vagrantfile validates', { output: (r.stdout ?? '') + (r.stderr ?? '') });
  t.match(r.stdout, /Vagrantfile validated successfully/);
  // The Apple Silicon box is the same file with LAB_BOX.
  const arm = spawnSync('vagrant', ['validate', '--ignore-provider'], { cwd: REPO, encoding: 'utf8', env: { ...env, VAGRANT_CHECKPOINT_DISABLE: '1', LAB_BOX: 'bento/ubuntu-24.04' }, timeout: 120_000 });
  t.equal(arm.status, 0, 'validates with LAB_BOX=bento/ubuntu-24.04', { output: (arm.stdout ?? '') + (arm.stderr ?? '') });
});
