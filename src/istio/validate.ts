// Checks that relate the objects to the topology and to each other, once both are known:
// Services and ports that routes, rules and policies name, subsets, waypoint nodes and Gateways,
// and objects defined twice. The first problem is a UserError at the object that made it.
import { UserError } from '../util/errors.js';
import { parseServiceFqdn, serviceFqdn } from './common.js';
import type { ParsedResources } from './types.js';

/** The least the checks need to know about a topology (a Topology satisfies it). */
export interface TopologyFacts {
  /** With `selector`, routes for a Service no waypoint serves get a warning. */
  services: ReadonlyArray<{ name: string; namespace: string; ports: ReadonlyArray<{ port: number }>; selector?: Record<string, string> }>;
  nodes: ReadonlyArray<{ name: string }>;
  pods: ReadonlyArray<{ namespace: string; serviceAccount: string; labels: Record<string, string> }>;
}

/** Throws at the first broken reference; returns warnings about things that parse but do nothing. */
export function validateResources(parsed: ParsedResources, facts: TopologyFacts): { warnings: string[] } {
  const warnings: string[] = [];
  const services = new Map(facts.services.map((s) => [serviceFqdn(s.name, s.namespace), s]));
  const nodes = new Set(facts.nodes.map((n) => n.name));
  const subsets = new Set(parsed.resources.destinationPolicies.flatMap((d) => d.subsets.map((s) => `${d.host}#${s.name}`)));
  const objects = new Map<string, string>();
  const gateways = new Set<string>();
  const waypointScopes = new Map<string, string>();
  const routed: Array<{ host: string; port?: number; at: string }> = [];
  for (const ref of parsed.refs) if (ref.type === 'object' && ref.kind === 'Gateway') gateways.add(`${ref.namespace}/${ref.name}`);
  function fail(where: string, msg: string): never {
    throw new UserError(`${where}: ${msg}`);
  }
  const position = (where: string): string => /^(.*?:\d+:\d+):/.exec(where)?.[1] ?? where;
  const known = (): string => [...services.keys()].join(', ') || 'none';

  for (const ref of parsed.refs) {
    switch (ref.type) {
      case 'object': {
        const key = `${ref.kind} ${ref.namespace}/${ref.name}`;
        const first = objects.get(key);
        if (first) fail(ref.where, `a second ${key} (the first is at ${first}): each object must be defined once`);
        objects.set(key, position(ref.where));
        break;
      }
      case 'service': {
        const svc = services.get(ref.host);
        const short = parseServiceFqdn(ref.host);
        if (!svc) fail(ref.where, `${ref.what} ${ref.host}: no such Service in the topology (Services: ${known()})`);
        if (ref.port !== undefined && !svc.ports.some((p) => p.port === ref.port)) {
          fail(ref.where, `${ref.what} ${short ? `${short.namespace}/${short.name}` : ref.host} has no port ${ref.port} (ports: ${svc.ports.map((p) => p.port).join(', ')})`);
        }
        break;
      }
      case 'subset':
        if (!subsets.has(`${ref.host}#${ref.subset}`)) {
          fail(ref.where, `subset "${ref.subset}" of ${ref.host} is not defined by any DestinationRule (Istio answers 503 "no healthy upstream")`);
        }
        break;
      case 'node':
        if (!nodes.has(ref.node)) fail(ref.where, `unknown node "${ref.node}" (nodes: ${[...nodes].join(', ')})`);
        break;
      case 'gateway':
        if (!gateways.has(`${ref.namespace}/${ref.name}`)) {
          fail(ref.where, `no waypoint Gateway "${ref.name}" in namespace ${ref.namespace} (the policy would bind to nothing)`);
        }
        break;
      case 'waypoint': {
        const scope = `${ref.namespace}/${ref.forServiceAccount ?? '*'}`;
        const first = waypointScopes.get(scope);
        const what = ref.forServiceAccount ? `service account ${ref.forServiceAccount}` : 'the whole namespace';
        if (first) fail(ref.where, `a second waypoint for ${what} in namespace ${ref.namespace} (also Gateway ${first})`);
        waypointScopes.set(scope, ref.gateway);
        const served = facts.pods.some((p) => p.namespace === ref.namespace && (!ref.forServiceAccount || p.serviceAccount === ref.forServiceAccount));
        if (!served) warnings.push(`${ref.where}: no pod in namespace ${ref.namespace} runs as ${what}: this waypoint serves nothing`);
        break;
      }
      case 'routes': {
        // istiod uses the first VirtualService for a host (HTTPRoutes become VirtualServices) and only logs the others.
        const first = routed.find((x) => x.host === ref.host && (x.port === undefined || ref.port === undefined || x.port === ref.port));
        if (first) warnings.push(`${ref.where}: ${ref.host} already has routes from ${first.at}; like istiod, the lab uses the first and ignores these`);
        else routed.push({ host: ref.host, port: ref.port, at: position(ref.where) });
        const svc = services.get(ref.host);
        if (svc?.selector && !servedByWaypoint(svc as Required<typeof svc>, facts, parsed)) {
          warnings.push(`${ref.where}: no waypoint serves the pods of Service ${svc.namespace}/${svc.name}: in ambient only a waypoint applies ` +
            'routes (ztunnel ignores them); add a Gateway with gatewayClassName istio-waypoint for their namespace or service account');
        }
        break;
      }
    }
  }
  return { warnings };
}

/** Whether any pod behind the Service has a waypoint (one for its service account, or its namespace's). */
function servedByWaypoint(
  svc: { namespace: string; selector: Record<string, string> },
  facts: TopologyFacts,
  parsed: ParsedResources,
): boolean {
  const pods = facts.pods.filter((p) => p.namespace === svc.namespace &&
    Object.entries(svc.selector).every(([k, v]) => p.labels[k] === v));
  return pods.some((p) => parsed.resources.waypoints.some((w) =>
    w.namespace === p.namespace && (w.forServiceAccount === undefined || w.forServiceAccount === p.serviceAccount)));
}
