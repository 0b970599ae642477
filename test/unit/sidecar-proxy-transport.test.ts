// How a sidecar reaches the endpoint it chose, as a table with no sockets (reference §4 "the
// four paths"; waypoint-and-sidecar.md §8): the proxy core's decision (kind 'sidecar') and the
// sidecar's own choice of carrier for each kind of peer, with HBONE on and off.
import t from 'tap';
import { WorkloadStore, type Service, type Workload } from '../../src/mesh/workloads.js';
import { decideTransport, type EndpointTransport } from '../../src/sidecar-proxy/transport.js';

const wl = (ip: string, name: string, extra: Partial<Workload> = {}): Workload => ({
  workloadIp: ip, waypointAddresses: [], gatewayAddress: null, protocol: 'HBONE', name, namespace: 'default',
  trustDomain: 'cluster.local', serviceAccount: name, workloadName: name, workloadType: 'pod', canonicalName: name,
  canonicalRevision: 'latest', node: 'node-b', nativeHbone: false, authorizationPolicies: [], status: 'Healthy', clusterId: 'Kubernetes', ...extra,
});
const svc = (name: string, vip: string, ports: Record<string, number>, endpoints: string[]): Service =>
  ({ name, namespace: 'default', hostname: `${name}.default.svc.cluster.local`, vips: [vip], ports, endpoints });

// This sidecar: productpage 10.244.0.3 on node-a. Peers on node-b (and one on node-a).
const workloads = [
  wl('10.244.0.3', 'productpage', { node: 'node-a', nativeHbone: true }),
  wl('10.244.0.4', 'sleep', { node: 'node-a' }),
  wl('10.244.1.3', 'ratings'),
  wl('10.244.1.5', 'reviews-istio-waypoint', { nativeHbone: true }),
  wl('10.244.1.6', 'reviews', { waypointAddresses: ['10.244.1.5'] }),
  wl('10.244.1.7', 'details', { protocol: 'TCP' }),
  wl('10.244.1.8', 'mysql', { nativeHbone: true }),
  wl('10.244.1.9', 'legacy', { protocol: 'TCP', namespace: 'legacy' }),
];
const services = [
  svc('ratings', '10.96.0.11', { 9080: 9080 }, ['10.244.1.3']),
  svc('reviews', '10.96.0.15', { 9080: 8080 }, ['10.244.1.6']),
  svc('details', '10.96.0.16', { 9080: 9080 }, ['10.244.1.7']),
];
const store = new WorkloadStore({ workloads, services, policies: [] });
const sa = (name: string) => ({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: name });
// details is a sidecar without HBONE: the planner lists it as an mTLS-only peer.
const base = { node: 'node-a', instanceIp: '10.244.0.3', mtlsOnlyPeers: ['10.244.1.7'] };

interface Row {
  name: string;
  hbone: boolean;
  dst: string;
  want: Partial<Record<keyof EndpointTransport | 'authority' | 'hboneAddr' | 'expected' | 'waypoint' | 'workload', unknown>>;
}

const rows: Row[] = [
  { name: 'ambient pod: HBONE to the pod:15008, authority pod:port', hbone: true, dst: '10.244.1.3:9080',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.1.3', port: 15008 }, authority: '10.244.1.3:9080', expected: sa('ratings') } },
  { name: 'ambient pod via its VIP: the endpoint and its target port', hbone: true, dst: '10.96.0.11:9080',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.1.3', port: 15008 }, authority: '10.244.1.3:9080' } },
  { name: 'ambient pod on the same node: still HBONE (no fast path in a sidecar)', hbone: true, dst: '10.244.0.4:80',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.0.4', port: 15008 }, authority: '10.244.0.4:80' } },
  { name: 'pod with a waypoint: HBONE to waypoint:15008, authority = the pod the sidecar chose', hbone: true, dst: '10.96.0.15:9080',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.1.5', port: 15008 }, authority: '10.244.1.6:8080', target: { ip: '10.244.1.6', port: 8080 },
      expected: sa('reviews-istio-waypoint'), waypoint: { name: 'reviews-istio-waypoint' } } },
  { name: 'pod with a waypoint by pod IP: the same', hbone: true, dst: '10.244.1.6:8080',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.1.5', port: 15008 }, authority: '10.244.1.6:8080' } },
  { name: 'sidecar with HBONE: HBONE to its own :15008', hbone: true, dst: '10.244.1.8:3306',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.1.8', port: 15008 }, authority: '10.244.1.8:3306', expected: sa('mysql') } },
  { name: 'mTLS-only sidecar: Istio mTLS to the app port', hbone: true, dst: '10.96.0.16:9080',
    want: { kind: 'istio-mtls', target: { ip: '10.244.1.7', port: 9080 }, expected: sa('details') } },
  { name: 'mode none pod: plaintext to the pod', hbone: true, dst: '10.244.1.9:80',
    want: { kind: 'plaintext', target: { ip: '10.244.1.9', port: 80 }, workload: { name: 'legacy' } } },
  { name: 'unknown address: passthrough to where the app was going', hbone: true, dst: '93.184.216.34:443',
    want: { kind: 'passthrough', target: { ip: '93.184.216.34', port: 443 } } },
  { name: 'unknown port of a VIP: passthrough', hbone: true, dst: '10.96.0.11:1234', want: { kind: 'passthrough' } },
  // This proxy without HBONE: Istio mTLS to sidecars, plaintext to the rest (their ztunnel takes it).
  { name: 'HBONE off: sidecar peer -> Istio mTLS', hbone: false, dst: '10.244.1.8:3306',
    want: { kind: 'istio-mtls', target: { ip: '10.244.1.8', port: 3306 }, expected: sa('mysql') } },
  { name: 'HBONE off: ambient pod -> plaintext to the pod', hbone: false, dst: '10.96.0.11:9080',
    want: { kind: 'plaintext', target: { ip: '10.244.1.3', port: 9080 } } },
  { name: 'HBONE off: pod with a waypoint -> plaintext to the pod (its ztunnel hairpins it)', hbone: false, dst: '10.96.0.15:9080',
    want: { kind: 'plaintext', target: { ip: '10.244.1.6', port: 8080 } } },
  { name: 'HBONE off: a waypoint is not a sidecar peer -> plaintext', hbone: false, dst: '10.244.1.5:15008',
    want: { kind: 'plaintext' } },
  { name: 'HBONE off: mTLS-only peer -> Istio mTLS', hbone: false, dst: '10.244.1.7:9080', want: { kind: 'istio-mtls' } },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const [ip, port] = row.dst.split(':');
    t.match(decideTransport({ ...base, hbone: row.hbone }, store, { ip, port: Number(port) }, () => 0), row.want);
  });
}
