// Which waypoint serves which pod, and where the waypoint pod goes (istiod 1.18-1.20): a Gateway
// with `istio.io/for-service-account` serves that service account's ambient pods; one without
// serves the rest of its namespace; never another namespace, a mode:none pod, or a waypoint.
// The waypoint pod is `<gateway>-istio-waypoint`, labelled `istio.io/gateway-name`, on the
// node of `ambient-lab.io/node`, else the first node (the documented default).
import t from 'tap';
import { parseTopology } from '../../src/topology/load.js';
import { planAddresses } from '../../src/topology/address-plan.js';
import { waypointOf } from '../../src/ztunnel/config-from-plan.js';

const gateway = (name: string, ns: string, annotations: Record<string, string> = {}) => `
  - apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: ${name}, namespace: ${ns}, annotations: ${JSON.stringify(annotations)}}
    spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}`;

const plan = planAddresses(parseTopology(`name: wb
nodes: [{name: node-a}, {name: node-b}]
pods:
  - {name: sleep, node: node-a, app: sleep}
  - {name: reviews-v1, node: node-b, app: httpbin, serviceAccount: bookinfo-reviews}
  - {name: plain, node: node-b, app: sleep, mode: none}
  - {name: other, namespace: other, node: node-b, app: sleep}
resources:${gateway('namespace', 'default')}${gateway('bookinfo-reviews', 'default', { 'istio.io/for-service-account': 'bookinfo-reviews', 'ambient-lab.io/node': 'node-b' })}
`, 'wb.yaml'));

const pod = (key: string) => plan.pods.find((p) => p.key === key)!;
const served = (key: string) => waypointOf(plan, pod(key))?.key;

t.test('the waypoint pods, as Istio names and labels them', async (t) => {
  t.match(pod('default/namespace-istio-waypoint'), { role: 'waypoint', serviceAccount: 'namespace-istio-waypoint', labels: { 'istio.io/gateway-name': 'namespace' }, mode: 'none', node: 'node-a' },
    'no node annotation: the first node');
  t.match(pod('default/bookinfo-reviews-istio-waypoint'), { role: 'waypoint', labels: { 'istio.io/gateway-name': 'bookinfo-reviews' }, node: 'node-b' }, 'ambient-lab.io/node: node-b');
});

t.test('service account waypoint first, then the namespace\'s, never across namespaces', async (t) => {
  t.equal(served('default/reviews-v1'), 'default/bookinfo-reviews-istio-waypoint', 'its service account\'s waypoint');
  t.equal(served('default/sleep'), 'default/namespace-istio-waypoint', 'no waypoint for its service account: the namespace\'s');
  t.equal(served('other/other'), undefined, 'another namespace: none');
  t.equal(served('default/plain'), undefined, 'a mode:none pod: none');
  t.equal(served('default/namespace-istio-waypoint'), undefined, 'a waypoint itself: none');
});
