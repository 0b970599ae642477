// `lab up` killed with SIGKILL at the start of each of its steps leaves nothing that `lab down`
// cannot remove, and the root namespace untouched; even when the state directory is gone too
// (`lab down --all` finds the owner marks). `up` kills itself where AMBIENT_LAB_KILL_AT_STEP
// says and notes the step in AMBIENT_LAB_KILL_MARKER, so each case proves the step was reached.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lab, leftovers, rootSnapshot, CLI, REPO } from './helpers.js';
import { UP_STEP_KEYS } from '../../src/lab/up.js';

const NAME = 'tt-kill';
const scratch = mkdtempSync(join(tmpdir(), 'tt-kill-'));

t.teardown(() => {
  lab(['down', NAME]);
  rmSync(scratch, { recursive: true, force: true });
});

/** Runs `lab up` of the demo until it kills itself as step `key` starts. */
function upKilledAt(key: string): { signal: NodeJS.Signals | null; status: number | null; marker: string; stderr: string } {
  const marker = join(scratch, `${key}.marker`);
  // Each run starts with no marker: a key used twice (the lost-state case) must not read the first run's.
  rmSync(marker, { force: true });
  const r = spawnSync(process.execPath, [CLI, 'up', 'topologies/demo.yaml', NAME, '--json'], {
    cwd: REPO, encoding: 'utf8', timeout: 60_000,
    env: { ...process.env, AMBIENT_LAB_KILL_AT_STEP: key, AMBIENT_LAB_KILL_MARKER: marker },
  });
  return { signal: r.signal, status: r.status, marker: existsSync(marker) ? readFileSync(marker, 'utf8') : '', stderr: r.stderr };
}

/** The kinds of thing `leftovers` reports: state, netns, /etc/netns, process. */
const kinds = (left: string[]): string[] => [...new Set(left.map((l) => (l.startsWith('/etc/netns/') ? '/etc/netns' : l.split(' ')[0])))].sort();

/** What exists when `up` dies as each step starts, i.e. what the steps before it made. */
const LEFT_BEFORE: Record<string, string[]> = {
  state: [],
  netns: ['state'],
  links: ['netns', 'state'],
  rules: ['netns', 'state'],
  files: ['netns', 'state'],
  processes: ['/etc/netns', 'netns', 'state'],
  ready: ['/etc/netns', 'netns', 'process', 'state'],
  supervisor: ['/etc/netns', 'netns', 'process', 'state'],
};

t.test('up has the steps this test kills at', async (t) => {
  t.same([...UP_STEP_KEYS], ['state', 'netns', 'links', 'rules', 'files', 'processes', 'ready', 'supervisor'],
    'a new step of `up` needs a case here (and a look at what it leaves behind)');
});

for (const key of UP_STEP_KEYS) {
  t.test(`SIGKILL as step "${key}" starts: lab down ${NAME} removes everything`, async (t) => {
    t.same(leftovers(NAME), [], 'nothing of the lab before up');
    const before = rootSnapshot();
    const up = upKilledAt(key);
    t.equal(up.signal, 'SIGKILL', `lab up died by SIGKILL\n${up.stderr}`);
    t.equal(up.status, null, 'and did not exit by itself');
    t.equal(up.marker, `${key}\n`, `step "${key}" was reached, and only killed there`);
    const left = leftovers(NAME);
    t.same(kinds(left), LEFT_BEFORE[key], `what the earlier steps left for down to remove: ${left.join(', ') || 'nothing'}`);
    // Killed before it made anything: there is no lab to take down (and `lab down` says so).
    if (!LEFT_BEFORE[key].length) {
      t.same(rootSnapshot(), before, 'root namespace unchanged');
      return;
    }
    const r = lab(['down', NAME]);
    t.equal(r.code, 0, `lab down exits 0\n${r.stderr}`);
    t.same(leftovers(NAME), [], 'nothing left');
    t.same(rootSnapshot(), before, 'root namespace unchanged');
  });
}

// The one test that may use --all: the state is gone, so only the owner marks say what is ours.
// Killed as "supervisor" starts, the most exists: namespaces, links, rules, files and live
// processes that are all ready, so none of them writes its ready file into the state directory
// after it is removed (an app would recreate the directory, without state.json).
t.test('SIGKILL, then the state directory is lost: lab down --all still cleans up', async (t) => {
  const before = rootSnapshot();
  const up = upKilledAt('supervisor');
  t.equal(up.signal, 'SIGKILL', `lab up died by SIGKILL\n${up.stderr}`);
  t.equal(up.marker, 'supervisor\n', 'step "supervisor" was reached');
  rmSync(`/run/ambient-lab/${NAME}`, { recursive: true, force: true });
  t.same(kinds(leftovers(NAME)), ['/etc/netns', 'netns', 'process'], 'namespaces, /etc/netns files and processes are left, without a state directory');
  const r = lab(['down', '--all']);
  t.equal(r.code, 0, `lab down --all exits 0\n${r.stderr}`);
  t.same(leftovers(NAME), [], 'nothing left');
  t.same(rootSnapshot(), before, 'root namespace unchanged');
});
