// The per-node ztunnel config the lab writes, against a golden file (UPDATE_GOLDEN=1
// rewrites it), plus the naming rules it encodes.
import t, { type Test } from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planAddresses, podUid } from '../../src/topology/address-plan.js';
import type { PodSpec, Topology } from '../../src/topology/types.js';
import { workloadNameOf, ztunnelConfigFromPlan, ztunnelIdentities } from '../../src/ztunnel/config-from-plan.js';
import { formatSpiffe } from '../../src/mesh/identity.js';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden', 'ztunnel');

function golden(tt: Test, file: string, actual: string): void {
  const path = join(GOLDEN, file);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
  }
  tt.equal(actual, readFileSync(path, 'utf8'), `matches golden ${file}`);
}

const pod = (p: Omit<PodSpec, 'uid'>): PodSpec => ({ ...p, uid: podUid('mini', p.namespace, p.name) });

const topology: Topology = {
  name: 'mini',
  file: '/labs/mini.yaml',
  network: { nodeCidr: '172.18.0.0/16', podCidr: '10.244.0.0/16', serviceCidr: '10.96.0.0/16', dnsIp: '10.96.0.10' },
  tunnel: 'auto',
  nodes: [{ name: 'node-a', index: 0 }, { name: 'node-b', index: 1 }],
  pods: [
    pod({ name: 'sleep', namespace: 'default', node: 'node-a', serviceAccount: 'sleep', labels: { app: 'sleep' }, app: 'sleep', mode: 'ambient' }),
    pod({
      name: 'productpage-v1-7b4dbf9c75-pktj7', namespace: 'default', node: 'node-b', serviceAccount: 'bookinfo-productpage',
      labels: { app: 'productpage', version: 'v1' }, app: 'httpbin', mode: 'ambient',
    }),
    pod({
      name: 'httpbin', namespace: 'default', node: 'node-b', serviceAccount: 'httpbin',
      labels: { app: 'httpbin', 'service.istio.io/canonical-name': 'httpbin-canon', 'service.istio.io/canonical-revision': 'r7' }, app: 'httpbin', mode: 'sidecar',
    }),
    pod({ name: 'legacy', namespace: 'legacy', node: 'node-a', serviceAccount: 'default', labels: { app: 'legacy' }, app: 'httpbin', mode: 'none' }),
  ],
  services: [
    { name: 'httpbin', namespace: 'default', selector: { app: 'httpbin' }, ports: [{ name: 'http', port: 8000, targetPort: 80, protocol: 'TCP' }] },
    { name: 'productpage', namespace: 'default', selector: { app: 'productpage' }, ports: [{ name: 'http', port: 9080, targetPort: 80, protocol: 'TCP' }] },
  ],
  policies: [
    {
      name: 'allow-sleep', namespace: 'default', action: 'ALLOW', selector: { app: 'httpbin' },
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }], to: [{ operation: { ports: ['80'] } }] }],
    },
    { name: 'deny-legacy', namespace: 'default', action: 'DENY', rules: [{ from: [{ source: { namespaces: ['legacy'], notIpBlocks: ['10.244.0.0/24'] } }] }] },
  ],
};

t.test('config for node-a matches the golden file', async (t) => {
  const plan = planAddresses(topology);
  const cfg = ztunnelConfigFromPlan(plan, 'node-a', { certDir: '/state/mini/certs/ztunnel-node-a' });
  golden(t, 'mini-node-a.json', JSON.stringify(cfg, null, 2) + '\n');

  const byName = new Map(cfg.workloads.map((w) => [w.name, w]));
  t.equal(cfg.instanceIp, plan.pods.find((p) => p.name === 'ztunnel-node-a')!.ip, 'instanceIp = the ztunnel pod IP');
  t.equal(byName.get('sleep')!.protocol, 'HBONE');
  t.equal(byName.get('sleep')!.nativeHbone, false);
  t.equal(byName.get('httpbin')!.nativeHbone, true, 'sidecar pod terminates HBONE itself');
  t.equal(byName.get('legacy')!.protocol, 'TCP');
  t.equal(byName.get('coredns')!.protocol, 'TCP');
  t.equal(byName.get('ztunnel-node-b')!.protocol, 'TCP');
  t.same(byName.get('httpbin')!.authorizationPolicies, ['default/allow-sleep']);
  t.same(byName.get('sleep')!.authorizationPolicies, []);
  const pp = byName.get('productpage-v1-7b4dbf9c75-pktj7')!;
  t.same([pp.workloadName, pp.workloadType, pp.canonicalName, pp.canonicalRevision], ['productpage-v1', 'deployment', 'productpage', 'v1']);
  const hb = byName.get('httpbin')!;
  t.same([hb.workloadName, hb.workloadType, hb.canonicalName, hb.canonicalRevision], ['httpbin', 'pod', 'httpbin-canon', 'r7']);
  const svc = cfg.services.find((s) => s.name === 'httpbin')!;
  t.same(svc.ports, { 8000: 80 });
  t.equal(svc.hostname, 'httpbin.default.svc.cluster.local');
  t.same(cfg.services.find((s) => s.name === 'kube-dns')!.ports, { 53: 53 }, 'only the TCP port of kube-dns');
  t.same(cfg.policies.map((p) => [p.name, p.scope, p.action]), [['allow-sleep', 'WorkloadSelector', 'Allow'], ['deny-legacy', 'Namespace', 'Deny']]);
});

t.test('workload names like Kubernetes Deployments', async (t) => {
  t.same(workloadNameOf('productpage-v1-7b4dbf9c75-pktj7'), { workloadName: 'productpage-v1', workloadType: 'deployment' });
  t.same(workloadNameOf('sleep-5b8d7c9f4-x2k9m'), { workloadName: 'sleep', workloadType: 'deployment' });
  t.same(workloadNameOf('sleep'), { workloadName: 'sleep', workloadType: 'pod' });
  t.same(workloadNameOf('my-app-v1'), { workloadName: 'my-app-v1', workloadType: 'pod' });
  t.same(workloadNameOf('web-abc12-aeiou'), { workloadName: 'web-abc12-aeiou', workloadType: 'pod' }, 'vowels never appear in generated suffixes');
});

t.test('a ztunnel holds the identities of its node\'s pods, except sidecar pods (istiod\'s node authorization)', async (t) => {
  const plan = planAddresses(topology);
  t.same(ztunnelIdentities(plan, 'node-a').map(formatSpiffe), ['spiffe://cluster.local/ns/default/sa/sleep', 'spiffe://cluster.local/ns/legacy/sa/default'],
    'node-a: sleep, and legacy (plaintext: its traffic may be hairpinned to a waypoint)');
  t.same(ztunnelIdentities(plan, 'node-b').map(formatSpiffe), ['spiffe://cluster.local/ns/default/sa/bookinfo-productpage'],
    'node-b: productpage; httpbin is a sidecar pod and terminates its own HBONE');
});
