// The table of pod kinds, as containerlab registers node kinds: each kind is a planner that
// adds what its pods need to the lab's build (namespaced config, files, certificates and
// processes) on top of the skeleton every pod gets (netns, veth, addresses, resolv.conf).
// A new kind (waypoint, sidecar) is one planner here plus the program it starts.
import type { PlannedPod, PodRole } from '../topology/address-plan.js';
import type { PlanContext } from './lab-build.js';
import { ztunnelKind } from './kinds/ztunnel.js';
import { dnsKind } from './kinds/dns.js';
import { workloadKind } from './kinds/workload.js';
import { waypointKind } from './kinds/waypoint.js';

export interface PodKind {
  role: PodRole;
  /** One line for `lab up --dry-run` and the docs. */
  description: string;
  /** Once per lab, before its pods (cluster-wide files, the CA). */
  planLab?(ctx: PlanContext): void;
  /** Once per pod of this kind, in plan order. */
  planPod?(ctx: PlanContext, pod: PlannedPod): void;
}

/** Order matters: it is the order of processes and merged rules in the build. */
export const POD_KINDS: readonly PodKind[] = [ztunnelKind, dnsKind, workloadKind, waypointKind];

export function podKind(role: PodRole): PodKind | undefined {
  return POD_KINDS.find((k) => k.role === role);
}
