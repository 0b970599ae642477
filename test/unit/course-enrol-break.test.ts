// The pure parts of live enrolment and of `lab break`: which pods may be enrolled, the label
// argument, the kernel commands derived from two plans of the same lab (the difference istio-cni
// makes per pod, and nothing else), the seeded scenario pick, and symptoms that do not give the
// cause away. Exercise 9 is registered with its page.
import t from 'tap';
import { existsSync } from 'node:fs';
import { loadTopology } from '../../src/topology/load.js';
import { planAddresses, type LabPlan } from '../../src/topology/address-plan.js';
import { planLab, type LabBuild } from '../../src/plan/lab-build.js';
import { nodeChanges, notEnrollable, parseDataplaneLabel, selectNamespace, selectPod } from '../../src/lab/enrol.js';
import { SCENARIOS, pickScenario, findScenario } from '../../src/lab/break.js';
import { EXERCISES, exerciseFile } from '../../src/course/exercises.js';
import { UserError } from '../../src/util/errors.js';

const PATHS = { stateDir: '/run/ambient-lab/demo', distDir: '/opt/ambient-lab/dist', node: '/usr/bin/node' };

function planned(file: string, modes: Record<string, 'ambient' | 'none'> = {}): { plan: LabPlan; build: LabBuild } {
  const topo = loadTopology(file);
  for (const p of topo.pods) if (modes[p.name]) p.mode = modes[p.name];
  const plan = planAddresses(topo);
  return { plan, build: planLab(plan, { kernelGeneve: false }, PATHS, { mesh: true }) };
}

t.test('parseDataplaneLabel: kubectl forms of the one label istio-cni acts on', async (t) => {
  t.equal(parseDataplaneLabel('istio.io/dataplane-mode=ambient'), true);
  t.equal(parseDataplaneLabel('istio.io/dataplane-mode-'), false);
  for (const bad of ['istio.io/dataplane-mode=none', 'istio.io/dataplane-mode', 'app=x', 'istio-injection=enabled']) {
    t.throws(() => parseDataplaneLabel(bad), UserError, bad);
  }
  t.throws(() => parseDataplaneLabel('app=x'), /app changes nothing in the data path/);
});

t.test('who can be enrolled', async (t) => {
  const { plan } = planned('topologies/coexistence.yaml');
  const by = (name: string) => plan.pods.find((p) => p.name === name)!;
  t.equal(notEnrollable(by('sleep')), undefined);
  t.equal(notEnrollable(by('sleep-plain')), undefined, 'a mode none pod can be enrolled');
  t.match(notEnrollable(by('sleep-sc')), /sidecar/);
  t.match(notEnrollable(by('ztunnel-node-a')), /ztunnel pod/);
  t.match(notEnrollable(by('coredns')), /cluster DNS/);
  t.throws(() => selectPod(plan, 'sleep-sc'), UserError);
  t.throws(() => selectPod(plan, 'nosuch'), /no pod "nosuch"/);
  t.throws(() => selectNamespace(plan, 'istio-system'), /ztunnel pods/);
  t.throws(() => selectNamespace(plan, 'nons'), /no namespace "nons"/);
  const ns = selectNamespace(plan, 'default');
  t.ok(ns.pods.every((p) => p.role === 'workload' && p.mode !== 'sidecar'), 'only pods istio-cni would act on');
  t.ok(ns.skipped.some((s) => /sidecar/.test(s.why)), 'sidecar pods reported as skipped');
});

t.test('nodeChanges: unenrolling sleep is its ipset entry and table 100 route on node-a, nothing else', async (t) => {
  const on = planned('topologies/demo.yaml');
  const off = planned('topologies/demo.yaml', { sleep: 'none' });
  const sleep = on.plan.pods.find((p) => p.name === 'sleep')!;
  const down = nodeChanges(on.build, off.build);
  t.same(down.map((c) => c.netns), ['al-demo-node-node-a']);
  t.same(down[0].commands, [
    ['ipset', 'del', 'ztunnel-pods-ips', sleep.ip, '-exist'],
    ['ip', 'route', 'del', 'table', '100', `${sleep.ip}/32`, 'via', '192.168.126.2', 'dev', 'istioin', 'src', '10.244.0.1'],
  ]);
  const up = nodeChanges(off.build, on.build);
  t.same(up[0].commands, [
    ['ip', 'route', 'replace', 'table', '100', `${sleep.ip}/32`, 'via', '192.168.126.2', 'dev', 'istioin', 'src', '10.244.0.1'],
    ['sysctl', '-q', '-w', `net.ipv4.conf.${sleep.hostVeth}.rp_filter=0`],
    ['ipset', 'add', 'ztunnel-pods-ips', sleep.ip, 'comment', sleep.uid, '-exist'],
  ], 'route first, then the set (as the UID comment istio-cni writes)');
  t.same(nodeChanges(on.build, on.build), [], 'no change, no command');
});

t.test('nodeChanges refuses a difference enrolment does not make', async (t) => {
  const a = planned('topologies/demo.yaml');
  const b = planned('topologies/demo.yaml');
  b.build.netns.find((n) => n.kind === 'node')!.config.rules.pop();
  t.throws(() => nodeChanges(a.build, b.build), /more than the ipset/);
});

t.test('lab break: scenarios, seeded pick, symptoms without the cause', async (t) => {
  t.same(SCENARIOS.map((s) => s.id), ['ip-rule', 'ipset-entry', 'tproxy', 'rp-filter', 'deny-policy']);
  t.equal(pickScenario(7).id, pickScenario(7).id, 'a seed always picks the same');
  t.same(new Set(Array.from({ length: 100 }, (_, i) => pickScenario(i).id)).size, SCENARIOS.length, 'every scenario is reachable');
  t.throws(() => findScenario('nosuch'), UserError);
  const pods = { client: { name: 'sleep' }, server: { name: 'httpbin' } } as never;
  for (const s of SCENARIOS) t.notMatch(s.symptom(pods), /rule|ipset|TPROXY|rp_filter|polic|istioout|mark/i, `${s.id}: "${s.symptom(pods)}"`);
});

t.test('exercise 09 is registered, written, with its page', async (t) => {
  const e = EXERCISES.find((x) => x.id === '09')!;
  t.ok(e?.written);
  t.equal(e.lab, 'ex09');
  t.ok(existsSync(exerciseFile(e)), exerciseFile(e));
  t.same(e.answers.map((a) => a.key), ['scenario', 'where']);
});
