// Adds the ambient mesh to a lab build: istio-cni node rules, the ztunnel pod's TPROXY
// rules, the Geneve pairs (kernel or userspace TAP), the lab CA and the ztunnel processes.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import type { LabPlan, PlannedPod } from '../topology/address-plan.js';
import type { LabBuild, NetnsBuild, ProcessSpec } from '../plan/lab-build.js';
import type { GeneveSpec, NetnsConfig } from '../plan/types.js';
import { ambientNodeConfig, DEFAULT_GENEVE_PORT } from '../ambient/node-rules.js';
import { ztunnelPodConfig } from '../ambient/ztunnel-pod-rules.js';
import { mergeRulesets } from '../plan/iptables-render.js';
import { ownerAlias } from '../topology/naming.js';
import { run } from '../host/run.js';
import { createLabCa, issueProxyCerts } from '../mesh/ca.js';
import { ztunnelConfigFromPlan, ztunnelIdentities } from '../ztunnel/config-from-plan.js';

export type TunnelKind = 'kernel' | 'userspace';

/** Tries kernel Geneve in `netns` (a lab namespace, never the root one). */
export async function kernelHasGeneve(netns: string): Promise<boolean> {
  const r = await run('ip', ['-n', netns, 'link', 'add', 'alprobe0', 'type', 'geneve', 'id', '999', 'remote', '127.0.0.1'], { reject: false });
  if (r.exitCode !== 0) return false;
  await run('ip', ['-n', netns, 'link', 'del', 'alprobe0'], { reject: false });
  return true;
}

export async function chooseTunnel(mode: 'auto' | 'kernel' | 'userspace', probeNetns: string): Promise<TunnelKind> {
  if (mode === 'userspace') return 'userspace';
  const kernel = await kernelHasGeneve(probeNetns);
  if (mode === 'kernel' && !kernel) {
    throw new Error('topology asks for `tunnel: kernel`, but this kernel cannot create Geneve devices (no geneve module); use `tunnel: auto` or `userspace`');
  }
  return kernel ? 'kernel' : 'userspace';
}

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

function mergeConfig(into: NetnsConfig, add: Omit<NetnsConfig, 'ruleset'> & { ruleset?: NetnsConfig['ruleset'] }): void {
  Object.assign(into.sysctls, add.sysctls);
  into.rules.push(...add.rules);
  into.routes.push(...add.routes);
  if (add.ipsets) into.ipsets = [...(into.ipsets ?? []), ...add.ipsets];
  // istio-cni inserts its jumps at position 1, ahead of kube-proxy's.
  if (add.ruleset) into.ruleset = into.ruleset ? mergeRulesets(add.ruleset, into.ruleset) : add.ruleset;
}

function geneveProcess(stateDir: string, distDir: string, nodeBin: string, id: string, ns: NetnsBuild, node: string,
  taps: GeneveSpec[], remote: string, local: string): ProcessSpec {
  const ready = `${stateDir}/ready/${id.replace(/\//g, '.')}`;
  return {
    id, role: 'geneve', netns: ns.netns, node,
    argv: [nodeBin, `${distDir}/ambient/geneve-userspace.js`, ...taps.flatMap((t) => ['--tap', `${t.name}:${t.vni}`]),
      '--remote', remote, '--local', local, '--port', String(DEFAULT_GENEVE_PORT), '--ready-file', ready],
    readyFile: ready,
    log: `${stateDir}/logs/${id.replace(/\//g, '.')}.log`,
  };
}

/** Mutates `build`: adds the mesh's links, config and processes. Pure apart from the arguments. */
export function planMesh(plan: LabPlan, build: LabBuild, tunnel: TunnelKind, paths: { stateDir: string; distDir: string; node: string }): void {
  const nsOf = new Map(build.netns.map((n) => [n.netns, n]));
  for (const node of plan.nodes) {
    const zt = plan.pods.find((p) => p.role === 'ztunnel' && p.node === node.name) as PlannedPod;
    const enrolled = plan.pods.filter((p) => p.role === 'workload' && p.mode === 'ambient' && p.node === node.name);
    const nodeNs = nsOf.get(node.netns)!;
    const ztNs = nsOf.get(zt.netns)!;

    const nodeCfg = ambientNodeConfig({
      zv: zt.hostVeth, zip: zt.ip, hostIp: node.hostIp, genevePort: DEFAULT_GENEVE_PORT,
      pods: enrolled.map((p) => ({ ip: p.ip, uid: p.uid, hostVeth: p.hostVeth })),
    });
    const ztCfg = ztunnelPodConfig({ zip: zt.ip, hostIp: node.hostIp, genevePort: DEFAULT_GENEVE_PORT });

    for (const g of nodeCfg.geneve) nodeNs.links.push(...geneveLinkLines(g, tunnel, ownerAlias(plan.lab, 'node', node.name)));
    for (const g of ztCfg.geneve) ztNs.links.push(...geneveLinkLines(g, tunnel, ownerAlias(plan.lab, 'pod', zt.key)));
    mergeConfig(nodeNs.config, nodeCfg);
    mergeConfig(ztNs.config, ztCfg);

    if (tunnel === 'userspace') {
      build.processes.push(
        geneveProcess(paths.stateDir, paths.distDir, paths.node, `geneve/${node.name}`, nodeNs, node.name, nodeCfg.geneve, zt.ip, node.hostIp),
        geneveProcess(paths.stateDir, paths.distDir, paths.node, `geneve/${zt.name}`, ztNs, node.name, ztCfg.geneve, node.hostIp, zt.ip),
      );
    }
    const ready = `${paths.stateDir}/ready/ztunnel.${node.name}`;
    build.processes.push({
      id: `ztunnel/${node.name}`, role: 'ztunnel', netns: zt.netns, pod: zt.key, node: node.name,
      argv: [paths.node, `${paths.distDir}/ztunnel/main.js`, '--config', `${paths.stateDir}/ztunnel/${node.name}.json`, '--ready-file', ready],
      readyFile: ready,
      log: `${paths.stateDir}/logs/ztunnel-${node.name}.log`,
    });
  }
}

const LAB_CERT_TTL_MS = 30 * 24 * 3600_000;

export const keyLogPath = (stateDir: string, node: string): string => `${stateDir}/keylog/ztunnel-${node}.keys`;

/**
 * Files the mesh needs before its processes start: the CA (its key stays in `ca/`), each
 * proxy's issued certificates (istiod's role: a ztunnel gets its node's HBONE workloads'
 * keys and the root, nothing else) and each ztunnel's config.
 */
export async function writeMeshFiles(plan: LabPlan, stateDir: string): Promise<string> {
  const caDir = `${stateDir}/ca`;
  await createLabCa(caDir);
  mkdirSync(`${stateDir}/ztunnel`, { recursive: true });
  mkdirSync(`${stateDir}/keylog`, { recursive: true });
  for (const node of plan.nodes) {
    const certDir = `${stateDir}/certs/ztunnel-${node.name}`;
    // Istio's 24 h certificates live because istiod rotates them; nothing rotates here, and a
    // lab left up over a weekend must keep working.
    await issueProxyCerts(caDir, certDir, ztunnelIdentities(plan, node.name), { ttlMs: LAB_CERT_TTL_MS });
    // A lab is for looking inside: every ztunnel logs its TLS secrets so `lab trace` and
    // Wireshark can decrypt HBONE. Never do this on a real mesh.
    const cfg = ztunnelConfigFromPlan(plan, node.name, { certDir, keyLogFile: keyLogPath(stateDir, node.name) });
    // By rename: a running ztunnel watching the file must never read half of it.
    const file = `${stateDir}/ztunnel/${node.name}.json`;
    writeFileSync(`${file}.tmp`, JSON.stringify(cfg, null, 2));
    renameSync(`${file}.tmp`, file);
  }
  return caDir;
}
