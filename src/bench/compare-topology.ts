// The comparison section's lab, generated: the same workload (a client pod calling an httpbin
// Service) once per data-path mode, all in one lab with the mesh, so every mode is measured at
// the same moment of a shared machine by the same load client:
//   none:                 sleep-plain -> httpbin-plain                      (no proxy at all)
//   ambient:              sleep -> ztunnel/node-a -> HBONE -> ztunnel/node-b -> httpbin
//   ambient + waypoint:   sleep -> ztunnel/node-a -> HBONE -> waypoint -> HBONE -> ztunnel/node-b -> httpbin-wp
//   sidecar (HBONE):      sleep-sc -> its sidecar -> HBONE :15008 -> httpbin-sc's sidecar -> httpbin-sc
//   sidecar (Istio mTLS): sleep-sc -> its sidecar -> TLS to :80 (REDIRECT 15006) -> httpbin-mtls's sidecar
// Clients on node-a, servers on node-b (cross-node); with `sameNode`, a second set of clients on
// node-b. Istio 1.18-1.20 binds a waypoint to a service account, so httpbin-wp has its own.

export type CompareMode = 'none' | 'ambient' | 'waypoint' | 'sidecar' | 'sidecar-mtls';
export type ComparePlacement = 'cross-node' | 'same-node';

export interface CompareModeSpec {
  mode: CompareMode;
  label: string;
  /** Short pod names of the client (per placement) and the server; the Service has the server's name. */
  client: Record<ComparePlacement, string>;
  server: string;
  /** Pod mode of the pair, as the topology writes it. */
  podMode: 'none' | 'ambient' | 'sidecar';
}

export const COMPARE_NAMESPACE = 'default';
export const COMPARE_PORT = 8000;
export const COMPARE_WAYPOINT = { gateway: 'httpbin-wp', serviceAccount: 'httpbin-wp', pod: 'httpbin-wp-istio-waypoint', node: 'node-a' } as const;

export const COMPARE_MODES: readonly CompareModeSpec[] = [
  { mode: 'none', label: 'none', client: { 'cross-node': 'sleep-plain', 'same-node': 'sleep-plain-b' }, server: 'httpbin-plain', podMode: 'none' },
  { mode: 'ambient', label: 'ambient', client: { 'cross-node': 'sleep', 'same-node': 'sleep-b' }, server: 'httpbin', podMode: 'ambient' },
  { mode: 'waypoint', label: 'ambient + waypoint', client: { 'cross-node': 'sleep', 'same-node': 'sleep-b' }, server: 'httpbin-wp', podMode: 'ambient' },
  { mode: 'sidecar', label: 'sidecar (HBONE)', client: { 'cross-node': 'sleep-sc', 'same-node': 'sleep-sc-b' }, server: 'httpbin-sc', podMode: 'sidecar' },
  { mode: 'sidecar-mtls', label: 'sidecar (Istio mTLS)', client: { 'cross-node': 'sleep-sc', 'same-node': 'sleep-sc-b' }, server: 'httpbin-mtls', podMode: 'sidecar' },
];

export const modeSpec = (m: CompareMode): CompareModeSpec => COMPARE_MODES.find((s) => s.mode === m)!;

interface PodLine {
  name: string;
  node: string;
  app: 'sleep' | 'httpbin';
  mode: 'none' | 'ambient' | 'sidecar';
  extra?: string;
}

/** Every pod of the comparison lab, in file order. */
export function comparePods(sameNode: boolean): PodLine[] {
  const pods: PodLine[] = [];
  const clients = new Map<string, 'none' | 'ambient' | 'sidecar'>();
  for (const s of COMPARE_MODES) clients.set(s.client['cross-node'], s.podMode);
  for (const [name, mode] of clients) pods.push({ name, node: 'node-a', app: 'sleep', mode });
  if (sameNode) for (const s of COMPARE_MODES) if (!pods.some((p) => p.name === s.client['same-node'])) pods.push({ name: s.client['same-node'], node: 'node-b', app: 'sleep', mode: s.podMode });
  for (const s of COMPARE_MODES) {
    const extra = s.mode === 'waypoint' ? `serviceAccount: ${COMPARE_WAYPOINT.serviceAccount}, ` : s.mode === 'sidecar-mtls' ? 'hbone: false, ' : '';
    pods.push({ name: s.server, node: 'node-b', app: 'httpbin', mode: s.podMode, extra });
  }
  return pods;
}

export function compareTopologyYaml(name = 'bench-cmp', sameNode = false): string {
  const pods = comparePods(sameNode).map((p) =>
    `  - {name: ${p.name}, node: ${p.node}, app: ${p.app}, mode: ${p.mode}, ${p.extra ?? ''}labels: {app: ${p.name}}}`);
  const services = COMPARE_MODES.map((s) =>
    `  - {name: ${s.server}, selector: {app: ${s.server}}, ports: [{name: http, port: ${COMPARE_PORT}, targetPort: 80}]}`);
  return `name: ${name}
nodes:
  - name: node-a
  - name: node-b
pods:
${pods.join('\n')}
services:
${services.join('\n')}
resources:
  # What \`istioctl x waypoint apply --service-account ${COMPARE_WAYPOINT.serviceAccount}\` writes, placed on ${COMPARE_WAYPOINT.node}.
  - apiVersion: gateway.networking.k8s.io/v1beta1
    kind: Gateway
    metadata:
      name: ${COMPARE_WAYPOINT.gateway}
      namespace: ${COMPARE_NAMESPACE}
      annotations:
        istio.io/for-service-account: ${COMPARE_WAYPOINT.serviceAccount}
        ambient-lab.io/node: ${COMPARE_WAYPOINT.node}
    spec:
      gatewayClassName: istio-waypoint
      listeners:
        - {name: mesh, port: 15008, protocol: HBONE}
`;
}
