// The entry point: a multi-document YAML text (a topology's `resources:`, or a file for
// `lab apply -f`) -> the lab's MeshResources, the ztunnel L4 policies and warnings. Documents are
// separated by `---`; `kind: List` holds more objects in `items`. The first problem stops parsing
// with a UserError naming file, line, column, the object and the field.
import { LineCounter, parseAllDocuments } from 'yaml';
import type { Document } from 'yaml';
import { emptyMeshResources } from '../l7/model.js';
import { dns1123LabelProblem, dns1123SubdomainProblem } from '../topology/k8s-names.js';
import { ObjectReader, byKey, childPath } from './reader.js';
import type { Field } from './reader.js';
import type { KindReader, ObjectMeta, ParsedResources } from './types.js';
import { gatewayKind } from './gateway.js';
import { authorizationPolicyKind } from './authorization-policy.js';
import { httpRouteKind } from './http-route.js';
import { virtualServiceKind } from './virtual-service.js';
import { destinationRuleKind } from './destination-rule.js';
import { peerAuthenticationKind } from './peer-authentication.js';

export type { ParsedResources, ResourceRef } from './types.js';

/** Istio's root namespace: policies there apply mesh-wide. */
export const ROOT_NAMESPACE = 'istio-system';
const RESERVED_NAMESPACES = ['istio-system', 'kube-system'];

const KINDS: Readonly<Record<string, KindReader>> = {
  Gateway: gatewayKind,
  AuthorizationPolicy: authorizationPolicyKind,
  HTTPRoute: httpRouteKind,
  VirtualService: virtualServiceKind,
  DestinationRule: destinationRuleKind,
  PeerAuthentication: peerAuthenticationKind,
};

/** Kinds users may paste from Istio's docs, with what to do instead. */
const KNOWN_UNSUPPORTED: Readonly<Record<string, string>> = {
  ServiceEntry: 'the lab has no mesh-external services',
  Sidecar: 'the lab has no Sidecar scoping',
  EnvoyFilter: 'the lab has no Envoy',
  WorkloadEntry: 'the lab has no VMs',
  WorkloadGroup: 'the lab has no VMs',
  RequestAuthentication: 'the lab has no JWT authentication',
  Telemetry: 'the lab has no Telemetry API',
  WasmPlugin: 'the lab has no Wasm',
  ProxyConfig: 'the lab has no ProxyConfig',
  GRPCRoute: 'only HTTPRoute is supported',
  TCPRoute: 'only HTTPRoute is supported',
  TLSRoute: 'only HTTPRoute is supported',
  UDPRoute: 'only HTTPRoute is supported',
  ReferenceGrant: 'routes must stay in their namespace',
  GatewayClass: 'the lab has the istio-waypoint class built in',
  Service: 'Services are declared in the topology\'s services: list',
  Deployment: 'pods are declared in the topology\'s pods: list',
  Pod: 'pods are declared in the topology\'s pods: list',
  ServiceAccount: 'service accounts come from the topology\'s pods (serviceAccount:)',
  Namespace: 'namespaces come from the objects in the topology',
};

const META_KEYS = ['name', 'namespace', 'labels', 'annotations', 'uid', 'resourceVersion', 'creationTimestamp',
  'generation', 'managedFields', 'finalizers', 'ownerReferences', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds'] as const;

const emptyParsed = (): ParsedResources => ({ resources: emptyMeshResources(), l4Policies: [], warnings: [], refs: [] });

/** The lab's annotation prefix, and Istio's: annotations under them change behaviour, so unknown ones are refused. */
const behaviourAnnotation = (key: string): boolean => /(^|\.)istio\.io\/|^ambient-lab\.io\//.test(key);

function readMeta(r: ObjectReader, f: Field | undefined, object: Field, kind: string, apiVersion: string): ObjectMeta {
  if (!f) r.fail(object.at, childPath(object.path, 'metadata'), 'missing; expected a map with at least "name"');
  const entries = r.map(f, META_KEYS, { generateName: 'give the object a fixed name' });
  const fields = byKey(entries);
  const nameField = r.required(f, fields, 'name', `the ${kind}'s name`);
  const name = r.checked(nameField, r.string(nameField), dns1123SubdomainProblem);
  let namespace = 'default';
  const nsField = fields.get('namespace');
  if (nsField) namespace = r.checked(nsField, r.string(nsField), dns1123LabelProblem);
  const annotations: Record<string, string> = {};
  const annotationFields = new Map<string, Field>();
  const ann = fields.get('annotations');
  if (ann && !r.isNull(ann)) {
    for (const e of r.entries(ann, 'a map of annotations')) {
      annotations[e.key] = r.string(e.value);
      annotationFields.set(e.key, e.value);
    }
  }
  // Labels only matter on pods, and the topology declares pods; on these objects they are inert.
  const labels = fields.get('labels');
  if (labels && !r.isNull(labels)) r.entries(labels, 'a map of labels');
  return { apiVersion, kind, name, namespace, namespaceField: nsField, annotations, annotationFields };
}

function readObject(r: ObjectReader, object: Field, out: ParsedResources, inList: boolean): void {
  if (r.isNull(object)) return; // an empty document (a trailing "---")
  const entries = r.map(object, ['apiVersion', 'kind', 'metadata', 'spec', 'status', 'items'], {}, 'a Kubernetes object (a map with apiVersion, kind, metadata, spec)');
  const fields = byKey(entries);
  const kindField = r.required(object, fields, 'kind', 'the object\'s kind, e.g. VirtualService');
  const kind = r.nonEmptyString(kindField, 'a kind like VirtualService');
  const apiField = r.required(object, fields, 'apiVersion', `the apiVersion of the ${kind}`);
  const apiVersion = r.nonEmptyString(apiField, 'an apiVersion like networking.istio.io/v1beta1');

  if (kind === 'List' || kind.endsWith('List')) {
    if (inList) r.fail(kindField.at, kindField.path, 'a List inside a List is not supported');
    if (kind !== 'List' || apiVersion !== 'v1') {
      r.fail(kindField.at, kindField.path, `expected kind List with apiVersion v1 for a list of objects, got ${kind} ${apiVersion}`);
    }
    for (const [k, f] of fields) {
      if (k === 'spec' || k === 'status') r.fail(f.at, f.path, `unknown field "${k}" in a List (supported here: apiVersion, kind, metadata, items)`);
    }
    const items = fields.get('items');
    if (!items || r.isNull(items)) return;
    for (const item of r.list(items, 'a list of objects')) {
      readObject(r.sibling(), item, out, true);
    }
    return;
  }
  const itemsField = fields.get('items');
  if (itemsField) r.fail(itemsField.at, itemsField.path, `unknown field "items" (only a List has items; this is a ${kind})`);

  const reader = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  if (!reader) {
    const why = Object.hasOwn(KNOWN_UNSUPPORTED, kind) ? `${KNOWN_UNSUPPORTED[kind]}; ` : '';
    r.fail(kindField.at, kindField.path, `kind ${kind} is not supported by the lab: ${why}supported kinds: ${Object.keys(KINDS).join(', ')}`);
  }
  r.subject = `${kind} (document ${r.docNumber})`;
  const meta = readMeta(r, fields.get('metadata'), object, kind, apiVersion);
  r.subject = `${kind} ${meta.namespace}/${meta.name}`;
  if (!reader.apiVersions.includes(apiVersion)) {
    r.fail(apiField.at, apiField.path, `unsupported apiVersion "${apiVersion}" for ${kind} (supported: ${reader.apiVersions.join(', ')})`);
  }
  if (RESERVED_NAMESPACES.includes(meta.namespace) && !(meta.namespace === ROOT_NAMESPACE && reader.rootNamespaceAllowed)) {
    const at = meta.namespaceField ?? object;
    const rootOk = Object.entries(KINDS).filter(([, k]) => k.rootNamespaceAllowed).map(([n]) => n).join(' and ');
    r.fail(at.at, at.path, `namespace "${meta.namespace}" is reserved: the lab runs its own pods there ` +
      `(only ${rootOk} may be in ${ROOT_NAMESPACE}, where they apply mesh-wide)`);
  }
  for (const [key, f] of meta.annotationFields) {
    if (behaviourAnnotation(key) && !(reader.annotations ?? []).includes(key)) {
      const known = reader.annotations?.length ? `supported on a ${kind}: ${reader.annotations.join(', ')}` : `a ${kind} takes none`;
      r.fail(f.at, f.path, `annotation "${key}" is not supported by the lab (${known})`);
    }
  }
  out.refs.push({ type: 'object', kind, namespace: meta.namespace, name: meta.name, where: r.where(object.at, 'metadata.name') });
  const spec = fields.get('spec') ?? { node: null, at: object.at, path: childPath(object.path, 'spec') };
  reader.read({ r, meta, spec, object, out });
}

/**
 * Parses every object in `text`: documents separated by `---`, each an object, a `kind: List`, or a
 * plain YAML list of objects (a topology's `resources:` block, whose items are named resources[i]).
 * `lineOffset` is added to line numbers, for text cut out of a bigger file.
 */
/** How the items of a document that is a plain list are named in messages (the topology's key). */
const RESOURCES_PATH = 'resources';

export function parseResources(text: string, file: string, opts: { lineOffset?: number } = {}): ParsedResources {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const out = emptyParsed();
  const list: Document[] = Array.isArray(docs) ? docs : [];
  const readers = list.map((doc, i) => new ObjectReader(file, lines, doc, i + 1, opts.lineOffset ?? 0));
  // Like kubectl, a syntax error anywhere stops everything before any object is used.
  list.forEach((doc, i) => {
    const err = doc.errors[0];
    if (err) readers[i].fail(err.pos[0], 'yaml', `syntax error: ${err.message.split('\n')[0]}`);
  });
  for (const r of readers) {
    const root = r.root;
    if (r.isSequence(root)) {
      // A topology's `resources:` block: the objects as a YAML list.
      r.list({ ...root, path: RESOURCES_PATH }).forEach((item) => readObject(r.sibling(), item, out, true));
    } else {
      readObject(r, root, out, false);
    }
  }
  return out;
}

/** Resources of several sources (the topology's `resources:` and `lab apply` files) as one. */
export function mergeParsed(...parts: ParsedResources[]): ParsedResources {
  const out = emptyParsed();
  for (const p of parts) {
    out.resources.waypoints.push(...p.resources.waypoints);
    out.resources.routes.push(...p.resources.routes);
    out.resources.destinationPolicies.push(...p.resources.destinationPolicies);
    out.resources.l7Policies.push(...p.resources.l7Policies);
    out.resources.peerAuthentications.push(...p.resources.peerAuthentications);
    out.l4Policies.push(...p.l4Policies);
    out.warnings.push(...p.warnings);
    out.refs.push(...p.refs);
  }
  return out;
}
