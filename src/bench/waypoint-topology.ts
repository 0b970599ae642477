// The waypoint section's lab, generated: one client and two identical httpbin pods on the
// other node, each behind its own Service with a port named `http` (so a waypoint parses it
// as HTTP). Only one httpbin's service account has a waypoint (Istio 1.18-1.20 binds a
// waypoint to a service account, not to a Service), so the same client in the same lab
// reaches the same kind of server with and without the waypoint in the path:
//   direct:   sleep -> ztunnel/node-a -> HBONE -> ztunnel/node-b -> httpbin
//   waypoint: sleep -> ztunnel/node-a -> HBONE -> waypoint (L7) -> HBONE -> ztunnel/node-b -> httpbin-wp
// The waypoint pod goes on the client's node (the lab's default, written out so the path is
// the same if that default changes).

export const WAYPOINT_BENCH = {
  client: 'default/sleep',
  direct: { service: 'default/httpbin', pod: 'default/httpbin' },
  waypoint: { service: 'default/httpbin-wp', pod: 'default/httpbin-wp', serviceAccount: 'httpbin-wp', gateway: 'httpbin-wp' },
  /** What `lab up` names the waypoint pod: `<gateway>-istio-waypoint`. */
  waypointPod: 'default/httpbin-wp-istio-waypoint',
  port: 8000,
} as const;

export function waypointTopologyYaml(name = 'bench-wp'): string {
  const B = WAYPOINT_BENCH;
  const short = (k: string) => k.split('/')[1];
  return `name: ${name}
nodes:
  - name: node-a
  - name: node-b
pods:
  - {name: ${short(B.client)}, node: node-a, app: sleep}
  - {name: ${short(B.direct.pod)}, node: node-b, app: httpbin, labels: {app: httpbin}}
  - {name: ${short(B.waypoint.pod)}, node: node-b, app: httpbin, serviceAccount: ${B.waypoint.serviceAccount}, labels: {app: httpbin-wp}}
services:
  - {name: ${short(B.direct.service)}, selector: {app: httpbin}, ports: [{name: http, port: ${B.port}, targetPort: 80}]}
  - {name: ${short(B.waypoint.service)}, selector: {app: httpbin-wp}, ports: [{name: http, port: ${B.port}, targetPort: 80}]}
resources:
  # What \`istioctl x waypoint apply --service-account ${B.waypoint.serviceAccount}\` writes, placed on node-a.
  - apiVersion: gateway.networking.k8s.io/v1beta1
    kind: Gateway
    metadata:
      name: ${B.waypoint.gateway}
      namespace: default
      annotations:
        istio.io/for-service-account: ${B.waypoint.serviceAccount}
        ambient-lab.io/node: node-a
    spec:
      gatewayClassName: istio-waypoint
      listeners:
        - {name: mesh, port: 15008, protocol: HBONE}
`;
}
