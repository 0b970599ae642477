// Good topologies: defaults, the example files in topologies/, and the addresses the
// plan gives them (what `lab up` will build).
import t from 'tap';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadTopology, parseTopology } from '../../src/topology/load.js';
import { planAddresses, podUid } from '../../src/topology/address-plan.js';

const minimal = 'nodes:\n  - name: node-a\n';

t.test('defaults fill in everything the file leaves out', async (t) => {
  const topo = parseTopology(`${minimal}pods:\n  - name: sleep\n    node: node-a\n`, 'labs/mini.yaml');
  t.equal(topo.name, 'mini', 'lab name from the file name');
  t.equal(topo.file, resolve('labs/mini.yaml'), 'file is absolute');
  t.equal(topo.tunnel, 'auto');
  t.same(topo.network, { nodeCidr: '172.18.0.0/16', podCidr: '10.244.0.0/16', serviceCidr: '10.96.0.0/16', dnsIp: '10.96.0.10' });
  t.same(topo.nodes, [{ name: 'node-a', index: 0 }]);
  t.same(topo.pods, [{
    name: 'sleep', namespace: 'default', node: 'node-a', serviceAccount: 'sleep', labels: { app: 'sleep' },
    mode: 'ambient', app: 'sleep', uid: podUid('mini', 'default', 'sleep'),
  }]);
  t.match(topo.pods[0].uid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.same(topo.services, []);
  t.same(topo.policies, []);
});

t.test('explicit values are kept and normalized', async (t) => {
  const topo = parseTopology(`
name: lab1
tunnel: userspace
dnsCapture: true
network: {nodeCidr: 192.168.10.0/24, podCidr: 10.50.0.0/16, serviceCidr: 10.60.0.0/20, dnsIp: 10.60.0.53}
nodes: [{name: n1}, {name: n2}]
pods:
  - name: worker.v2
    namespace: jobs
    node: n2
    serviceAccount: runner
    labels: {app.kubernetes.io/name: worker, tier: ""}
    command: [sh, -c, "sleep 1d"]
    mode: none
services:
  - name: worker
    namespace: jobs
    selector: {app.kubernetes.io/name: worker}
    ports:
      - {name: dns, port: 53, protocol: UDP}
      - {name: dns-tcp, port: 53, targetPort: 5353}
waypoints: []
`, 'x.yaml');
  t.equal(topo.name, 'lab1');
  t.equal(topo.tunnel, 'userspace');
  t.equal(topo.dnsCapture, true);
  t.equal(topo.network.dnsIp, '10.60.0.53');
  t.same(topo.nodes.map((n) => [n.name, n.index]), [['n1', 0], ['n2', 1]]);
  const [pod] = topo.pods;
  t.same(pod.command, ['sh', '-c', 'sleep 1d']);
  t.equal(pod.app, undefined, 'a command replaces the default app');
  t.same(pod.labels, { 'app.kubernetes.io/name': 'worker', tier: '' }, 'labels replace the default');
  t.equal(pod.mode, 'none');
  t.equal(pod.uid, podUid('lab1', 'jobs', 'worker.v2'));
  t.same(topo.services[0].ports, [
    { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' },
    { name: 'dns-tcp', port: 53, targetPort: 5353, protocol: 'TCP' },
  ]);
  const plan = planAddresses(topo);
  t.equal(plan.nodes[1].ip, '192.168.10.3');
  t.equal(plan.nodes[1].podCidr, '10.50.1.0/24');
  t.equal(plan.services[1].vip, '10.60.0.11');
});

t.test('policies keep Istio\'s L4 shape', async (t) => {
  const topo = parseTopology(`${minimal}policies:
  - name: deny-sleep
    action: DENY
    selector: {app: httpbin}
    rules:
      - from:
          - source: {principals: ["cluster.local/ns/default/sa/sleep"], notNamespaces: [kube-system]}
          - source: {ipBlocks: [10.244.0.0/16, 10.244.1.7], notIpBlocks: ["10.244.0.3"]}
        to:
          - operation: {ports: ["80"], notPorts: ["9999"]}
  - name: allow-nothing
    namespace: web
    selector: {}
`, 'p.yaml');
  t.same(topo.policies, [
    {
      name: 'deny-sleep', namespace: 'default', action: 'DENY', selector: { app: 'httpbin' },
      rules: [{
        from: [
          { source: { principals: ['cluster.local/ns/default/sa/sleep'], notNamespaces: ['kube-system'] } },
          { source: { ipBlocks: ['10.244.0.0/16', '10.244.1.7'], notIpBlocks: ['10.244.0.3'] } },
        ],
        to: [{ operation: { ports: ['80'], notPorts: ['9999'] } }],
      }],
    },
    // An empty selector means the whole namespace, the same as no selector.
    { name: 'allow-nothing', namespace: 'web', action: 'ALLOW', rules: [] },
  ]);
});

t.test('empty optional lists and YAML anchors are accepted', async (t) => {
  const topo = parseTopology(`
name: anchors
nodes: [{name: node-a}]
pods:
  - &web {name: web-1, node: node-a, app: httpbin, labels: {app: web}}
  - {name: web-2, node: node-a, app: httpbin, labels: {app: web}}
services:
policies:
waypoints:
`, 'a.yaml');
  t.equal(topo.pods.length, 2);
  t.same(topo.services, []);
  t.same(topo.policies, []);
});

t.test('250 pods fit on one node, each with its own address', async (t) => {
  const pods = Array.from({ length: 250 }, (_, i) => `  - {name: p${i}, node: node-a}`).join('\n');
  const topo = parseTopology(`name: full\n${minimal}pods:\n${pods}\n`, 'full.yaml');
  const plan = planAddresses(topo);
  const ips = plan.pods.map((p) => p.ip);
  t.equal(new Set(ips).size, ips.length, 'no two pods share an IP');
  // Node 0 also holds ztunnel (.2) and coredns (.3): the last user pod gets .253.
  t.equal(plan.pods[plan.pods.length - 1].ip, '10.244.0.253');
});

t.test('a /28 service CIDR holds the 4 Services the loader allows', async (t) => {
  const svcs = [1, 2, 3, 4].map((i) => `  - {name: s${i}, selector: {app: sleep}, ports: [{port: 80}]}`).join('\n');
  const topo = parseTopology(`name: small\nnetwork: {serviceCidr: 10.96.0.0/28}\n${minimal}pods: [{name: sleep, node: node-a}]\nservices:\n${svcs}\n`, 's.yaml');
  t.same(planAddresses(topo).services.map((s) => s.vip), ['10.96.0.10', '10.96.0.11', '10.96.0.12', '10.96.0.13', '10.96.0.14']);
});

t.test('errors are UserErrors naming the file as given', async (t) => {
  t.throws(() => loadTopology('does/not/exist.yaml'), { name: 'UserError', message: 'does/not/exist.yaml: cannot read the topology file: no such file' });
  t.throws(() => parseTopology('nodes: [{name: a}]\npods: [{name: x, node: b}]\n', 'rel/t.yaml'),
    { name: 'UserError', message: 'rel/t.yaml:2:24: pods[0].node: unknown node "b" (nodes are: a)' });
  t.throws(() => parseTopology(`${minimal}pods: [{name: sleep, node: node-a, labels: {"a/b/c": x}}]\n`, 't.yaml'),
    { message: /pods\[0\]\.labels\["a\/b\/c"\]: invalid label key/ });
});

t.test('every topology in topologies/ loads and plans', async (t) => {
  const files = readdirSync('topologies').filter((f) => f.endsWith('.yaml'));
  t.ok(files.length >= 4, 'the four example topologies are there');
  for (const f of files) {
    const topo = loadTopology(`topologies/${f}`);
    const plan = planAddresses(topo);
    const ips = plan.pods.map((p) => p.ip);
    t.equal(new Set(ips).size, ips.length, `${f}: no two pods share an IP`);
    const vips = plan.services.map((s) => s.vip);
    t.equal(new Set(vips).size, vips.length, `${f}: no two Services share a VIP`);
    for (const s of plan.services) t.ok(s.endpoints.length > 0, `${f}: ${s.key} has endpoints`);
  }
});

t.test('demo.yaml', async (t) => {
  const topo = loadTopology('topologies/demo.yaml');
  t.equal(topo.name, 'demo');
  t.same(topo.nodes.map((n) => n.name), ['node-a', 'node-b']);
  t.same(topo.pods.map((p) => [p.name, p.node, p.app, p.mode]), [['sleep', 'node-a', 'sleep', 'ambient'], ['httpbin', 'node-b', 'httpbin', 'ambient']]);
  t.same(topo.services, [{ name: 'httpbin', namespace: 'default', selector: { app: 'httpbin' }, ports: [{ port: 8000, targetPort: 80, protocol: 'TCP' }] }]);
  const plan = planAddresses(topo);
  const node = (n: string) => plan.nodes.find((x) => x.name === n)!;
  const pod = (k: string) => plan.pods.find((x) => x.key === k)!;
  t.equal(node('node-a').ip, '172.18.0.2');
  t.equal(node('node-b').ip, '172.18.0.3');
  t.equal(node('node-b').podCidr, '10.244.1.0/24');
  t.equal(pod('istio-system/ztunnel-node-a').ip, '10.244.0.2', 'ztunnel is the first pod on its node');
  // coredns lives on the first node and comes before user pods, so sleep gets .4, not .3.
  t.equal(pod('kube-system/coredns').ip, '10.244.0.3');
  t.equal(pod('default/sleep').ip, '10.244.0.4');
  t.equal(pod('default/httpbin').ip, '10.244.1.3');
  const httpbin = plan.services.find((s) => s.key === 'default/httpbin')!;
  t.equal(httpbin.vip, '10.96.0.11');
  t.same(httpbin.endpoints, [{ pod: 'default/httpbin', ip: '10.244.1.3' }]);
});

t.test('three-nodes.yaml: httpbin endpoints span nodes', async (t) => {
  const plan = planAddresses(loadTopology('topologies/three-nodes.yaml'));
  t.equal(plan.nodes.length, 3);
  const httpbin = plan.services.find((s) => s.key === 'default/httpbin')!;
  const nodesOf = httpbin.endpoints.map((e) => plan.pods.find((p) => p.key === e.pod)!.node);
  t.same(nodesOf, ['node-b', 'node-c']);
  const echo = plan.services.find((s) => s.key === 'default/echo')!;
  t.same(echo.ports.map((p) => [p.port, p.targetPort]), [[9000, 9000]]);
  t.equal(echo.vip, '10.96.0.12');
});

t.test('namespaces.yaml: two namespaces, long names, mixed modes', async (t) => {
  const topo = loadTopology('topologies/namespaces.yaml');
  t.same([...new Set(topo.pods.map((p) => p.namespace))].sort(), ['backend', 'frontend']);
  t.ok(topo.pods.some((p) => p.name === 'productpage-v1-7b4dbf9c75-pktj7'));
  t.same([...new Set(topo.pods.map((p) => p.mode))].sort(), ['ambient', 'none']);
  t.ok(topo.pods.filter((p) => p.labels.app !== 'sleep').every((p) => p.labels.version), 'app pods carry a version label');
  const reviews = planAddresses(topo).services.find((s) => s.key === 'backend/reviews')!;
  t.equal(reviews.endpoints.length, 2, 'reviews v1 and v2 are both endpoints');
});

t.test('plain.yaml: nothing in the mesh', async (t) => {
  const topo = loadTopology('topologies/plain.yaml');
  t.ok(topo.pods.length > 0);
  t.same([...new Set(topo.pods.map((p) => p.mode))], ['none']);
});
