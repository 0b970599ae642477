// LabPlan -> one ztunnel's config: istiod's job of turning pods, Services and
// AuthorizationPolicies into ztunnel's workload/policy view (ambientindex.go).
import type { LabPlan, PlannedPod } from '../topology/address-plan.js';
import { labelsMatch, waypointPodName } from '../topology/address-plan.js';
import type { Service, Workload } from '../mesh/workloads.js';
import { ROOT_NAMESPACE, workloadIdentity } from '../mesh/workloads.js';
import { convertPolicy } from '../mesh/authz-convert.js';
import type { Authorization } from '../mesh/authz.js';
import { effectiveMtls, strictPolicy } from '../mesh/peer-authn.js';
import { DEFAULT_TRUST_DOMAIN, type SpiffeId } from '../mesh/identity.js';
import type { ZtunnelConfig } from './config.js';

export const CLUSTER_ID = 'Kubernetes';

/**
 * Deployment-style pod names end in -<replicaset hash>-<5 chars>; Kubernetes' name generator
 * uses consonants and digits only ("bcdfghjklmnpqrstvwxz2456789").
 */
const DEPLOYMENT_SUFFIX = /^(.+)-[a-z0-9]{5,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/;

export function workloadNameOf(podName: string): { workloadName: string; workloadType: string } {
  const m = DEPLOYMENT_SUFFIX.exec(podName);
  return m ? { workloadName: m[1], workloadType: 'deployment' } : { workloadName: podName, workloadType: 'pod' };
}

function protocolOf(p: PlannedPod): { protocol: 'HBONE' | 'TCP'; nativeHbone: boolean } {
  // A waypoint terminates HBONE itself (Istio marks waypoint endpoints tunnel-capable).
  if (p.role === 'waypoint') return { protocol: 'HBONE', nativeHbone: true };
  if (p.role !== 'workload') return { protocol: 'TCP', nativeHbone: false };
  if (p.mode === 'ambient') return { protocol: 'HBONE', nativeHbone: false };
  // A sidecar with HBONE terminates it itself (ztunnel sends to its :15008); without, plain TCP
  // to the app port, which the pod's rules hand to the sidecar's 15006.
  if (p.mode === 'sidecar') return p.hbone === false ? { protocol: 'TCP', nativeHbone: false } : { protocol: 'HBONE', nativeHbone: true };
  return { protocol: 'TCP', nativeHbone: false };
}

/**
 * The waypoint that serves an ambient pod (istiod's ambient index): the one for its service
 * account if there is one, else its namespace's. Sidecar and mode:none pods have none.
 */
export function waypointOf(plan: LabPlan, p: PlannedPod): PlannedPod | undefined {
  if (p.role !== 'workload' || p.mode !== 'ambient') return undefined;
  const specs = (plan.topology.resources?.waypoints ?? []).filter((w) => w.namespace === p.namespace);
  const spec = specs.find((w) => w.forServiceAccount === p.serviceAccount) ?? specs.find((w) => !w.forServiceAccount);
  if (!spec) return undefined;
  return plan.pods.find((x) => x.role === 'waypoint' && x.namespace === spec.namespace && x.name === waypointPodName(spec.gateway));
}

/** PeerAuthentication STRICT for an ambient pod, as the DENY policy istiod gives ztunnel. */
function strictPolicyOf(plan: LabPlan, p: PlannedPod): Authorization | undefined {
  const pas = plan.topology.resources?.peerAuthentications ?? [];
  if (!pas.length || p.role !== 'workload' || p.mode !== 'ambient') return undefined;
  return strictPolicy(p.namespace, effectiveMtls(pas, p.namespace, p.labels), p.name);
}

export function workloadFromPod(plan: LabPlan, p: PlannedPod): Workload {
  const { workloadName, workloadType } = workloadNameOf(p.name);
  const { protocol, nativeHbone } = protocolOf(p);
  const selecting = plan.topology.policies
    .filter((pol) => pol.selector && Object.keys(pol.selector).length > 0)
    .filter((pol) => pol.namespace === p.namespace || pol.namespace === ROOT_NAMESPACE)
    .filter((pol) => labelsMatch(pol.selector!, p.labels))
    .map((pol) => `${pol.namespace}/${pol.name}`);
  const strict = strictPolicyOf(plan, p);
  if (strict) selecting.push(`${strict.namespace}/${strict.name}`);
  return {
    workloadIp: p.ip,
    waypointAddresses: [waypointOf(plan, p)?.ip].filter((ip): ip is string => !!ip),
    gatewayAddress: null,
    protocol,
    name: p.name,
    namespace: p.namespace,
    trustDomain: DEFAULT_TRUST_DOMAIN,
    serviceAccount: p.serviceAccount,
    workloadName,
    workloadType,
    canonicalName: p.labels['service.istio.io/canonical-name'] ?? p.labels.app ?? workloadName,
    canonicalRevision: p.labels['service.istio.io/canonical-revision'] ?? p.labels.version ?? 'latest',
    node: p.node,
    nativeHbone,
    authorizationPolicies: selecting,
    status: 'Healthy',
    clusterId: CLUSTER_ID,
  };
}

export function servicesFromPlan(plan: LabPlan): Service[] {
  return plan.services.map((s) => ({
    name: s.name,
    namespace: s.namespace,
    hostname: `${s.name}.${s.namespace}.svc.cluster.local`,
    vips: [s.vip],
    // ztunnel proxies TCP only; a UDP-only port has no place in its map.
    ports: Object.fromEntries(s.ports.filter((p) => p.protocol === 'TCP').map((p) => [String(p.port), p.targetPort])),
    endpoints: s.endpoints.map((e) => e.ip),
  }));
}

/**
 * The identities a node's ztunnel holds keys for, as istiod's node authorization lets a ztunnel
 * have them: its node's workload pods, except sidecar pods (they hold their own). Ambient pods'
 * keys terminate and originate their HBONE; a plaintext (mode none) pod's key lets the ztunnel
 * hairpin that pod's traffic to a waypoint (reference §3.4). A pod on another node is never
 * its to impersonate, so a plaintext caller there cannot be hairpinned: the connection fails.
 */
export function ztunnelIdentities(plan: LabPlan, node: string): SpiffeId[] {
  return plan.pods
    .filter((p) => p.node === node && p.role === 'workload' && p.mode !== 'sidecar')
    .map((p) => workloadIdentity(workloadFromPod(plan, p)));
}

export function ztunnelConfigFromPlan(plan: LabPlan, node: string, opts: { certDir: string; keyLogFile?: string; dnsCapture?: boolean }): ZtunnelConfig {
  const zt = plan.pods.find((p) => p.role === 'ztunnel' && p.node === node);
  if (!zt) throw new Error(`no ztunnel pod planned on node ${node}`);
  return {
    node,
    clusterId: CLUSTER_ID,
    trustDomain: DEFAULT_TRUST_DOMAIN,
    instanceIp: zt.ip,
    certDir: opts.certDir,
    ...(opts.keyLogFile ? { keyLogFile: opts.keyLogFile } : {}),
    ...(opts.dnsCapture !== undefined ? { dnsCapture: opts.dnsCapture } : {}),
    workloads: plan.pods.map((p) => workloadFromPod(plan, p)),
    services: servicesFromPlan(plan),
    policies: [...plan.topology.policies.map((p) => convertPolicy(p)), ...strictPolicies(plan)],
  };
}

/** The converted PeerAuthentication policies, once each. */
export function strictPolicies(plan: LabPlan): Authorization[] {
  const byKey = new Map<string, Authorization>();
  for (const p of plan.pods) {
    const s = strictPolicyOf(plan, p);
    if (s) byKey.set(`${s.namespace}/${s.name}`, s);
  }
  return [...byKey.values()];
}
