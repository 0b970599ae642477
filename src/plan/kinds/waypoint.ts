// A waypoint pod (one per `Gateway` of class istio-waypoint): never captured (mode none, so
// not in ztunnel-pods-ips), its own identity `<gateway>-istio-waypoint`, and a waypoint process
// that takes HBONE on 15008 for the workloads and Services it serves and applies L7 there.
import type { PodKind } from '../pod-kinds.js';
import type { PlanContext } from '../lab-build.js';
import type { PlannedPod } from '../../topology/address-plan.js';
import { WAYPOINT_GATEWAY_LABEL } from '../../topology/address-plan.js';
import { formatSpiffe, DEFAULT_TRUST_DOMAIN } from '../../mesh/identity.js';
import { CLUSTER_ID, servicesFromPlan, workloadFromPod } from '../../ztunnel/config-from-plan.js';
import { convertPolicy } from '../../mesh/authz-convert.js';
import { isHttpPort, type WaypointConfig } from '../../waypoint/config.js';
import { PROXY_NODE_FLAGS } from '../../proxy/lean-start.js';

export const waypointConfigPath = (stateDir: string, pod: PlannedPod): string => `${stateDir}/waypoint/${pod.namespace}.${pod.name}.json`;
export const waypointCertDir = (stateDir: string, pod: PlannedPod): string => `${stateDir}/certs/waypoint-${pod.namespace}.${pod.name}`;
export const waypointKeyLog = (stateDir: string, pod: PlannedPod): string => `${stateDir}/keylog/waypoint-${pod.namespace}.${pod.name}.keys`;

/** The waypoint's config: the mesh as ztunnel sees it, plus the L7 objects that concern it. */
export function waypointConfig(ctx: PlanContext, pod: PlannedPod): WaypointConfig {
  const { plan, paths } = ctx;
  const gateway = pod.labels[WAYPOINT_GATEWAY_LABEL];
  const spec = (plan.topology.resources?.waypoints ?? []).find((w) => w.namespace === pod.namespace && w.gateway === gateway);
  const res = plan.topology.resources;
  const identity = formatSpiffe({ trustDomain: DEFAULT_TRUST_DOMAIN, namespace: pod.namespace, serviceAccount: pod.serviceAccount });
  const httpPorts: Record<string, number[]> = {};
  for (const s of plan.services) {
    const ports = s.ports.filter((p) => p.protocol === 'TCP' && isHttpPort(p)).map((p) => p.port);
    if (ports.length) httpPorts[`${s.name}.${s.namespace}.svc.cluster.local`] = ports;
  }
  return {
    node: pod.node,
    clusterId: CLUSTER_ID,
    trustDomain: DEFAULT_TRUST_DOMAIN,
    instanceIp: pod.ip,
    certDir: waypointCertDir(paths.stateDir, pod),
    // As the ztunnels do: a lab logs TLS secrets so `lab trace` can open the tunnels.
    keyLogFile: waypointKeyLog(paths.stateDir, pod),
    // The waypoint connects from its own address: spoofing the client is ztunnel's business.
    enableOrigSrc: false,
    gateway: { name: gateway, namespace: pod.namespace, ...(spec?.forServiceAccount ? { forServiceAccount: spec.forServiceAccount } : {}) },
    identity,
    workloads: plan.pods.map((p) => workloadFromPod(plan, p)),
    services: servicesFromPlan(plan),
    policies: plan.topology.policies.map((p) => convertPolicy(p)),
    httpPorts,
    podLabels: Object.fromEntries(plan.pods.filter((p) => p.role === 'workload').map((p) => [p.ip, p.labels])),
    routes: res?.routes ?? [],
    destinationPolicies: res?.destinationPolicies ?? [],
    l7Policies: (res?.l7Policies ?? []).filter((p) => 'waypoint' in p.target ? p.target.waypoint === gateway && p.namespace === pod.namespace : false),
  };
}

export const waypointKind: PodKind = {
  name: 'waypoint',
  role: 'waypoint',
  description: 'a waypoint (Gateway of class istio-waypoint): L7 policy and routing for the workloads it serves',
  planLab(ctx) {
    if (ctx.mesh && ctx.plan.pods.some((p) => p.role === 'waypoint')) ctx.dir(`${ctx.paths.stateDir}/waypoint`);
  },
  planPod(ctx, pod) {
    if (!ctx.mesh) return;
    const cfg = waypointConfig(ctx, pod);
    ctx.build.certificates.push({ owner: `waypoint/${pod.key}`, dir: cfg.certDir, identities: [cfg.identity] });
    const config = waypointConfigPath(ctx.paths.stateDir, pod);
    ctx.file({ path: config, content: JSON.stringify(cfg, null, 2) });
    const name = `waypoint-${pod.namespace}.${pod.name}`;
    // Named after the process id, as `lab status` looks for it.
    const ready = ctx.readyFile(`waypoint.${pod.namespace}.${pod.name}`);
    ctx.process({
      id: `waypoint/${pod.key}`, role: 'waypoint', netns: pod.netns, pod: pod.key, node: pod.node,
      argv: [ctx.paths.node, ...PROXY_NODE_FLAGS, `${ctx.paths.distDir}/waypoint/main.js`, '--config', config, '--ready-file', ready],
      readyFile: ready,
      restart: 'always',
      liveConfig: config,
      log: ctx.logFile(name),
    });
  },
};
