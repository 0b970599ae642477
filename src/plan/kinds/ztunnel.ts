// The ztunnel pod of a node, and with it istio-cni's node part (reference §1-§2): the node's
// ipset, chains, marks, ip rules and routes; the Geneve pair istioin/istioout <-> pistioin/
// pistioout (kernel devices, or TAPs served by the lab's one userspace Geneve daemon); the TPROXY
// rules in the pod; the ztunnel's config, certificates and process.
import type { PodKind } from '../pod-kinds.js';
import type { PlanContext } from '../lab-build.js';
import type { GeneveSpec } from '../types.js';
import type { TunnelKind } from '../host-facts.js';
import type { PlannedNode, PlannedPod } from '../../topology/address-plan.js';
import { formatEndSpec } from '../../ambient/geneve-config.js';
import { ambientNodeConfig, DEFAULT_GENEVE_PORT } from '../../ambient/node-rules.js';
import { ztunnelPodConfig } from '../../ambient/ztunnel-pod-rules.js';
import { ownerAlias } from '../../topology/naming.js';
import { formatSpiffe } from '../../mesh/identity.js';
import { ztunnelConfigFromPlan, ztunnelIdentities } from '../../ztunnel/config-from-plan.js';
import { PROXY_NODE_FLAGS } from '../../proxy/lean-start.js';

/** ip batch lines creating one Geneve endpoint, as a kernel device or as a persistent TAP. */
export function geneveLinkLines(g: GeneveSpec, tunnel: TunnelKind, owner: string): string[] {
  const create = tunnel === 'kernel'
    ? `link add ${g.name} type geneve id ${g.vni} remote ${g.remote} dstport ${g.dstport}`
    : `tuntap add dev ${g.name} mode tap`;
  return [
    create,
    `link set ${g.name} alias ${owner}`,
    `link set ${g.name} mtu ${g.mtu ?? 1450}`,
    `addr add ${g.address} dev ${g.name}`,
    `link set ${g.name} up`,
  ];
}

export const keyLogPath = (stateDir: string, node: string): string => `${stateDir}/keylog/ztunnel-${node}.keys`;
export const ztunnelConfigPath = (stateDir: string, node: string): string => `${stateDir}/ztunnel/${node}.json`;
export const ztunnelCertDir = (stateDir: string, node: string): string => `${stateDir}/certs/ztunnel-${node}`;

/**
 * V8 flags of the Geneve daemon, measured with test/e2e/geneve.test.ts (200 MB through the
 * tunnel): it allocates a few small objects per packet and keeps nothing, so a 1 MiB young
 * generation (the default grows to 16 MiB per semi-space under a burst) and a small old
 * generation are plenty, and the cap turns a leak into a crash the supervisor restarts.
 * --lite-mode (no optimizing compiler) keeps 6 MiB of compiled code and compiler memory off
 * the peak for about 7% of the tunnel's bulk rate, which the lab never needs: a proxied bulk
 * stream's data bypasses the tunnels (table 102), only SYNs, requests and ACKs ride them.
 * --no-expose-wasm first: lite mode turns it off anyway, and V8 prints a warning into the
 * JSON log when it has to do that itself. They bound the heap under a burst; at rest the
 * process is ~49 MB with or without them (node binary and koffi), hence one daemon per lab.
 */
export const GENEVE_DAEMON_FLAGS = ['--no-expose-wasm', '--lite-mode', '--max-semi-space-size=1', '--max-old-space-size=24', '--optimize-for-size'];

/** The lab's one userspace Geneve daemon: its process id, ready file and log are `geneve`. */
export const GENEVE_DAEMON_ID = 'geneve';

/**
 * One userspace Geneve daemon for the whole lab, in the underlay's netns (the lab's own, like
 * the bridge between nodes: it belongs to no node and no pod). It serves both ends of every
 * node's pair, each in its own namespace: the node's istioin/istioout (remote: the ztunnel
 * pod) and the ztunnel pod's pistioin/pistioout (remote: the node). One Node process costs
 * ~49 MB RSS, 34 MB of it the node binary's pages, so per-node daemons cannot get under 40 MB;
 * the price is the blast radius: its death cuts every node's tunnels until the supervisor has
 * restarted it. Planned here with no end; each ztunnel pod adds its node's two (planZtunnelPod).
 */
function planGeneveDaemon(ctx: PlanContext): void {
  if (ctx.tunnel !== 'userspace' || !ctx.plan.pods.some((p) => p.role === 'ztunnel')) return;
  const ready = ctx.readyFile(GENEVE_DAEMON_ID);
  ctx.process({
    id: GENEVE_DAEMON_ID, role: 'geneve', netns: ctx.plan.underlay.netns,
    argv: [ctx.paths.node, ...GENEVE_DAEMON_FLAGS, `${ctx.paths.distDir}/ambient/geneve-userspace.js`,
      '--port', String(DEFAULT_GENEVE_PORT), '--ready-file', ready],
    readyFile: ready,
    restart: 'always',
    startFirst: true,
    log: ctx.logFile(GENEVE_DAEMON_ID),
  });
}

/** Appends a node's two ends to the lab's daemon: every end names its netns (the daemon runs in none of them). */
function addGeneveEnds(ctx: PlanContext, node: PlannedNode, zt: PlannedPod, nodeTunnels: GeneveSpec[], podTunnels: GeneveSpec[]): void {
  const daemon = ctx.build.processes.find((p) => p.id === GENEVE_DAEMON_ID);
  if (!daemon) throw new Error('the userspace Geneve daemon was not planned before the ztunnel pods');
  const tap = (t: GeneveSpec) => ({ name: t.name, vni: t.vni });
  daemon.argv.push(
    '--end', formatEndSpec({ netns: node.netns, local: node.hostIp, remote: zt.ip, taps: nodeTunnels.map(tap) }),
    '--end', formatEndSpec({ netns: zt.netns, local: zt.ip, remote: node.hostIp, taps: podTunnels.map(tap) }),
  );
}

function planZtunnelPod(ctx: PlanContext, zt: PlannedPod): void {
  const { plan, paths, tunnel } = ctx;
  const node = plan.nodes[zt.nodeIndex];
  const enrolled = plan.pods.filter((p) => p.role === 'workload' && p.mode === 'ambient' && p.node === node.name);
  const dnsCapture = !!plan.topology.dnsCapture;

  const nodeCfg = ambientNodeConfig({
    zv: zt.hostVeth, zip: zt.ip, hostIp: node.hostIp, genevePort: DEFAULT_GENEVE_PORT, dnsCapture,
    pods: enrolled.map((p) => ({ ip: p.ip, uid: p.uid, hostVeth: p.hostVeth })),
  });
  const ztCfg = ztunnelPodConfig({ zip: zt.ip, hostIp: node.hostIp, genevePort: DEFAULT_GENEVE_PORT });
  const { geneve: nodeTunnels, ...nodeRest } = nodeCfg;
  const { geneve: podTunnels, ...podRest } = ztCfg;
  ctx.ns(node.netns).links.push(...nodeTunnels.flatMap((g) => geneveLinkLines(g, tunnel, ownerAlias(plan.lab, 'node', node.name))));
  ctx.ns(zt.netns).links.push(...podTunnels.flatMap((g) => geneveLinkLines(g, tunnel, ownerAlias(plan.lab, 'pod', zt.key))));
  ctx.configure(node.netns, nodeRest);
  ctx.configure(zt.netns, podRest);

  if (tunnel === 'userspace') addGeneveEnds(ctx, node, zt, nodeTunnels, podTunnels);

  // istiod's part: the node's ztunnel holds the identities of the HBONE workloads it serves.
  const identities = [...new Set(ztunnelIdentities(plan, node.name).map(formatSpiffe))];
  const certDir = ztunnelCertDir(paths.stateDir, node.name);
  ctx.build.certificates.push({ owner: `ztunnel/${node.name}`, dir: certDir, identities });
  const config = ztunnelConfigPath(paths.stateDir, node.name);
  // A lab is for looking inside: every ztunnel logs its TLS secrets so `lab trace` and
  // Wireshark can decrypt HBONE. Never do this on a real mesh.
  const cfg = ztunnelConfigFromPlan(plan, node.name, { certDir, keyLogFile: keyLogPath(paths.stateDir, node.name), dnsCapture });
  ctx.file({ path: config, content: JSON.stringify(cfg, null, 2) });
  const ready = ctx.readyFile(`ztunnel.${node.name}`);
  ctx.process({
    id: `ztunnel/${node.name}`, role: 'ztunnel', netns: zt.netns, pod: zt.key, node: node.name,
    argv: [paths.node, ...PROXY_NODE_FLAGS, `${paths.distDir}/ztunnel/main.js`, '--config', config, '--ready-file', ready],
    readyFile: ready,
    restart: 'always',
    startFirst: true,
    liveConfig: config,
    log: ctx.logFile(`ztunnel-${node.name}`),
  });
}

export const ztunnelKind: PodKind = {
  name: 'ztunnel',
  role: 'ztunnel',
  description: 'ztunnel (one per node) with istio-cni\'s node rules, the Geneve pair and TPROXY',
  planLab(ctx) {
    if (!ctx.mesh) return;
    ctx.build.ca = { dir: `${ctx.paths.stateDir}/ca` };
    for (const d of ['ztunnel', 'keylog', 'certs']) ctx.dir(`${ctx.paths.stateDir}/${d}`);
    planGeneveDaemon(ctx);
  },
  planPod(ctx, pod) {
    if (ctx.mesh) planZtunnelPod(ctx, pod);
  },
};
