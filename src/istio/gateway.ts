// Gateway (Gateway API) with gatewayClassName istio-waypoint -> a waypoint, as
// `istioctl x waypoint apply [--service-account SA]` writes it (1.18-1.20):
//   metadata.annotations: {istio.io/for-service-account: SA}   (absent = the whole namespace)
//   spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
// istiod deploys `<name>-istio-waypoint` (Deployment and ServiceAccount) for it.
import type { WaypointSpec } from '../l7/model.js';
import { dns1123LabelProblem, dns1123SubdomainProblem } from '../topology/k8s-names.js';
import { byKey } from './reader.js';
import type { KindContext, KindReader } from './types.js';
import { HBONE_PORT } from '../mesh/ports.js';

export const WAYPOINT_CLASS = 'istio-waypoint';
export const FOR_SERVICE_ACCOUNT = 'istio.io/for-service-account';
export const NODE_ANNOTATION = 'ambient-lab.io/node';
/** The waypoint pod is `<gateway>-istio-waypoint`, and a pod name has at most 63 characters. */
const MAX_GATEWAY_NAME = 63 - '-istio-waypoint'.length;

function read({ r, meta, spec, object, out }: KindContext): void {
  if (r.isNull(spec)) r.fail(object.at, spec.path, 'missing; expected {gatewayClassName: istio-waypoint, listeners: [...]}');
  const nameProblem = dns1123LabelProblem(meta.name, MAX_GATEWAY_NAME);
  if (nameProblem) r.fail(object.at, 'metadata.name', `${nameProblem}; the waypoint pod is named <name>-istio-waypoint`);
  const entries = r.map(spec, ['gatewayClassName', 'listeners'], {
    addresses: 'a waypoint gets its address from the lab',
    infrastructure: 'the lab deploys the waypoint itself',
  });
  const fields = byKey(entries);
  const cls = r.required(spec, fields, 'gatewayClassName', `"${WAYPOINT_CLASS}"`);
  const className = r.string(cls);
  if (className !== WAYPOINT_CLASS) {
    r.fail(cls.at, cls.path, `gatewayClassName "${className}": only ${WAYPOINT_CLASS} gateways are supported (the lab has no ingress or egress gateways)`);
  }
  const listeners = fields.get('listeners');
  if (listeners && !r.isNull(listeners)) {
    for (const item of r.list(listeners, 'a list of listeners')) {
      const l = byKey(r.map(item, ['name', 'port', 'protocol', 'allowedRoutes'], {
        hostname: 'a waypoint listener serves every host of its namespace',
        tls: 'a waypoint terminates HBONE with the mesh certificates',
      }));
      // The API server fills in allowedRoutes {namespaces: {from: Same}}, so `kubectl get -o yaml`
      // output carries it; that default changes nothing here, anything else would.
      const allowed = l.get('allowedRoutes');
      if (allowed) {
        const ns = byKey(r.map(allowed, ['namespaces'], { kinds: 'routes attach to Services, not to the waypoint' })).get('namespaces');
        const from = ns && byKey(r.map(ns, ['from'], { selector: 'routes attach to Services, not to the waypoint' })).get('from');
        if (from && r.string(from) !== 'Same') r.fail(from.at, from.path, `expected "Same" (the default); routes attach to Services, not to the waypoint, got "${r.string(from)}"`);
      }
      const name = l.get('name');
      if (name && r.string(name) !== 'mesh') r.fail(name.at, name.path, `expected "mesh" (the listener istioctl writes for a waypoint), got "${r.string(name)}"`);
      const port = l.get('port');
      if (port && r.integer(port, 1, 65535) !== HBONE_PORT) r.fail(port.at, port.path, `expected ${HBONE_PORT} (a waypoint listens for HBONE on 15008), got ${r.integer(port, 1, 65535)}`);
      const protocol = l.get('protocol');
      if (protocol && r.string(protocol) !== 'HBONE') r.fail(protocol.at, protocol.path, `expected "HBONE" (a waypoint only accepts HBONE), got "${r.string(protocol)}"`);
    }
  }
  const wp: WaypointSpec = { gateway: meta.name, namespace: meta.namespace, origin: `Gateway ${meta.namespace}/${meta.name}` };
  const saField = meta.annotationFields.get(FOR_SERVICE_ACCOUNT);
  if (saField) wp.forServiceAccount = r.checked(saField, meta.annotations[FOR_SERVICE_ACCOUNT], dns1123SubdomainProblem);
  const nodeField = meta.annotationFields.get(NODE_ANNOTATION);
  if (nodeField) {
    wp.node = r.checked(nodeField, meta.annotations[NODE_ANNOTATION], dns1123LabelProblem);
    out.refs.push({ type: 'node', node: wp.node, where: r.where(nodeField.at, nodeField.path) });
  }
  out.refs.push({ type: 'waypoint', namespace: wp.namespace, gateway: wp.gateway, forServiceAccount: wp.forServiceAccount, where: r.where(object.at, 'metadata.name') });
  out.resources.waypoints.push(wp);
}

export const gatewayKind: KindReader = {
  apiVersions: ['gateway.networking.k8s.io/v1beta1', 'gateway.networking.k8s.io/v1'],
  annotations: [FOR_SERVICE_ACCOUNT, NODE_ANNOTATION],
  read,
};
