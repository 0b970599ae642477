// The whole build of every shipped topology and test fixture, as data, against golden files
// (UPDATE_GOLDEN=1 rewrites them), the way istio-iptables golden-tests its whole flow: a
// changed link, rule, file, certificate or process of any pod kind shows up as a golden diff.
import t from 'tap';
import { readFileSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadTopology } from '../../src/topology/load.js';
import { planAddresses } from '../../src/topology/address-plan.js';
import { planLab, assertBuildPaths, type LabBuild } from '../../src/plan/lab-build.js';
import { PathEscapeError } from '../../src/util/inside-dir.js';
import { POD_KINDS } from '../../src/plan/pod-kinds.js';
import { UserError } from '../../src/util/errors.js';
import type { HostFacts } from '../../src/plan/host-facts.js';

const GOLDEN = 'test/golden/builds';
const PATHS = { stateDir: '/run/ambient-lab/LAB', distDir: '/opt/ambient-lab/dist', node: '/usr/bin/node' };
const NO_GENEVE: HostFacts = { kernelGeneve: false };
const GENEVE: HostFacts = { kernelGeneve: true };

/** JSON files are shown parsed and other files as lines, so a golden diff reads like the change. */
function readable(build: LabBuild): unknown {
  return {
    ...build,
    files: build.files.map((f) => (f.path.endsWith('.json') ? { path: f.path, json: JSON.parse(f.content) } : { path: f.path, lines: f.content.split('\n') })),
  };
}

function buildOf(file: string, facts: HostFacts, mesh = true): LabBuild {
  const plan = planAddresses(loadTopology(file));
  return planLab(plan, facts, { ...PATHS, stateDir: `/run/ambient-lab/${plan.lab}` }, { mesh });
}

const cases: Array<{ name: string; file: string; facts: HostFacts; mesh?: boolean }> = [];
// Shipped topologies, the course's (lab/topologies, prefixed course-) and the test fixtures;
// the object files beside them (for `lab apply`, no `nodes:`) are not topologies.
const DIRS: Record<string, string> = { topologies: '', 'lab/topologies': 'course-', 'test/fixtures/topologies': 'fixture-' };
for (const [dir, prefix] of Object.entries(DIRS)) {
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml')).sort()) {
    const file = join(dir, f);
    const text = readFileSync(file, 'utf8');
    if (!/^nodes:/m.test(text)) continue;
    const kernelOnly = /^tunnel:\s*kernel/m.test(text);
    cases.push({ name: `${prefix}${basename(f, '.yaml')}`, file, facts: kernelOnly ? GENEVE : NO_GENEVE });
  }
}
cases.push({ name: 'demo-kernel-geneve', file: 'topologies/demo.yaml', facts: GENEVE });
cases.push({ name: 'demo-no-mesh', file: 'topologies/demo.yaml', facts: NO_GENEVE, mesh: false });

for (const c of cases) {
  t.test(`build of ${c.file}${c.mesh === false ? ' --no-mesh' : ''} (${c.facts.kernelGeneve ? 'kernel' : 'userspace'} Geneve)`, async (t) => {
    const actual = JSON.stringify(readable(buildOf(c.file, c.facts, c.mesh ?? true)), null, 2) + '\n';
    const golden = join(GOLDEN, `${c.name}.json`);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, actual);
    t.ok(existsSync(golden), `${golden} exists (UPDATE_GOLDEN=1 creates it)`);
    t.equal(actual, readFileSync(golden, 'utf8'), `matches ${golden}`);
  });
}

t.test('every golden build has its case', async (t) => {
  const names = new Set(cases.map((c) => `${c.name}.json`));
  t.same(readdirSync(GOLDEN).filter((f) => !names.has(f)), [], 'no orphan golden files');
});

t.test('the build is pure: same input, same build', async (t) => {
  t.same(buildOf('topologies/three-nodes.yaml', NO_GENEVE), buildOf('topologies/three-nodes.yaml', NO_GENEVE));
});

t.test('tunnel: kernel on a kernel without Geneve is a user error at planning time', async (t) => {
  const plan = planAddresses(loadTopology('topologies/vm-kernel.yaml'));
  let err: unknown;
  try { planLab(plan, NO_GENEVE, PATHS); } catch (e) { err = e; }
  t.type(err, UserError, 'a user error (exit 2), not a crash');
  t.match((err as Error).message, /topologies\/vm-kernel\.yaml: tunnel: kernel, but this kernel cannot create Geneve devices/);
  t.match((err as UserError).hint, /lab doctor/);
});

t.test('what the kinds contribute to the demo', async (t) => {
  const b = buildOf('topologies/demo.yaml', NO_GENEVE);
  t.same(POD_KINDS.map((k) => k.name), ['ztunnel', 'dns', 'workload', 'waypoint', 'sidecar'], 'the registered kinds, in planning order');
  t.same(b.processes.map((p) => p.id), [
    // One userspace Geneve daemon for the lab serves every node's and every ztunnel pod's end.
    'geneve', 'ztunnel/node-a', 'ztunnel/node-b',
    'pod/kube-system/coredns', 'pod/default/sleep', 'pod/default/httpbin',
  ]);
  t.same(b.processes.filter((p) => p.restart === 'always').map((p) => p.id), ['geneve', 'ztunnel/node-a', 'ztunnel/node-b', 'pod/kube-system/coredns'],
    'the kinds mark what the supervisor restarts (the mesh and DNS, as DaemonSets); apps are left dead');
  t.same(b.processes.filter((p) => p.startFirst).map((p) => p.id), ['geneve', 'ztunnel/node-a', 'ztunnel/node-b', 'pod/kube-system/coredns'],
    'and what starts before the apps');
  t.same(b.processes.filter((p) => p.liveConfig).map((p) => [p.id, p.liveConfig]), [
    ['ztunnel/node-a', '/run/ambient-lab/demo/ztunnel/node-a.json'], ['ztunnel/node-b', '/run/ambient-lab/demo/ztunnel/node-b.json'],
  ], 'and which config files their proxies reload live (lab apply waits for their version)');
  for (const p of buildOf('test/fixtures/topologies/coexist-mini.yaml', NO_GENEVE).processes.filter((x) => x.liveConfig)) {
    t.ok(p.argv.join(' ').includes(`--config ${p.liveConfig}`), `${p.id}: the live config is the one it is started with`);
  }
  const gv = b.processes.find((p) => p.role === 'geneve')!;
  t.equal(gv.netns, 'al-demo-underlay', 'the daemon runs in the underlay: it belongs to no node');
  t.equal(gv.node, undefined, 'and names none');
  const ends = gv.argv.flatMap((a, i) => (gv.argv[i - 1] === '--end' ? [a] : []));
  t.same(ends, [
    'netns=al-demo-node-node-a,local=10.244.0.1,remote=10.244.0.2,tap=istioin:1000,tap=istioout:1001',
    'netns=al-demo-pod-istio-system.ztunnel-node-a,local=10.244.0.2,remote=10.244.0.1,tap=pistioin:1000,tap=pistioout:1001',
    'netns=al-demo-node-node-b,local=10.244.1.1,remote=10.244.1.2,tap=istioin:1000,tap=istioout:1001',
    'netns=al-demo-pod-istio-system.ztunnel-node-b,local=10.244.1.2,remote=10.244.1.1,tap=pistioin:1000,tap=pistioout:1001',
  ], 'two ends per node, each in its own namespace, the addresses and VNIs kernel Geneve would use');
  t.same(b.certificates.map((c) => [c.owner, c.identities]), [
    ['ztunnel/node-a', ['spiffe://cluster.local/ns/default/sa/sleep']],
    ['ztunnel/node-b', ['spiffe://cluster.local/ns/default/sa/httpbin']],
  ], 'each ztunnel is issued the identities of the ambient pods on its node, and only those');
  const nodeA = b.netns.find((n) => n.netns === 'al-demo-node-node-a')!;
  const jumps = nodeA.config.ruleset!.rules.filter((r) => r.chain === 'PREROUTING' && r.table === 'nat').map((r) => r.args.join(' '));
  t.same(jumps, ['-j ztunnel-PREROUTING', '-m comment --comment kubernetes service portals -j KUBE-SERVICES'], 'istio-cni\'s jump is ahead of kube-proxy\'s, as its insert at position 1 leaves it');
  t.same(nodeA.config.ipsets?.[0].entries.map((e) => e.ip), ['10.244.0.4'], 'only sleep (ambient, node-a) is in ztunnel-pods-ips');

  const kernel = buildOf('topologies/demo.yaml', GENEVE);
  t.equal(kernel.processes.filter((p) => p.role === 'geneve').length, 0, 'kernel Geneve: no userspace daemons');
  t.match(kernel.netns.find((n) => n.netns === 'al-demo-node-node-a')!.links.join('\n'), /link add istioout type geneve id 1001 remote 10\.244\.0\.2 dstport 6081/);

  const plain = buildOf('topologies/demo.yaml', NO_GENEVE, false);
  t.same(plain.processes.map((p) => p.role), ['dns', 'app', 'app'], '--no-mesh: apps and DNS only');
  t.equal(plain.tunnel, undefined);
  t.notOk(plain.netns.some((n) => n.config.ipsets?.length), '--no-mesh: no ipset anywhere');
});

t.test('dnsCapture: istio-cni DNATs ambient pods\' DNS to ztunnel :15053 and the ztunnel serves it', async (t) => {
  const b = buildOf('test/fixtures/topologies/dns-capture.yaml', NO_GENEVE);
  const node = b.netns.find((n) => n.kind === 'node')!;
  t.match(node.config.ruleset!.rules.map((r) => `${r.table} ${r.chain} ${r.args.join(' ')}`).join('\n'),
    /nat ztunnel-PREROUTING -p udp -m set --match-set ztunnel-pods-ips src -m udp --dport 53 -j DNAT --to-destination 10\.244\.0\.2:15053/);
  const cfg = b.files.find((f) => f.path.endsWith('/ztunnel/node-a.json'))!;
  t.equal(JSON.parse(cfg.content).dnsCapture, true);
  const off = buildOf('topologies/demo.yaml', NO_GENEVE);
  t.notMatch(JSON.stringify(off.netns), /15053/, 'off by default: no DNS rule');
});

t.test('every path of a build stays in the lab\'s state directory or its own /etc/netns entries', async (t) => {
  const stateDir = '/run/ambient-lab/demo';
  const fresh = () => buildOf('topologies/demo.yaml', NO_GENEVE);
  t.doesNotThrow(() => assertBuildPaths(fresh(), stateDir), 'the demo\'s build passes (so does every golden build: planLab checks each)');
  const escapes: Array<[string, (b: LabBuild) => void]> = [
    ['a config file beside the state dir', (b) => b.files.push({ path: `${stateDir}/../other/ztunnel/node-a.json`, content: '' })],
    ['a file in /etc/netns of another lab', (b) => b.files.push({ path: '/etc/netns/al-other-pod-default.sleep/resolv.conf', content: '' })],
    ['a file in /etc/netns other than resolv.conf/hosts', (b) => b.files.push({ path: `/etc/netns/${b.netns[3].netns}/passwd`, content: '' })],
    ['/etc itself', (b) => b.files.push({ path: '/etc/passwd', content: '' })],
    ['a directory up two levels', (b) => b.dirs.push(`${stateDir}/logs/../../..`)],
    ['the state dir itself as a cert dir', (b) => b.certificates.push({ owner: 'x', dir: stateDir, identities: [] })],
    ['a CA outside', (b) => { b.ca = { dir: '/tmp/ca' }; }],
    ['a log outside', (b) => { b.processes[0].log = '/var/log/x.log'; }],
    ['a ready file outside', (b) => { b.processes[0].readyFile = `${stateDir}/ready/../../x`; }],
    ['an owned dir outside', (b) => { b.processes[0].ownDirs = ['/home']; }],
  ];
  for (const [what, tamper] of escapes) {
    const b = fresh();
    tamper(b);
    t.throws(() => assertBuildPaths(b, stateDir), PathEscapeError, `${what}: refused`);
  }
});
