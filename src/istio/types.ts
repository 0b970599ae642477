// What parsing Istio / Gateway API objects produces, and what one kind's reader is handed.
import type { MeshResources } from '../l7/model.js';
import type { PolicySpec } from '../topology/types.js';
import type { Field, ObjectReader } from './reader.js';

/**
 * A reference the object makes to something outside itself, checked by validateResources once the
 * topology is known. `where` is `file:line:col: Kind ns/name: field path`, ready for a message.
 */
export type ResourceRef =
  | { type: 'object'; kind: string; namespace: string; name: string; where: string }
  | { type: 'service'; host: string; port?: number; where: string; what: string }
  | { type: 'subset'; host: string; subset: string; where: string }
  | { type: 'node'; node: string; where: string }
  | { type: 'gateway'; namespace: string; name: string; where: string }
  | { type: 'waypoint'; namespace: string; gateway: string; forServiceAccount?: string; where: string }
  | { type: 'routes'; host: string; port?: number; where: string };

export interface ParsedResources {
  resources: MeshResources;
  /** AuthorizationPolicies (or their L4 part, as istiod converts them) for ztunnel, in the topology's shape. */
  l4Policies: PolicySpec[];
  /** Things that parse but will not do what the user may expect, each starting with `file:line:col: Kind ns/name: path: `. */
  warnings: string[];
  refs: ResourceRef[];
}

export interface ObjectMeta {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  namespaceField?: Field;
  annotations: Record<string, string>;
  /** Where each annotation's value is, for errors about it. */
  annotationFields: Map<string, Field>;
}

/** What a kind's reader gets: the reader (subject already "Kind ns/name"), metadata, spec, and the output. */
export interface KindContext {
  r: ObjectReader;
  meta: ObjectMeta;
  /** The object's `spec` (a null node when absent). */
  spec: Field;
  /** The object's own start, for messages about the object as a whole. */
  object: Field;
  out: ParsedResources;
}

export interface KindReader {
  apiVersions: readonly string[];
  /** Annotations this kind understands; other Istio or lab annotations are refused. */
  annotations?: readonly string[];
  /** The root namespace is allowed (mesh-wide policy). */
  rootNamespaceAllowed?: boolean;
  read(ctx: KindContext): void;
}
