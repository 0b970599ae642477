// What a waypoint accepts a CONNECT for (reference §5: only its own pods and Services): the
// Service VIP:port a client ztunnel keeps as authority, or a pod it serves; anything else is
// refused (the inbound answers 401 with the reason).
import t from 'tap';
import { resolveServed } from '../../src/waypoint/served.js';
import { WorkloadStore, type Workload, type Service } from '../../src/mesh/workloads.js';

const WP = '10.244.0.7';
const w = (name: string, ip: string, waypoint: string[]): Workload => ({
  workloadIp: ip, waypointAddresses: waypoint, gatewayAddress: null, protocol: 'HBONE', name, namespace: 'default',
  trustDomain: 'cluster.local', serviceAccount: name, workloadName: name, workloadType: 'pod', canonicalName: name,
  canonicalRevision: 'latest', node: 'node-b', nativeHbone: false, authorizationPolicies: [], status: 'Healthy', clusterId: 'Kubernetes',
});
const svc = (name: string, vip: string, endpoints: string[]): Service => ({
  name, namespace: 'default', hostname: `${name}.default.svc.cluster.local`, vips: [vip], ports: { 9080: 80 }, endpoints,
});
const store = new WorkloadStore({
  workloads: [w('reviews-v1', '10.244.1.3', [WP]), w('reviews-v2', '10.244.1.4', [WP]), w('ratings', '10.244.1.5', []), w('other-wp', '10.244.1.6', ['10.244.0.9'])],
  services: [svc('reviews', '10.96.0.11', ['10.244.1.3', '10.244.1.4', '10.244.1.5']), svc('ratings', '10.96.0.12', ['10.244.1.5'])],
  policies: [],
});

t.test('a Service VIP:port: only the endpoints this waypoint serves', async (t) => {
  const r = resolveServed(store, WP, { ip: '10.96.0.11', port: 9080 });
  t.match(r, { kind: 'service', port: 9080, targetPort: 80 });
  t.same('endpoints' in r ? r.endpoints.map((e) => e.name) : [], ['reviews-v1', 'reviews-v2'], 'ratings behind the same Service has no waypoint: not picked');
  t.same(resolveServed(store, WP, { ip: '10.96.0.11', port: 9999 }), { refused: 'Service reviews.default.svc.cluster.local has no port 9999' });
  t.same(resolveServed(store, WP, { ip: '10.96.0.12', port: 9080 }), { refused: 'Service ratings.default.svc.cluster.local has no workload this waypoint serves' });
});

t.test('a pod IP:port: only a pod whose waypointAddresses name this waypoint', async (t) => {
  t.match(resolveServed(store, WP, { ip: '10.244.1.3', port: 80 }), { kind: 'workload', workload: { name: 'reviews-v1' }, port: 80 });
  t.same(resolveServed(store, WP, { ip: '10.244.1.5', port: 80 }), { refused: '10.244.1.5 is neither a Service nor a workload this waypoint serves' }, 'a pod without a waypoint');
  t.same(resolveServed(store, WP, { ip: '10.244.1.6', port: 80 }), { refused: '10.244.1.6 is neither a Service nor a workload this waypoint serves' }, 'another waypoint\'s pod');
  t.match(resolveServed(store, WP, { ip: '10.0.0.1', port: 80 }), { refused: /neither/ }, 'an address outside the mesh');
});
