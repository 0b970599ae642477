// `lab up --dry-run` prints the whole build and creates nothing: no namespace, no state, no
// file under /etc/netns, no change in the root namespace.
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { lab, rootSnapshot, leftovers } from './helpers.js';

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

  t.same(leftovers(NAME), [], 'no namespace, /etc/netns entry, state or process of the lab');
  t.same(netns().filter((n) => n.startsWith('al-probe-')), [], 'the host probe removed its scratch namespace');
  t.same(netns().filter((n) => !nsBefore.includes(n) && n.startsWith(`al-${NAME}`)), []);
  t.same(rootSnapshot(), before, 'root namespace unchanged');
});
