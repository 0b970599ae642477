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
import { sidecarKind } from './kinds/sidecar.js';

export interface PodKind {
  /** How docs and tests name the kind. */
  name: string;
  /** The pods it plans: every pod of this role, narrowed by `matches` (a sidecar is a workload pod that also gets a proxy). */
  role: PodRole;
  matches?(pod: PlannedPod): boolean;
  /** One line for `lab up --dry-run` and the docs. */
  description: string;
  /** Once per lab, before its pods (cluster-wide files, the CA). */
  planLab?(ctx: PlanContext): void;
  /** Once per pod of this kind, in plan order. */
  planPod?(ctx: PlanContext, pod: PlannedPod): void;
}

/** Order matters: it is the order of processes and merged rules in the build. */
export const POD_KINDS: readonly PodKind[] = [ztunnelKind, dnsKind, workloadKind, waypointKind, sidecarKind];

export function podKind(role: PodRole): PodKind | undefined {
  return POD_KINDS.find((k) => k.role === role);
}
