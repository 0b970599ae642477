// The outbound decision as a table, with no sockets (ztunnel's build_request tests): each
// row is a proxy (kind, node), a destination and the request it must produce.
import t from 'tap';
import { buildOutboundRequest, type OutboundProxy, type OutboundRequest } from '../../src/proxy/outbound-request.js';
import { WorkloadStore, type Service, type Workload } from '../../src/mesh/workloads.js';

const wl = (ip: string, name: string, node: string, extra: Partial<Workload> = {}): Workload => ({
  workloadIp: ip, waypointAddresses: [], gatewayAddress: null, protocol: 'HBONE', name, namespace: 'default',
  trustDomain: 'cluster.local', serviceAccount: name, workloadName: name, workloadType: 'pod', canonicalName: name,
  canonicalRevision: 'latest', node, nativeHbone: false, authorizationPolicies: [], status: 'Healthy', clusterId: 'Kubernetes', ...extra,
});

const svc = (name: string, vip: string, ports: Record<string, number>, endpoints: string[]): Service =>
  ({ name, namespace: 'default', hostname: `${name}.default.svc.cluster.local`, vips: [vip], ports, endpoints });

// node-a: ztunnel 10.244.0.2, sleep .3, local .4, sidecar .5 (native HBONE); node-b: httpbin, legacy (TCP), waypoint, gw (gatewayAddress).
const workloads = [
  wl('10.244.0.2', 'ztunnel-node-a', 'node-a', { protocol: 'TCP', namespace: 'istio-system' }),
  wl('10.244.0.3', 'sleep', 'node-a'),
  wl('10.244.0.4', 'local', 'node-a'),
  wl('10.244.0.5', 'sidecar', 'node-a', { nativeHbone: true }),
  wl('10.244.1.3', 'httpbin', 'node-b'),
  wl('10.244.1.4', 'legacy', 'node-b', { protocol: 'TCP' }),
  wl('10.244.1.5', 'waypoint', 'node-b'),
  wl('10.244.1.6', 'behind-wp', 'node-b', { waypointAddresses: ['10.244.1.5'] }),
  wl('10.244.1.7', 'gw', 'node-b', { gatewayAddress: '172.18.0.9:15009' }),
  wl('10.244.1.8', 'sick', 'node-b', { status: 'Unhealthy' }),
  wl('10.244.1.9', 'lost-wp', 'node-b', { waypointAddresses: ['10.244.9.9'] }),
];
const services = [
  svc('httpbin', '10.96.0.11', { 8000: 80 }, ['10.244.1.3']),
  svc('local', '10.96.0.12', { 8000: 80 }, ['10.244.0.4']),
  svc('legacy', '10.96.0.13', { 80: 8080 }, ['10.244.1.4']),
  svc('sick', '10.96.0.14', { 80: 80 }, ['10.244.1.8']),
  svc('behind-wp', '10.96.0.15', { 80: 8080 }, ['10.244.1.6']),
];
const store = new WorkloadStore({ workloads, services, policies: [] });

const ZT: OutboundProxy = { kind: 'ztunnel', node: 'node-a', instanceIp: '10.244.0.2' };
const SC: OutboundProxy = { kind: 'sidecar', node: 'node-a', instanceIp: '10.244.0.3' };
const sa = (name: string, ns = 'default') => ({ trustDomain: 'cluster.local', namespace: ns, serviceAccount: name });

interface Row {
  name: string;
  proxy: OutboundProxy;
  dst: string;
  want: Partial<Record<keyof OutboundRequest | 'hboneAddr' | 'authority' | 'expected' | 'waypoint' | 'workload' | 'service', unknown>> | { error: RegExp };
}

const rows: Row[] = [
  { name: 'VIP -> endpoint pod over HBONE, target port', proxy: ZT, dst: '10.96.0.11:8000',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.1.3', port: 15008 }, authority: '10.244.1.3:80', target: { ip: '10.244.1.3', port: 80 }, expected: sa('httpbin'), service: { name: 'httpbin' } } },
  { name: 'pod IP -> HBONE, same port', proxy: ZT, dst: '10.244.1.3:80',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.1.3', port: 15008 }, authority: '10.244.1.3:80', expected: sa('httpbin') } },
  { name: 'ztunnel, same node: fast path', proxy: ZT, dst: '10.244.0.4:80', want: { kind: 'direct-local', target: { ip: '10.244.0.4', port: 80 } } },
  { name: 'ztunnel, same node via VIP: fast path to the endpoint', proxy: ZT, dst: '10.96.0.12:8000', want: { kind: 'direct-local', target: { ip: '10.244.0.4', port: 80 }, service: { name: 'local' } } },
  { name: 'sidecar, same node: HBONE even so', proxy: SC, dst: '10.244.0.4:80',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.0.4', port: 15008 }, authority: '10.244.0.4:80', expected: sa('local') } },
  { name: 'sidecar, same node via VIP: HBONE to the endpoint', proxy: SC, dst: '10.96.0.12:8000',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.0.4', port: 15008 }, authority: '10.244.0.4:80' } },
  { name: 'ztunnel, same node, native HBONE (sidecar pod): HBONE to the pod', proxy: ZT, dst: '10.244.0.5:80',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.0.5', port: 15008 }, expected: sa('sidecar') } },
  { name: 'ztunnel, remote node: HBONE', proxy: ZT, dst: '10.244.1.3:9000', want: { kind: 'hbone', authority: '10.244.1.3:9000' } },
  { name: 'sidecar, remote node: HBONE', proxy: SC, dst: '10.244.1.3:9000', want: { kind: 'hbone', authority: '10.244.1.3:9000' } },
  { name: 'TCP workload: plain TCP', proxy: ZT, dst: '10.244.1.4:8080', want: { kind: 'tcp', target: { ip: '10.244.1.4', port: 8080 } } },
  { name: 'TCP workload via VIP: plain TCP to the target port', proxy: SC, dst: '10.96.0.13:80', want: { kind: 'tcp', target: { ip: '10.244.1.4', port: 8080 } } },
  { name: 'unknown IP: passthrough', proxy: ZT, dst: '93.184.216.34:443', want: { kind: 'passthrough', target: { ip: '93.184.216.34', port: 443 } } },
  { name: 'sidecar, unknown IP: passthrough', proxy: SC, dst: '93.184.216.34:443', want: { kind: 'passthrough' } },
  { name: 'VIP, port not in the Service: passthrough', proxy: ZT, dst: '10.96.0.11:9999', want: { kind: 'passthrough', target: { ip: '10.96.0.11', port: 9999 } } },
  { name: 'VIP without a healthy endpoint: passthrough', proxy: ZT, dst: '10.96.0.14:80', want: { kind: 'passthrough' } },
  { name: 'waypoint: HBONE to the waypoint, authority keeps the VIP', proxy: ZT, dst: '10.96.0.15:80',
    want: { kind: 'hbone', hboneAddr: { ip: '10.244.1.5', port: 15008 }, authority: '10.96.0.15:80', target: { ip: '10.96.0.15', port: 80 }, expected: sa('waypoint'), waypoint: { name: 'waypoint' } } },
  { name: 'waypoint by pod IP', proxy: SC, dst: '10.244.1.6:8080', want: { kind: 'hbone', hboneAddr: { ip: '10.244.1.5', port: 15008 }, authority: '10.244.1.6:8080' } },
  { name: 'unknown waypoint: refused', proxy: ZT, dst: '10.244.1.9:80', want: { error: /waypoint 10.244.9.9 of default\/lost-wp is not a known workload/ } },
  { name: 'gatewayAddress: HBONE to the gateway, authority the pod', proxy: ZT, dst: '10.244.1.7:80',
    want: { kind: 'hbone', hboneAddr: { ip: '172.18.0.9', port: 15009 }, authority: '10.244.1.7:80' } },
  { name: 'ztunnel: its own address is a SelfCall', proxy: ZT, dst: '10.244.0.2:15001', want: { error: /SelfCall/ } },
  { name: 'sidecar: its pod\'s own address is not refused', proxy: SC, dst: '10.244.0.3:80', want: { kind: 'hbone', hboneAddr: { ip: '10.244.0.3', port: 15008 } } },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const [ip, port] = row.dst.split(':');
    const build = () => buildOutboundRequest(store, row.proxy, { ip, port: Number(port) }, () => 0);
    if ('error' in row.want) {
      t.throws(build, { name: 'OutboundError', message: row.want.error });
    } else {
      t.match(build(), row.want);
    }
  });
}

t.test('VIP endpoints are chosen uniformly at random among healthy ones', async (t) => {
  const two = new WorkloadStore({ workloads, services: [svc('pair', '10.96.0.20', { 80: 80 }, ['10.244.1.3', '10.244.1.8', '10.244.1.4'])], policies: [] });
  const pick = (r: number) => (buildOutboundRequest(two, ZT, { ip: '10.96.0.20', port: 80 }, () => r) as { workload: Workload }).workload.name;
  t.equal(pick(0), 'httpbin', 'low random -> first healthy');
  t.equal(pick(0.99), 'legacy', 'high random -> last healthy; the unhealthy one is never chosen');
});
