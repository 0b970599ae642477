// A sidecar pod (mode: sidecar, or the label sidecar.istio.io/inject: "true"): on top of its
// app (the workload kind), what Istio's injection adds: the nat rules that send its TCP to the
// proxy (the istio-cni plugin's variant, as an ambient-profile cluster installs: reference §4
// and istio-goldens/cni-basic.txt.golden), its identity's certificate, and the sidecar proxy
// process as uid/gid 1337, the owner those rules exempt. It is never in ztunnel-pods-ips.
import type { PodKind } from '../pod-kinds.js';
import type { PlanContext } from '../lab-build.js';
import type { PlannedPod } from '../../topology/address-plan.js';
import { istioInitRuleset } from '../../sidecar/istio-iptables.js';
import { formatSpiffe, DEFAULT_TRUST_DOMAIN } from '../../mesh/identity.js';
import { CLUSTER_ID, servicesFromPlan, strictPolicies, workloadFromPod } from '../../ztunnel/config-from-plan.js';
import { convertPolicy } from '../../mesh/authz-convert.js';
import { effectiveMtls } from '../../mesh/peer-authn.js';
import { isHttpPort } from '../../waypoint/config.js';
import type { SidecarConfig } from '../../sidecar-proxy/config.js';
import { PROXY_NODE_FLAGS } from '../../proxy/lean-start.js';

/** Envoy's uid/gid in an injected pod. */
export const PROXY_UID = 1337;

/** The proxy's own directory (owned by 1337): its config, ready file and TLS key log. */
export const sidecarDir = (stateDir: string, pod: PlannedPod): string => `${stateDir}/sidecar/${pod.namespace}.${pod.name}`;
export const sidecarConfigPath = (stateDir: string, pod: PlannedPod): string => `${sidecarDir(stateDir, pod)}/config.json`;
export const sidecarCertDir = (stateDir: string, pod: PlannedPod): string => `${stateDir}/certs/sidecar-${pod.namespace}.${pod.name}`;

const labelsMatch = (sel: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(sel).every(([k, v]) => labels[k] === v);

export function sidecarConfig(ctx: PlanContext, pod: PlannedPod): SidecarConfig {
  const { plan, paths } = ctx;
  const res = plan.topology.resources;
  const httpPorts: Record<string, number[]> = {};
  for (const s of plan.services) {
    const ports = s.ports.filter((p) => p.protocol === 'TCP' && isHttpPort(p)).map((p) => p.port);
    if (ports.length) httpPorts[`${s.name}.${s.namespace}.svc.cluster.local`] = ports;
  }
  const mine = plan.services.filter((s) => s.endpoints.some((e) => e.ip === pod.ip));
  const mtls = effectiveMtls(res?.peerAuthentications ?? [], pod.namespace, pod.labels);
  return {
    node: pod.node,
    clusterId: CLUSTER_ID,
    trustDomain: DEFAULT_TRUST_DOMAIN,
    instanceIp: pod.ip,
    certDir: sidecarCertDir(paths.stateDir, pod),
    keyLogFile: `${sidecarDir(paths.stateDir, pod)}/tls.keys`,
    // Envoy connects from the pod's own address; its sockets are exempt from capture by uid.
    enableOrigSrc: false,
    pod: { name: pod.name, namespace: pod.namespace, serviceAccount: pod.serviceAccount, labels: pod.labels },
    identity: formatSpiffe({ trustDomain: DEFAULT_TRUST_DOMAIN, namespace: pod.namespace, serviceAccount: pod.serviceAccount }),
    hbone: pod.hbone !== false,
    mtlsOnlyPeers: plan.pods.filter((p) => p.role === 'workload' && p.mode === 'sidecar' && p.hbone === false).map((p) => p.ip),
    httpPorts,
    inboundPorts: [...new Set(mine.flatMap((s) => s.ports.filter((p) => p.protocol === 'TCP').map((p) => p.targetPort)))].sort((a, b) => a - b),
    mtls,
    podLabels: Object.fromEntries(plan.pods.filter((p) => p.role === 'workload').map((p) => [p.ip, p.labels])),
    workloads: plan.pods.map((p) => workloadFromPod(plan, p)),
    services: servicesFromPlan(plan),
    policies: [...plan.topology.policies.map((p) => convertPolicy(p)), ...strictPolicies(plan)],
    routes: res?.routes ?? [],
    destinationPolicies: res?.destinationPolicies ?? [],
    // An AuthorizationPolicy selecting this pod by its labels (or its namespace's, or mesh-wide) is its sidecar's to enforce.
    l7Policies: (res?.l7Policies ?? []).filter((p) => ('selector' in p.target && p.namespace === pod.namespace && labelsMatch(p.target.selector, pod.labels))
      || ('namespace' in p.target && (p.namespace === pod.namespace || p.namespace === 'istio-system'))),
  };
}

export const sidecarKind: PodKind = {
  name: 'sidecar',
  role: 'workload',
  matches: (pod) => pod.mode === 'sidecar',
  description: 'an injected sidecar: istio-cni\'s nat rules in the pod and the sidecar proxy as uid 1337',
  planLab(ctx) {
    if (ctx.mesh && ctx.plan.pods.some((p) => p.role === 'workload' && p.mode === 'sidecar')) ctx.dir(`${ctx.paths.stateDir}/sidecar`);
  },
  planPod(ctx, pod) {
    if (!ctx.mesh) return;
    ctx.configure(pod.netns, { ruleset: istioInitRuleset({ variant: 'cni', proxyUid: PROXY_UID, proxyGid: PROXY_UID }) });
    const cfg = sidecarConfig(ctx, pod);
    // uid 1337 reads its certificates and writes in its own directory, nowhere else.
    const user = { uid: PROXY_UID, gid: PROXY_UID };
    ctx.build.certificates.push({ owner: `sidecar/${pod.key}`, dir: cfg.certDir, identities: [cfg.identity], user });
    const dir = sidecarDir(ctx.paths.stateDir, pod);
    const config = sidecarConfigPath(ctx.paths.stateDir, pod);
    ctx.file({ path: config, content: JSON.stringify(cfg, null, 2) });
    const ready = `${dir}/ready`;
    ctx.process({
      id: `sidecar/${pod.key}`, role: 'sidecar', netns: pod.netns, pod: pod.key, node: pod.node,
      user, ownDirs: [dir],
      argv: [ctx.paths.node, ...PROXY_NODE_FLAGS, `${ctx.paths.distDir}/sidecar-proxy/main.js`, '--config', config, '--ready-file', ready],
      readyFile: ready,
      restart: 'always',
      liveConfig: config,
      log: ctx.logFile(`sidecar-${pod.namespace}.${pod.name}`),
    });
  },
};
