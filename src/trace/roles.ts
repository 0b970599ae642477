// What each network namespace of a lab is, for a learner: its role (pod, node, ztunnel,
// underlay, waypoint, sidecar: a pod whose netns holds its app and its proxy; the trace names
// the app's hops `pod <name>` and the proxy's `sidecar <name>`), its name, and the names its interfaces go by
// (`veth-sleep` for the hashed host veth of pod sleep, `underlay-node-a` for an underlay
// port). The trace engine knows nothing else about the lab: a new kind of pod is taught
// here, with its traits, and the engine follows.
import { WAYPOINT_GATEWAY_LABEL, type LabPlan, type PlannedPod } from '../topology/address-plan.js';

export type Role = 'pod' | 'node' | 'ztunnel' | 'underlay' | 'waypoint' | 'sidecar';

export interface RoleTraits {
  /** Terminates TCP connections and opens new ones (a proxy): the trace follows through it. */
  proxy: boolean;
  /** Routes packets between its interfaces (routing decisions are explained here). */
  router: boolean;
  /** An application endpoint where a request starts or ends. */
  endpoint: boolean;
}

export const ROLE_TRAITS: Record<Role, RoleTraits> = {
  pod: { proxy: false, router: false, endpoint: true },
  node: { proxy: false, router: true, endpoint: false },
  ztunnel: { proxy: true, router: false, endpoint: false },
  underlay: { proxy: false, router: false, endpoint: false },
  waypoint: { proxy: true, router: false, endpoint: false },
  sidecar: { proxy: true, router: false, endpoint: true },
};

export interface ObservationPoint {
  netns: string;
  role: Role;
  /** Short name: the pod name, node name, or `underlay`. */
  name: string;
  /** Full name: `default/sleep`, `node-a`. */
  key: string;
  /** Node this namespace belongs to (undefined for the underlay). */
  node?: string;
  /** Pod IP, node IP... (the address the namespace's eth0 has). */
  ip?: string;
  /** Real interface name -> learner name, for the interfaces the lab names specially. */
  interfaceNames: Record<string, string>;
  /** A waypoint's Gateway name (`bookinfo-reviews`): learners know a waypoint by it, not by its pod. */
  gateway?: string;
}

function podRole(p: PlannedPod): Role {
  if (p.role === 'ztunnel') return 'ztunnel';
  if (p.role === 'waypoint') return 'waypoint';
  if (p.mode === 'sidecar') return 'sidecar';
  return 'pod';
}

/** A waypoint pod's Gateway (the `istio.io/gateway-name` label), else undefined. */
export const waypointGateway = (p: PlannedPod): string | undefined =>
  p.role === 'waypoint' ? p.labels[WAYPOINT_GATEWAY_LABEL] ?? p.name.replace(/-istio-waypoint$/, '') : undefined;

/**
 * Learner name of a pod's host-side veth: `veth-<pod>`, `veth-ztunnel` for the node's ztunnel,
 * `veth-wp-<gateway>` for a waypoint (its pod name, `<gateway>-istio-waypoint`, says less and
 * is long).
 */
export function podVethName(plan: LabPlan, p: PlannedPod): string {
  if (p.role === 'ztunnel') return 'veth-ztunnel';
  const gw = waypointGateway(p);
  if (gw) return plan.pods.filter((q) => q.node === p.node && waypointGateway(q) === gw).length > 1 ? `veth-wp-${p.namespace}.${gw}` : `veth-wp-${gw}`;
  const sameName = plan.pods.filter((q) => q.node === p.node && q.name === p.name);
  return sameName.length > 1 ? `veth-${p.namespace}.${p.name}` : `veth-${p.name}`;
}

export function observationPoints(plan: LabPlan): ObservationPoint[] {
  const points: ObservationPoint[] = [];
  points.push({
    netns: plan.underlay.netns, role: 'underlay', name: 'underlay', key: 'underlay',
    interfaceNames: Object.fromEntries(plan.nodes.map((n) => [n.underlayVeth, `underlay-${n.name}`])),
  });
  for (const n of plan.nodes) {
    points.push({
      netns: n.netns, role: 'node', name: n.name, key: n.name, node: n.name, ip: n.ip,
      interfaceNames: Object.fromEntries(plan.pods.filter((p) => p.node === n.name).map((p) => [p.hostVeth, podVethName(plan, p)])),
    });
  }
  for (const p of plan.pods) {
    const gateway = waypointGateway(p);
    points.push({ netns: p.netns, role: podRole(p), name: p.name, key: p.key, node: p.node, ip: p.ip, interfaceNames: {}, ...(gateway ? { gateway } : {}) });
  }
  return points;
}

export const learnerInterface = (point: ObservationPoint, ifname: string): string => point.interfaceNames[ifname] ?? ifname;

/** Real interface name for a learner name (or a real name), in one namespace. */
export function realInterface(point: ObservationPoint, name: string): string {
  const hit = Object.entries(point.interfaceNames).find(([, learner]) => learner === name);
  return hit ? hit[0] : name;
}

/** `pod sleep`, `node node-a`, `ztunnel node-a`, `waypoint bookinfo-reviews`, `underlay`. */
export function whereLabel(point: ObservationPoint): string {
  if (point.role === 'ztunnel') return `ztunnel ${point.node ?? point.name}`;
  if (point.role === 'waypoint') return `waypoint ${point.gateway ?? point.name}`;
  if (point.role === 'underlay') return 'underlay';
  return `${point.role} ${point.name}`;
}
