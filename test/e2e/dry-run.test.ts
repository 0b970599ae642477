// `lab up --dry-run` prints the whole build and creates nothing: no namespace, no state, no
// file under /etc/netns, no change in the root namespace.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lab, rootSnapshot, leftovers, REPO } from './helpers.js';

const NAME = 'dryrun';
const netns = () => (existsSync('/run/netns') ? readdirSync('/run/netns') : []);

t.test('lab up --dry-run prints the plan and touches nothing', async (t) => {
  const before = rootSnapshot();
  const nsBefore = netns();
  const text = lab(['up', 'topologies/three-nodes.yaml', NAME, '--dry-run']);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, new RegExp(`lab "${NAME}": dry run, nothing was created`));
  t.match(text.stdout, new RegExp(`netns al-${NAME}-node-node-a \\(node\\)`), 'names the node namespaces');
  t.match(text.stdout, /create ztunnel-pods-ips hash:ip comment/, 'shows the ipset');
  t.match(text.stdout, /-A ztunnel-PREROUTING -p tcp -m set --match-set ztunnel-pods-ips src -j MARK --set-xmark 0x100\/0x100/, 'shows rule 15 of the mangle chain');
  t.match(text.stdout, /ztunnel\/node-a \(ztunnel\) in al-dryrun-pod-istio-system\.ztunnel-node-a/, 'shows the processes');

  const json = lab(['up', 'topologies/three-nodes.yaml', NAME, '--dry-run', '--json']);
  t.equal(json.code, 0, json.stderr);
  const build = JSON.parse(json.stdout) as { lab: string; netns: Array<{ netns: string }>; processes: Array<{ id: string }> };
  t.equal(build.lab, NAME);
  t.ok(build.netns.length > 5 && build.processes.some((p) => p.id === 'ztunnel/node-c'), 'the build as data');

  t.same(leftovers(NAME), [], 'no namespace, /etc/netns entry, state or process of the lab, no probe namespace left');
  t.same(netns().filter((n) => !nsBefore.includes(n) && n.startsWith(`al-${NAME}`)), [], 'no namespace named after the lab');
  t.same(rootSnapshot(), before, 'root namespace unchanged');
});

/** Every topology a user can bring up: the shipped ones and the course's (object files for `lab apply` have no `nodes:`). */
const topologyFiles = (): string[] => ['topologies', 'lab/topologies'].flatMap((dir) => readdirSync(join(REPO, dir))
  .filter((f) => f.endsWith('.yaml') && /^nodes:/m.test(readFileSync(join(REPO, dir, f), 'utf8'))).sort().map((f) => `${dir}/${f}`));

t.test('lab up --dry-run [--json] prints the plan of every topology, and touches nothing', async (t) => {
  const files = topologyFiles();
  t.ok(files.length >= 9, `${files.length} topology files`);
  const doctor = JSON.parse(lab(['doctor', '--json']).stdout) as { checks: Array<{ name: string; ok: boolean }> };
  const kernelGeneve = doctor.checks.find((c) => c.name === 'geneve')?.ok === true;
  const before = rootSnapshot();
  const nsBefore = netns();
  for (const file of files) {
    const text = lab(['up', file, NAME, '--dry-run']);
    const json = lab(['up', file, NAME, '--dry-run', '--json']);
    if (!kernelGeneve && /^tunnel:\s*kernel/m.test(readFileSync(join(REPO, file), 'utf8'))) {
      // Refused while planning, before anything exists (the same as `lab up` without --dry-run).
      for (const r of [text, json]) {
        t.equal(r.code, 2, `${file}: tunnel: kernel without kernel Geneve: exit 2\n${r.stderr}`);
        t.match(r.stderr, /tunnel: kernel, but this kernel cannot create Geneve devices[\s\S]*lab doctor/, `${file}: says why and names lab doctor`);
        t.equal(r.stdout, '', `${file}: prints no plan`);
      }
      continue;
    }
    t.equal(text.code, 0, `${file}: exit 0\n${text.stderr}`);
    t.equal(json.code, 0, `${file} --json: exit 0\n${json.stderr}`);
    const build = JSON.parse(json.stdout) as { lab: string; netns: Array<{ netns: string; kind: string }>; processes: Array<{ id: string }>; files: unknown[] };
    t.equal(build.lab, NAME, `${file}: the build is named after NAME`);
    t.ok(build.netns.some((n) => n.kind === 'node') && build.processes.length > 0, `${file}: nodes and processes planned`);
    t.match(text.stdout, new RegExp(`^lab "${NAME}": dry run, nothing was created`), `${file}: says nothing was created`);
    t.match(text.stdout, new RegExp(`== ${build.netns.length} network namespaces[\\s\\S]*== ${build.files.length} files[\\s\\S]*== ${build.processes.length} processes`),
      `${file}: the text shows as many namespaces, files and processes as the data`);
    const missing = [...build.netns.map((n) => `netns ${n.netns} (${n.kind})`), ...build.processes.map((p) => `  ${p.id} (`)].filter((l) => !text.stdout.includes(l));
    t.same(missing, [], `${file}: every namespace and process of the build is in the text`);
  }
  // leftovers() also counts a host probe's scratch namespace whose process is gone (other
  // agents' live probes come and go on this machine).
  t.same(leftovers(NAME), [], 'no namespace, /etc/netns entry, state or process of the lab, no probe namespace left');
  t.same(netns().filter((n) => !nsBefore.includes(n) && n.startsWith(`al-${NAME}`)), [], 'no namespace named after the lab');
  t.same(rootSnapshot(), before, 'root namespace unchanged');
});
