// Checks that relate one part of a topology to another: references, uniqueness,
// overlapping networks, capacity. They run after schema.ts has read a well-formed
// file; every problem is collected with its place and the first one in the file wins,
// so which error a user sees does not depend on the order the checks are written in.
import type { Topology } from './types.js';
import type { YamlSource } from './yaml-source.js';
import { labelsMatch } from './address-plan.js';
import { cidrContains, cidrSize, cidrsOverlap, ipToInt, nthAddress, parseCidr } from '../util/ip.js';
import { UserError } from '../util/errors.js';

/** A node's pod CIDR is a /24 whose .1 is the gateway and where ztunnel (and on the first node coredns) come first. */
export const MAX_PODS_PER_NODE = 250;
/** User Service VIPs start here (planAddresses: .1 is `kubernetes`, .10 is DNS). */
const FIRST_SERVICE_HOST = 11;

interface Issue {
  at: number;
  path: string;
  message: string;
}

type CidrKey = 'nodeCidr' | 'podCidr' | 'serviceCidr';

function networkIssues(t: Topology, src: YamlSource, add: (path: string, message: string) => void): void {
  const net = t.network;
  const explicit = (k: keyof typeof net): boolean => src.hasValue(`network.${k}`);
  const show = (k: keyof typeof net): string => `network.${k} ${net[k]}${explicit(k) ? '' : ' (the default)'}`;
  const keys: CidrKey[] = ['nodeCidr', 'podCidr', 'serviceCidr'];
  for (let i = 0; i < keys.length; i++) {
    for (let j = i + 1; j < keys.length; j++) {
      const [a, b] = [keys[i], keys[j]];
      if (!cidrsOverlap(net[a], net[b])) continue;
      // Point at the one the user wrote last; a default has no place in the file.
      const [here, other] = !explicit(a) || (explicit(b) && src.offsetOf(`network.${b}`) > src.offsetOf(`network.${a}`))
        ? [b, a] : [a, b];
      add(`network.${here}`, `${net[here]} overlaps ${show(other)}; the node, pod and service CIDRs must not overlap`);
    }
  }
  const size = cidrSize(net.serviceCidr);
  const dnsProblem = !cidrContains(net.serviceCidr, net.dnsIp)
    ? 'outside'
    : net.dnsIp === nthAddress(net.serviceCidr, 0) || net.dnsIp === nthAddress(net.serviceCidr, size - 1)
      ? 'the network or broadcast address' : undefined;
  if (dnsProblem && (explicit('dnsIp') || !explicit('serviceCidr'))) {
    add('network.dnsIp', `${net.dnsIp} is ${dnsProblem === 'outside' ? 'outside' : `${dnsProblem} of`} ${show('serviceCidr')}; ` +
      'the cluster DNS Service IP must be a host address inside the service CIDR');
  } else if (dnsProblem) {
    add('network.serviceCidr', `the default network.dnsIp ${net.dnsIp} is ${dnsProblem === 'outside' ? 'outside' : `${dnsProblem} of`} ` +
      `${net.serviceCidr}; set network.dnsIp to a host address inside it`);
  }
  // Node i's eth0 is host i+2 (.1 is the bridge side), and the broadcast address is off limits.
  const nodeRoom = Math.max(cidrSize(net.nodeCidr) - 3, 0);
  if (t.nodes.length > nodeRoom) {
    const [path, what] = explicit('nodeCidr') ? ['network.nodeCidr', net.nodeCidr] : ['nodes', show('nodeCidr')];
    add(path, `${what} has room for ${count(nodeRoom, 'node')}, the topology has ${t.nodes.length}`);
  }
  // VIPs run from .11 to the last host address, stepping over the DNS IP.
  const lastHost = size - 2;
  const dnsHost = ipToInt(net.dnsIp) - parseCidr(net.serviceCidr).base;
  const skipsDns = dnsHost >= FIRST_SERVICE_HOST && dnsHost <= lastHost ? 1 : 0;
  const serviceRoom = Math.max(lastHost - FIRST_SERVICE_HOST + 1 - skipsDns, 0);
  if (t.services.length > serviceRoom) {
    const [path, what] = explicit('serviceCidr') ? ['network.serviceCidr', net.serviceCidr] : ['services', show('serviceCidr')];
    add(path, `${what} has room for ${count(serviceRoom, 'Service')} (the first is .${FIRST_SERVICE_HOST}), the topology has ${t.services.length}`);
  }
}

const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** Reports the second of two equal keys, naming where the first one is. */
function duplicates<T>(
  items: T[], key: (x: T) => string, what: (x: T) => string, list: string, add: (path: string, message: string) => void,
): void {
  const first = new Map<string, number>();
  items.forEach((x, i) => {
    const k = key(x);
    const j = first.get(k);
    if (j === undefined) first.set(k, i);
    else add(`${list}[${i}].name`, `duplicate ${what(x)} (also ${list}[${j}])`);
  });
}

function podIssues(t: Topology, add: (path: string, message: string) => void): void {
  const nodeNames = [...new Set(t.nodes.map((n) => n.name))];
  const perNode = new Map<string, number>();
  t.pods.forEach((p, i) => {
    if (!nodeNames.includes(p.node)) {
      add(`pods[${i}].node`, `unknown node "${p.node}" (nodes are: ${nodeNames.join(', ')})`);
      return;
    }
    const count = (perNode.get(p.node) ?? 0) + 1;
    perNode.set(p.node, count);
    if (count === MAX_PODS_PER_NODE + 1) {
      add(`pods[${i}].node`, `node "${p.node}" already has ${MAX_PODS_PER_NODE} pods, the most one node can hold ` +
        `(its pod CIDR is a /24 shared with the gateway and the lab's own pods)`);
    }
  });
  duplicates(t.pods, (p) => `${p.namespace}/${p.name}`, (p) => `pod "${p.name}" in namespace "${p.namespace}"`, 'pods', add);
}

function serviceIssues(t: Topology, add: (path: string, message: string) => void): void {
  duplicates(t.services, (s) => `${s.namespace}/${s.name}`, (s) => `Service "${s.name}" in namespace "${s.namespace}"`, 'services', add);
  t.services.forEach((s, i) => {
    const inNs = t.pods.filter((p) => p.namespace === s.namespace);
    if (inNs.some((p) => labelsMatch(s.selector, p.labels))) return;
    const fmt = (l: Record<string, string>): string => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',');
    const seen = inNs.length === 0
      ? 'it has no pods'
      : `pod labels there: ${[...new Set(inNs.map((p) => `{${fmt(p.labels)}}`))].join(' ')}`;
    add(`services[${i}].selector`, `{${fmt(s.selector)}} selects no pod in namespace "${s.namespace}" (${seen})`);
  });
}

/** Throws a UserError for the first cross-reference problem in the file, if any. */
export function validateTopology(t: Topology, src: YamlSource): void {
  const issues: Issue[] = [];
  const add = (path: string, message: string): void => {
    issues.push({ at: src.offsetOf(path), path, message });
  };
  networkIssues(t, src, add);
  duplicates(t.nodes, (n) => n.name, (n) => `node name "${n.name}"`, 'nodes', add);
  podIssues(t, add);
  serviceIssues(t, add);
  duplicates(t.policies, (p) => `${p.namespace}/${p.name}`, (p) => `AuthorizationPolicy "${p.name}" in namespace "${p.namespace}"`, 'policies', add);
  if (issues.length === 0) return;
  // Array.prototype.sort is stable: equal places keep the order the checks found them in.
  const first = [...issues].sort((a, b) => a.at - b.at)[0];
  throw new UserError(src.describeAt(first.at, first.path, first.message));
}
