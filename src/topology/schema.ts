// The topology file's schema: which keys exist, their types and defaults. Reads the
// document top to bottom and stops at the first value that is malformed on its own;
// checks that relate values to each other (references, duplicates, overlaps) are in
// validate.ts, which runs once everything here has been read.
import { basename, extname } from 'node:path';
import type {
  BuiltinApp, NetworkPlan, NodeSpec, PodMode, PodSpec, PolicyOperation, PolicyRule, PolicySource, PolicySpec,
  ServicePort, ServiceSpec, Topology, TunnelMode,
} from './types.js';
import { podUid } from './address-plan.js';
import type { Field, MapEntry, YamlSource } from './yaml-source.js';
import { childPath } from './yaml-source.js';
import {
  dns1123LabelProblem, dns1123SubdomainProblem, labelKeyProblem, labelValueProblem, portNameProblem,
} from './k8s-names.js';
import { labNameProblem } from './lab-name.js';
import { isCidr, isIpv4, parseCidr, intToIp } from '../util/ip.js';

export const DEFAULT_NETWORK: Readonly<NetworkPlan> = {
  nodeCidr: '172.18.0.0/16',
  podCidr: '10.244.0.0/16',
  serviceCidr: '10.96.0.0/16',
  dnsIp: '10.96.0.10',
};
export const MAX_NODES = 64;
export { MAX_LAB_NAME } from './lab-name.js';
export const MAX_NODE_NAME = 30;
export const MAX_POD_NAME = 63;
/** The lab runs its own pods there (ztunnel, coredns); user objects would collide with them. */
export const RESERVED_NAMESPACES = ['istio-system', 'kube-system'];

const TOP_KEYS = ['name', 'tunnel', 'dnsCapture', 'network', 'nodes', 'pods', 'services', 'policies', 'resources', 'manifests', 'waypoints'] as const;
const NETWORK_KEYS = ['nodeCidr', 'podCidr', 'serviceCidr', 'dnsIp'] as const;
const NODE_KEYS = ['name'] as const;
const POD_KEYS = ['name', 'node', 'namespace', 'serviceAccount', 'labels', 'app', 'command', 'mode', 'hbone'] as const;
const SERVICE_KEYS = ['name', 'namespace', 'selector', 'ports'] as const;
const PORT_KEYS = ['name', 'port', 'targetPort', 'protocol', 'appProtocol'] as const;
const POLICY_KEYS = ['name', 'namespace', 'action', 'selector', 'rules'] as const;
const RULE_KEYS = ['from', 'to'] as const;
const SOURCE_KEYS = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks'] as const;
const OPERATION_KEYS = ['ports', 'notPorts'] as const;
const TUNNELS: readonly TunnelMode[] = ['auto', 'kernel', 'userspace'];
// bookinfo's reviews is one app per version, as the sample ships one image per version.
const APPS: readonly BuiltinApp[] = ['sleep', 'httpbin', 'echo', 'productpage', 'details', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings'];
const MODES: readonly PodMode[] = ['ambient', 'sidecar', 'none'];

/** Entries of a map by key, after the reader has rejected unknown keys. */
function byKey(entries: MapEntry[]): Map<string, Field> {
  return new Map(entries.map((e) => [e.key, e.value]));
}

function required(src: YamlSource, parent: Field, fields: Map<string, Field>, key: string, expected: string): Field {
  const f = fields.get(key);
  if (!f) src.fail(parent.at, childPath(parent.path, key), `missing; expected ${expected}`);
  return f;
}

function checked(src: YamlSource, f: Field, value: string, problem: (v: string) => string | undefined): string {
  const p = problem(value);
  if (p) src.fail(f.at, f.path, p);
  return value;
}

function namespaceOf(src: YamlSource, f: Field | undefined): string {
  if (!f) return 'default';
  const ns = checked(src, f, src.string(f), dns1123LabelProblem);
  if (RESERVED_NAMESPACES.includes(ns)) {
    src.fail(f.at, f.path, `namespace "${ns}" is reserved: the lab runs its own pods there (reserved: ${RESERVED_NAMESPACES.join(', ')})`);
  }
  return ns;
}

function labelMap(src: YamlSource, f: Field): Record<string, string> {
  return src.stringMap(f, { key: labelKeyProblem, value: labelValueProblem });
}

function cidr(src: YamlSource, f: Field): string {
  const s = src.string(f, 'a CIDR like 10.0.0.0/16');
  if (!isCidr(s)) src.fail(f.at, f.path, `invalid CIDR "${s}": expected an IPv4 network like 10.0.0.0/16`);
  const { base, bits } = parseCidr(s);
  const network = `${intToIp(base)}/${bits}`;
  if (network !== s) src.fail(f.at, f.path, `"${s}" has host bits set: expected the network address ${network}`);
  return s;
}

function readNetwork(src: YamlSource, f: Field): NetworkPlan {
  const net = { ...DEFAULT_NETWORK };
  for (const e of src.map(f, NETWORK_KEYS)) {
    if (e.key === 'dnsIp') {
      const ip = src.string(e.value, 'an IPv4 address');
      if (!isIpv4(ip)) src.fail(e.value.at, e.value.path, `invalid IP address "${ip}": expected an IPv4 address like 10.96.0.10`);
      net.dnsIp = ip;
      continue;
    }
    const value = cidr(src, e.value);
    if (e.key === 'podCidr' && parseCidr(value).bits !== 16) {
      src.fail(e.value.at, e.value.path, `the pod CIDR must be a /16 (each node gets one /24 of it), got /${parseCidr(value).bits}`);
    }
    net[e.key as 'nodeCidr' | 'podCidr' | 'serviceCidr'] = value;
  }
  return net;
}

function readNodes(src: YamlSource, f: Field): NodeSpec[] {
  const items = src.list(f, `a list of 1 to ${MAX_NODES} nodes`);
  if (items.length === 0) src.fail(f.at, f.path, `expected at least one node, got an empty list`);
  if (items.length > MAX_NODES) src.fail(f.at, f.path, `at most ${MAX_NODES} nodes are supported, got ${items.length}`);
  return items.map((item, index) => {
    const fields = byKey(src.map(item, NODE_KEYS));
    const nameField = required(src, item, fields, 'name', 'the node name');
    const name = checked(src, nameField, src.string(nameField), (v) => dns1123LabelProblem(v, MAX_NODE_NAME));
    return { name, index };
  });
}

type PodDraft = Omit<PodSpec, 'uid'>;

function readPod(src: YamlSource, item: Field): PodDraft {
  const entries = src.map(item, POD_KEYS);
  const fields = byKey(entries);
  // Missing keys are reported at the item's start, so before any of its values.
  required(src, item, fields, 'name', 'the pod name');
  required(src, item, fields, 'node', 'the name of the node the pod runs on');
  const pod: Partial<PodDraft> & { namespace: string; mode: PodMode } = { namespace: 'default', mode: 'ambient' };
  let modeGiven = false;
  let hboneAt: Field | undefined;
  // Walk in file order so the first bad value in the file is the one reported.
  for (const { key, value } of entries) {
    switch (key) {
      case 'name': pod.name = checked(src, value, src.string(value), (v) => dns1123SubdomainProblem(v, MAX_POD_NAME)); break;
      case 'node': pod.node = src.string(value, 'a node name'); break;
      case 'namespace': pod.namespace = namespaceOf(src, value); break;
      case 'serviceAccount': pod.serviceAccount = checked(src, value, src.string(value), dns1123SubdomainProblem); break;
      case 'labels': pod.labels = labelMap(src, value); break;
      case 'mode': pod.mode = src.oneOf(value, MODES); modeGiven = true; break;
      case 'hbone': pod.hbone = src.boolean(value); hboneAt = value; break;
      case 'app':
        if (pod.command) src.fail(value.at, value.path, 'give either "app" or "command", not both');
        pod.app = src.oneOf(value, APPS);
        break;
      case 'command': {
        if (pod.app) src.fail(value.at, value.path, 'give either "app" or "command", not both');
        const cmd = src.stringList(value, { nonEmpty: true });
        if (cmd[0] === '') src.fail(value.at, `${value.path}[0]`, 'expected the program to run, got an empty string');
        pod.command = cmd;
        break;
      }
    }
  }
  // As istio's injector: the label asks for a sidecar when no mode says otherwise.
  if (!modeGiven && pod.labels?.['sidecar.istio.io/inject'] === 'true') pod.mode = 'sidecar';
  if (hboneAt && pod.mode !== 'sidecar') src.fail(hboneAt.at, hboneAt.path, 'hbone applies to sidecar pods only (mode: sidecar)');
  const name = pod.name as string;
  const draft: PodDraft = {
    name, namespace: pod.namespace, node: pod.node as string, serviceAccount: pod.serviceAccount ?? name,
    labels: pod.labels ?? { app: name }, mode: pod.mode,
  };
  if (pod.command) draft.command = pod.command;
  else draft.app = pod.app ?? 'sleep';
  if (pod.hbone !== undefined) draft.hbone = pod.hbone;
  return draft;
}

function readPort(src: YamlSource, item: Field): ServicePort {
  const entries = src.map(item, PORT_KEYS);
  const fields = byKey(entries);
  required(src, item, fields, 'port', 'the Service port, an integer 1-65535');
  const port: ServicePort = { port: 0, targetPort: 0, protocol: 'TCP' };
  for (const { key, value } of entries) {
    switch (key) {
      case 'name': port.name = checked(src, value, src.string(value), portNameProblem); break;
      case 'port': port.port = src.integer(value, 1, 65535); break;
      case 'targetPort': port.targetPort = src.integer(value, 1, 65535); break;
      case 'protocol': port.protocol = src.oneOf(value, ['TCP', 'UDP'] as const); break;
      // Kubernetes' appProtocol; Istio reads `http`, `http2`, `grpc`... The L7 proxies treat http/http2 as HTTP.
      case 'appProtocol': port.appProtocol = checked(src, value, src.string(value), (v) => (/^[a-z0-9]([-a-z0-9.\/]*[a-z0-9])?$/.test(v) ? undefined : `expected a protocol name such as http or tcp, got "${v}"`)); break;
    }
  }
  if (!fields.has('targetPort')) port.targetPort = port.port;
  // Keep the key order of the type so equal ports compare equal in tests and state.
  const out: ServicePort = port.name === undefined
    ? { port: port.port, targetPort: port.targetPort, protocol: port.protocol }
    : { name: port.name, port: port.port, targetPort: port.targetPort, protocol: port.protocol };
  if (port.appProtocol) out.appProtocol = port.appProtocol;
  return out;
}

function readService(src: YamlSource, item: Field): ServiceSpec {
  const entries = src.map(item, SERVICE_KEYS);
  const fields = byKey(entries);
  required(src, item, fields, 'name', 'the Service name');
  required(src, item, fields, 'selector', 'a map of labels selecting the pods behind the Service');
  required(src, item, fields, 'ports', 'a list of ports, e.g. [{port: 80}]');
  const svc: ServiceSpec = { name: '', namespace: 'default', selector: {}, ports: [] };
  for (const { key, value } of entries) {
    switch (key) {
      case 'name': svc.name = checked(src, value, src.string(value), dns1123LabelProblem); break;
      case 'namespace': svc.namespace = namespaceOf(src, value); break;
      case 'selector':
        svc.selector = labelMap(src, value);
        if (Object.keys(svc.selector).length === 0) {
          src.fail(value.at, value.path, 'expected a non-empty map of labels (a Service without a selector has no endpoints here)');
        }
        break;
      case 'ports': {
        const items = src.list(value, 'a list of ports');
        if (items.length === 0) src.fail(value.at, value.path, 'expected at least one port, got an empty list');
        svc.ports = items.map((p) => readPort(src, p));
        const seen = new Map<string, number>();
        const names = new Map<string, number>();
        svc.ports.forEach((p, i) => {
          const id = `${p.port}/${p.protocol}`;
          const at = items[i];
          if (seen.has(id)) src.fail(at.at, at.path, `duplicate port ${id} (also ports[${seen.get(id)}])`);
          seen.set(id, i);
          if (p.name !== undefined) {
            if (names.has(p.name)) src.fail(at.at, `${at.path}.name`, `duplicate port name "${p.name}" (also ports[${names.get(p.name)}])`);
            names.set(p.name, i);
          } else if (items.length > 1) {
            src.fail(at.at, `${at.path}.name`, 'missing; a Service with more than one port needs a name on each port');
          }
        });
        break;
      }
    }
  }
  return svc;
}

function ipBlocks(src: YamlSource, f: Field): string[] {
  return src.list(f, 'a list of IPs or CIDRs').map((item) => {
    const s = src.string(item, 'an IP or CIDR');
    if (!isIpv4(s) && !isCidr(s)) src.fail(item.at, item.path, `invalid IP block "${s}": expected an IPv4 address or CIDR like 10.244.0.0/16`);
    return s;
  });
}

function portStrings(src: YamlSource, f: Field): string[] {
  return src.list(f, 'a list of ports as strings').map((item) => {
    const s = src.string(item, 'a port number as a string, e.g. "80"');
    const n = Number(s);
    if (!/^\d+$/.test(s) || n < 1 || n > 65535) {
      src.fail(item.at, item.path, `invalid port "${s}": expected a port number 1-65535 as a string, e.g. "80"`);
    }
    return s;
  });
}

function readSource(src: YamlSource, f: Field): PolicySource {
  const source: PolicySource = {};
  for (const { key, value } of src.map(f, SOURCE_KEYS)) {
    const k = key as keyof PolicySource;
    source[k] = k === 'ipBlocks' || k === 'notIpBlocks' ? ipBlocks(src, value) : src.stringList(value);
  }
  return source;
}

function readOperation(src: YamlSource, f: Field): PolicyOperation {
  const op: PolicyOperation = {};
  for (const { key, value } of src.map(f, OPERATION_KEYS)) op[key as keyof PolicyOperation] = portStrings(src, value);
  return op;
}

function readRule(src: YamlSource, item: Field): PolicyRule {
  const rule: PolicyRule = {};
  for (const { key, value } of src.map(item, RULE_KEYS)) {
    if (key === 'from') {
      rule.from = src.list(value, 'a list of {source: ...}').map((el) => {
        const fields = byKey(src.map(el, ['source']));
        return { source: readSource(src, required(src, el, fields, 'source', 'a map of source conditions')) };
      });
    } else {
      rule.to = src.list(value, 'a list of {operation: ...}').map((el) => {
        const fields = byKey(src.map(el, ['operation']));
        return { operation: readOperation(src, required(src, el, fields, 'operation', 'a map of operation conditions')) };
      });
    }
  }
  return rule;
}

function readPolicy(src: YamlSource, item: Field): PolicySpec {
  const entries = src.map(item, POLICY_KEYS);
  const fields = byKey(entries);
  required(src, item, fields, 'name', 'the AuthorizationPolicy name');
  const policy: PolicySpec = { name: '', namespace: 'default', action: 'ALLOW', rules: [] };
  for (const { key, value } of entries) {
    switch (key) {
      case 'name': policy.name = checked(src, value, src.string(value), dns1123SubdomainProblem); break;
      case 'namespace': policy.namespace = namespaceOf(src, value); break;
      case 'action': policy.action = src.oneOf(value, ['ALLOW', 'DENY'] as const); break;
      case 'selector': {
        // Istio nests the labels under matchLabels; the lab takes the labels directly.
        const sel = labelMapOrHint(src, value);
        if (Object.keys(sel).length > 0) policy.selector = sel;
        break;
      }
      case 'rules': policy.rules = src.list(value, 'a list of rules').map((r) => readRule(src, r)); break;
    }
  }
  return policy;
}

function labelMapOrHint(src: YamlSource, f: Field): Record<string, string> {
  const entries = src.map(f, null, 'a map of labels');
  const nested = entries.find((e) => e.key === 'matchLabels');
  if (nested) {
    src.fail(nested.keyAt, nested.value.path, 'write the labels directly under selector (e.g. selector: {app: httpbin}); the lab\'s selector is what Istio calls matchLabels');
  }
  return labelMap(src, f);
}

function labName(src: YamlSource, f: Field | undefined, file: string): string {
  if (f) return checked(src, f, src.string(f), labNameProblem);
  const name = basename(file, extname(file));
  const problem = labNameProblem(name);
  if (problem) {
    src.fail(src.root.at, 'name', `missing, and the file name does not make a valid lab name: ${problem}; set "name:" in the file`);
  }
  return name;
}

/** The `resources:` field and `manifests:` list of a source, for load.ts to hand to src/istio. */
export const rawResources = new WeakMap<YamlSource, Field>();
export const rawManifests = new WeakMap<YamlSource, string[]>();

/** Everything a file says, with defaults filled in; `file` is stored as given. */
export function readTopology(src: YamlSource, file: string): Topology {
  const root = src.root;
  if (src.isNull(root)) src.fail(root.at, root.path, `the file is empty; expected a map with at least "nodes"`);
  const entries = src.map(root, TOP_KEYS, `a map with keys ${TOP_KEYS.join(', ')}`);
  const fields = byKey(entries);
  required(src, root, fields, 'nodes', `a list of 1 to ${MAX_NODES} nodes, e.g. nodes: [{name: node-a}]`);
  let name: string | undefined;
  let tunnel: TunnelMode = 'auto';
  let dnsCapture = false;
  let resources: Field | undefined;
  let manifests: string[] = [];
  let network: NetworkPlan = { ...DEFAULT_NETWORK };
  let nodes: NodeSpec[] = [];
  let services: ServiceSpec[] = [];
  let policies: PolicySpec[] = [];
  const pods: PodDraft[] = [];
  if (!fields.has('name')) name = labName(src, undefined, file);
  for (const { key, value } of entries) {
    // An empty `pods:` reads as null; for the optional lists that means "none".
    const emptyList = src.isNull(value) && ['pods', 'services', 'policies', 'resources', 'manifests', 'waypoints'].includes(key);
    if (emptyList) continue;
    switch (key) {
      case 'name': name = labName(src, value, file); break;
      case 'tunnel': tunnel = src.oneOf(value, TUNNELS); break;
      case 'dnsCapture': dnsCapture = src.boolean(value); break;
      case 'network': network = readNetwork(src, value); break;
      case 'nodes': nodes = readNodes(src, value); break;
      case 'pods': pods.push(...src.list(value, 'a list of pods').map((p) => readPod(src, p))); break;
      case 'services': services = src.list(value, 'a list of Services').map((s) => readService(src, s)); break;
      case 'policies': policies = src.list(value, 'a list of AuthorizationPolicies').map((p) => readPolicy(src, p)); break;
      case 'waypoints':
        if (src.list(value, 'a list').length > 0) {
          src.fail(value.at, value.path, 'waypoints are declared as Kubernetes objects: a Gateway with gatewayClassName: istio-waypoint under resources: (see README)');
        }
        break;
      // Istio/Gateway API objects: read by src/istio once the topology itself is valid (load.ts).
      case 'resources': src.list(value, 'a list of Kubernetes objects (Gateway, HTTPRoute, VirtualService, ...)'); resources = value; break;
      case 'manifests': manifests = src.stringList(value, { nonEmpty: true }); break;
    }
  }
  const lab = name as string;
  if (resources) rawResources.set(src, resources);
  if (manifests.length) rawManifests.set(src, manifests);
  return {
    name: lab, file, network, tunnel, dnsCapture, nodes,
    pods: pods.map((p) => ({ ...p, uid: podUid(lab, p.namespace, p.name) })),
    services, policies,
  };
}
