// LabPlan -> what to build, as data: per-netns ip batches and config, files, processes.
// Pure, so it is golden-testable and `lab up --dry-run` can print it.
import type { LabPlan, PlannedNode, PlannedPod } from '../topology/address-plan.js';
import type { NetnsConfig } from './types.js';
import { ownerAlias, OWNER_PREFIX, UNDERLAY_BRIDGE } from '../topology/naming.js';
import { parseCidr } from '../util/ip.js';
import { kubeProxyRuleset } from './kube-proxy.js';

export type NetnsKind = 'underlay' | 'node' | 'pod';

export interface NetnsBuild {
  netns: string;
  kind: NetnsKind;
  /** Owner alias written on `lo`. */
  owner: string;
  /** 0 = underlay, 1 = nodes, 2 = pods: a stage's links need the previous stage's. */
  stage: 0 | 1 | 2;
  /** `ip -batch` lines run inside this netns. */
  links: string[];
  config: NetnsConfig;
}

export interface FileSpec {
  path: string;
  content: string;
}

export interface ProcessSpec {
  /** Unique within the lab, e.g. `pod/default/httpbin`, `ztunnel/node-a`. */
  id: string;
  role: 'app' | 'dns' | 'ztunnel' | 'geneve' | 'waypoint' | 'sidecar' | 'supervisor';
  netns: string;
  pod?: string;
  node?: string;
  argv: string[];
  /** The process writes this file when it is ready to serve. */
  readyFile?: string;
  log: string;
}

export interface LabBuild {
  netns: NetnsBuild[];
  files: FileSpec[];
  processes: ProcessSpec[];
}

export interface BuildPaths {
  /** Lab state directory (logs, ready files, configs). */
  stateDir: string;
  /** Compiled JS root (dist/), where apps and proxies live. */
  distDir: string;
  node: string;
}

const emptyConfig = (): NetnsConfig => ({ sysctls: {}, rules: [], routes: [] });

function nodeBuild(plan: LabPlan, node: PlannedNode): NetnsBuild {
  const lab = plan.lab;
  const pods = plan.pods.filter((p) => p.node === node.name);
  const nodeBits = parseCidr(plan.underlay.cidr).bits;
  const links = [
    `link set lo alias ${ownerAlias(lab, 'node', node.name)}`,
    'link set lo up',
    `addr add ${node.ip}/${nodeBits} dev eth0`,
    'link set eth0 up',
  ];
  for (const p of pods) {
    // kindnet/ptp style: the host side carries the gateway address /32 and a host route to the pod.
    links.push(
      `link add ${p.hostVeth} type veth peer name eth0 netns ${p.netns}`,
      `link set ${p.hostVeth} alias ${ownerAlias(lab, 'pod', p.key)}`,
      `addr add ${node.hostIp}/32 dev ${p.hostVeth}`,
      `link set ${p.hostVeth} up`,
      `route add ${p.ip}/32 dev ${p.hostVeth} scope host`,
    );
  }
  for (const other of plan.nodes) {
    if (other.name !== node.name) links.push(`route add ${other.podCidr} via ${other.ip} dev eth0`);
  }
  return {
    netns: node.netns,
    kind: 'node',
    owner: ownerAlias(lab, 'node', node.name),
    stage: 1,
    links,
    config: {
      ...emptyConfig(),
      sysctls: { 'net.ipv4.ip_forward': '1' },
      ruleset: kubeProxyRuleset(plan.services, { podCidr: plan.topology.network.podCidr }),
    },
  };
}

function podBuild(plan: LabPlan, pod: PlannedPod): NetnsBuild {
  const node = plan.nodes[pod.nodeIndex];
  return {
    netns: pod.netns,
    kind: 'pod',
    owner: ownerAlias(plan.lab, 'pod', pod.key),
    stage: 2,
    links: [
      `link set lo alias ${ownerAlias(plan.lab, 'pod', pod.key)}`,
      'link set lo up',
      // /32 like Calico and ptp: every destination, same-node pods included, goes via the node.
      `addr add ${pod.ip}/32 dev eth0`,
      'link set eth0 up',
      `route add default via ${node.hostIp} dev eth0 onlink`,
    ],
    config: emptyConfig(),
  };
}

function underlayBuild(plan: LabPlan): NetnsBuild {
  const lab = plan.lab;
  const links = [
    `link set lo alias ${ownerAlias(lab, 'underlay', 'underlay')}`,
    'link set lo up',
    `link add ${UNDERLAY_BRIDGE} type bridge`,
    `link set ${UNDERLAY_BRIDGE} alias ${ownerAlias(lab, 'underlay', 'bridge')}`,
    `link set ${UNDERLAY_BRIDGE} up`,
  ];
  for (const n of plan.nodes) {
    links.push(
      `link add ${n.underlayVeth} type veth peer name eth0 netns ${n.netns}`,
      `link set ${n.underlayVeth} alias ${ownerAlias(lab, 'node', n.name)}`,
      `link set ${n.underlayVeth} master ${UNDERLAY_BRIDGE}`,
      `link set ${n.underlayVeth} up`,
    );
  }
  return { netns: plan.underlay.netns, kind: 'underlay', owner: ownerAlias(lab, 'underlay', 'underlay'), stage: 0, links, config: emptyConfig() };
}

/** First line of every file the lab writes under /etc/netns: how `lab down` knows it is ours. */
export const etcMarker = (lab: string): string => `# ${OWNER_PREFIX}:${lab}`;

export function resolvConf(lab: string, namespace: string, dnsIp: string): string {
  return `${etcMarker(lab)}\nsearch ${namespace}.svc.cluster.local svc.cluster.local cluster.local\nnameserver ${dnsIp}\noptions ndots:5\n`;
}

const APP_PORTS: Record<string, number> = { httpbin: 80, echo: 9000 };

function podProcess(pod: PlannedPod, paths: BuildPaths): ProcessSpec | undefined {
  const id = `pod/${pod.key}`;
  const log = `${paths.stateDir}/logs/${pod.namespace}.${pod.name}.log`;
  const ready = `${paths.stateDir}/ready/${pod.namespace}.${pod.name}`;
  const base = { id, role: 'app' as const, netns: pod.netns, pod: pod.key, node: pod.node, log };
  if (pod.role === 'dns') {
    return {
      ...base, role: 'dns',
      argv: [paths.node, `${paths.distDir}/apps/dns-server.js`, '--config', `${paths.stateDir}/dns.json`, '--port', '53', '--ready-file', ready],
      readyFile: ready,
    };
  }
  if (pod.role !== 'workload') return undefined;
  if (pod.command) return { ...base, argv: pod.command };
  if (pod.app === 'sleep' || !pod.app) return { ...base, argv: ['sleep', 'infinity'] };
  return {
    ...base,
    argv: [paths.node, `${paths.distDir}/apps/${pod.app}.js`, '--port', String(APP_PORTS[pod.app]), '--name', pod.name, '--ready-file', ready],
    readyFile: ready,
  };
}

export function buildLab(plan: LabPlan, paths: BuildPaths): LabBuild {
  const netns: NetnsBuild[] = [underlayBuild(plan), ...plan.nodes.map((n) => nodeBuild(plan, n)), ...plan.pods.map((p) => podBuild(plan, p))];
  const files: FileSpec[] = [];
  for (const p of plan.pods) {
    files.push({ path: `/etc/netns/${p.netns}/resolv.conf`, content: resolvConf(plan.lab, p.namespace, plan.dns.vip) });
    files.push({ path: `/etc/netns/${p.netns}/hosts`, content: `${etcMarker(plan.lab)}\n127.0.0.1\tlocalhost\n${p.ip}\t${p.name}\n` });
  }
  const processes = plan.pods.map((p) => podProcess(p, paths)).filter((x): x is ProcessSpec => !!x);
  return { netns, files, processes };
}
