// (LabPlan, HostFacts) -> LabBuild: everything `lab up` will create, as data. Pure, so it is
// golden-tested (test/golden/builds/), printed by `lab up --dry-run`, and recorded in the
// state directory before anything exists, so `lab down` knows all a lab may have created.
//
// The cluster's skeleton (underlay, nodes, one netns and veth per pod, kube-proxy rules,
// resolv.conf) is built here; what a pod runs and adds beyond that comes from the planner of
// its kind (plan/pod-kinds.ts), the way containerlab registers node kinds.
import type { LabPlan, PlannedNode, PlannedPod } from '../topology/address-plan.js';
import type { NetnsConfig } from './types.js';
import { ownerAlias, OWNER_PREFIX, UNDERLAY_BRIDGE } from '../topology/naming.js';
import { parseCidr } from '../util/ip.js';
import { kubeProxyRuleset } from './kube-proxy.js';
import { resolveTunnel, type HostFacts, type TunnelKind } from './host-facts.js';
import { POD_KINDS } from './pod-kinds.js';
import { mergeRulesets } from './iptables-render.js';
import { basename, dirname, relative, resolve } from 'node:path';
import { insideDir } from '../util/inside-dir.js';

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

export type ProcessRole = 'app' | 'dns' | 'ztunnel' | 'geneve' | 'waypoint' | 'sidecar' | 'supervisor';

export interface ProcessSpec {
  /** Unique within the lab, e.g. `pod/default/httpbin`, `ztunnel/node-a`. */
  id: string;
  role: ProcessRole;
  netns: string;
  pod?: string;
  node?: string;
  argv: string[];
  /** Run as this uid/gid inside the netns (a sidecar proxy runs as 1337); default root. */
  user?: { uid: number; gid: number };
  /** Directories created for it and owned by `user` (its ready file, key log...). */
  ownDirs?: string[];
  /** The process writes this file when it is ready to serve. */
  readyFile?: string;
  /**
   * 'always': the lab's supervisor starts it again when it dies, as Kubernetes does for a
   * DaemonSet's or a proxy's container (restartPolicy: Always). Absent: not restarted (the apps:
   * the lab restarts only the mesh's and the cluster's own processes). The planner of a kind
   * says so; the supervisor knows no kinds.
   */
  restart?: 'always';
  /** Others depend on it (the tunnels, the node proxies, DNS): `up` starts it before the rest. */
  startFirst?: true;
  /**
   * The config file it reloads when the file changes, showing the version it runs in its admin
   * /config_dump: `lab apply` rewrites the file and waits for that version.
   */
  liveConfig?: string;
  log: string;
}

/** Certificates the lab issues at `up` (istiod's role): one key pair per identity, in `dir`. */
export interface CertSpec {
  /** Who gets them, e.g. `ztunnel/node-a`. */
  owner: string;
  dir: string;
  /** SPIFFE URIs. */
  identities: string[];
  /** The proxy reading them runs as this user: the directory is handed to it. */
  user?: { uid: number; gid: number };
}

export interface LabBuild {
  lab: string;
  /** Which Geneve the mesh uses; absent without the mesh. */
  tunnel?: TunnelKind;
  netns: NetnsBuild[];
  /** Directories to create under the state directory before files are written. */
  dirs: string[];
  files: FileSpec[];
  /** The lab CA (created at `up`; its private key never leaves `dir`). */
  ca?: { dir: string };
  certificates: CertSpec[];
  processes: ProcessSpec[];
}

export interface BuildPaths {
  /** Lab state directory (logs, ready files, configs). */
  stateDir: string;
  /** Compiled JS root (dist/), where apps and proxies live. */
  distDir: string;
  node: string;
}

export interface BuildOptions {
  /** false: no istio-cni rules and no proxies (`lab up --no-mesh`). */
  mesh: boolean;
}

/** What a pod-kind planner sees and adds to. Planners only append; they never remove. */
export interface PlanContext {
  plan: LabPlan;
  facts: HostFacts;
  paths: BuildPaths;
  mesh: boolean;
  /** Resolved Geneve kind (only meaningful with the mesh). */
  tunnel: TunnelKind;
  build: LabBuild;
  /** The netns build of a node or pod already in the skeleton. */
  ns(netns: string): NetnsBuild;
  /** Merges rules, routes, sysctls and ipsets into a netns' config. */
  configure(netns: string, add: Partial<NetnsConfig>): void;
  process(spec: ProcessSpec): void;
  file(spec: FileSpec): void;
  dir(path: string): void;
  /** `<stateDir>/<kind>/<name>` without escaping it (names are validated DNS labels). */
  logFile(name: string): string;
  readyFile(name: string): string;
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

function mergeConfig(into: NetnsConfig, add: Partial<NetnsConfig>): void {
  Object.assign(into.sysctls, add.sysctls ?? {});
  into.rules.push(...(add.rules ?? []));
  into.routes.push(...(add.routes ?? []));
  if (add.ipsets) into.ipsets = [...(into.ipsets ?? []), ...add.ipsets];
  // What a planner adds goes first: istio-cni inserts its jumps at position 1, ahead of kube-proxy's.
  if (add.ruleset) into.ruleset = into.ruleset ? mergeRulesets(add.ruleset, into.ruleset) : add.ruleset;
}

export function planLab(plan: LabPlan, facts: HostFacts, paths: BuildPaths, opts: BuildOptions = { mesh: true }): LabBuild {
  // The tunnel is decided (and a kernel-only topology refused) before anything else is planned.
  const tunnel = resolveTunnel(plan.topology.tunnel, facts, plan.topology.file);
  const netns: NetnsBuild[] = [underlayBuild(plan), ...plan.nodes.map((n) => nodeBuild(plan, n)), ...plan.pods.map((p) => podBuild(plan, p))];
  const build: LabBuild = {
    lab: plan.lab,
    ...(opts.mesh ? { tunnel } : {}),
    netns,
    dirs: [`${paths.stateDir}/logs`, `${paths.stateDir}/ready`],
    files: [],
    certificates: [],
    processes: [],
  };
  const byName = new Map(netns.map((n) => [n.netns, n]));
  const ctx: PlanContext = {
    plan, facts, paths, mesh: opts.mesh, tunnel, build,
    ns(name) {
      const n = byName.get(name);
      if (!n) throw new Error(`planner asked for netns ${name}, which the skeleton does not have`);
      return n;
    },
    configure(name, add) { mergeConfig(ctx.ns(name).config, add); },
    process(spec) {
      if (build.processes.some((p) => p.id === spec.id)) throw new Error(`two processes planned with id ${spec.id}`);
      build.processes.push(spec);
    },
    file(spec) { build.files.push(spec); },
    dir(path) { if (!build.dirs.includes(path)) build.dirs.push(path); },
    // Names come from validated DNS names; insideDir is the second line of defence.
    logFile: (name) => insideDir(paths.stateDir, 'logs', `${name}.log`),
    readyFile: (name) => insideDir(paths.stateDir, 'ready', name),
  };
  for (const p of plan.pods) {
    ctx.file({ path: `/etc/netns/${p.netns}/resolv.conf`, content: resolvConf(plan.lab, p.namespace, plan.dns.vip) });
    ctx.file({ path: `/etc/netns/${p.netns}/hosts`, content: `${etcMarker(plan.lab)}\n127.0.0.1\tlocalhost\n${p.ip}\t${p.name}\n` });
  }
  // Kinds run in table order, each over its pods: the order of rules and processes in the
  // build (and so on the machine) does not depend on the order of pods in the file.
  for (const kind of POD_KINDS) {
    kind.planLab?.(ctx);
    for (const p of plan.pods.filter((x) => x.role === kind.role && (kind.matches?.(x) ?? true))) kind.planPod?.(ctx, p);
  }
  assertBuildPaths(build, paths.stateDir);
  return build;
}

/**
 * Every path in a build that `up` writes, hands to a process or `down` removes stays where it
 * belongs: inside the lab's state directory, or a resolv.conf/hosts in the /etc/netns directory
 * of one of the lab's own namespaces. Names are validated DNS labels, so this never fires for a
 * valid plan; it is the second line of defence for a planner (a new kind) that builds a path
 * from a name carelessly, and it fails before anything exists. Throws PathEscapeError.
 */
export function assertBuildPaths(build: LabBuild, stateDir: string): void {
  const own = new Set(build.netns.map((n) => n.netns));
  const inState = (p: string): void => void insideDir(stateDir, relative(resolve(stateDir), resolve(p)));
  for (const f of build.files) {
    const [ns, name] = [basename(dirname(f.path)), basename(f.path)];
    if (resolve(f.path) === `/etc/netns/${ns}/${name}` && own.has(ns) && ['resolv.conf', 'hosts'].includes(name)) continue;
    inState(f.path);
  }
  for (const d of build.dirs) inState(d);
  if (build.ca) inState(build.ca.dir);
  for (const c of build.certificates) inState(c.dir);
  for (const p of build.processes) {
    for (const path of [p.log, ...(p.readyFile ? [p.readyFile] : []), ...(p.ownDirs ?? [])]) inState(path);
  }
}
