// A YAML text as the separate Kubernetes objects it holds (documents, `kind: List` items, or a
// plain list), each with its identity and its own YAML text: what `lab apply` stores per
// object, and what `lab delete` and `lab get` name. Validation is parseResources' job; this
// only splits text that parseResources has accepted.
import { LineCounter, isMap, isSeq, parseAllDocuments, type Document, type Node } from 'yaml';

export interface ObjectDocument {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  /** `kind/namespace/name`: an object's identity, as kubectl's. */
  key: string;
  /**
   * The object alone, as the user wrote it: its source text, with the columns before its first
   * line blanked, so that parsing it again with the line offset of `where` reports the lines
   * and columns of the user's file (warnings at `lab apply`, and every later re-plan).
   */
  text: string;
  /** Where it started, for messages: `file:line`. */
  where: string;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export const objectKey = (kind: string, namespace: string, name: string): string => `${kind}/${namespace}/${name}`;

export function splitObjects(text: string, file: string): ObjectDocument[] {
  const lines = new LineCounter();
  const out: ObjectDocument[] = [];
  const add = (node: Node): void => {
    const json = node.toJSON() as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    if (!json || typeof json !== 'object') return;
    if (json.kind === 'List' && isMap(node)) {
      const items = node.get('items', true) as Node | undefined;
      if (items && isSeq(items)) for (const item of items.items) add(item as Node);
      return;
    }
    const kind = str(json.kind);
    const namespace = str(json.metadata?.namespace) || 'default';
    const name = str(json.metadata?.name);
    const [start, end] = node.range ?? [0, text.length];
    const lineStart = text.lastIndexOf('\n', start - 1) + 1;
    out.push({
      apiVersion: str(json.apiVersion), kind, namespace, name, key: objectKey(kind, namespace, name),
      text: `${' '.repeat(start - lineStart)}${text.slice(start, end).trimEnd()}\n`, where: `${file}:${lines.linePos(start).line}`,
    });
  };
  for (const doc of parseAllDocuments(text, { lineCounter: lines })) {
    const root = (doc as Document).contents as Node | null;
    if (!root) continue;
    if (isSeq(root)) for (const item of root.items) add(item as Node);
    else add(root);
  }
  return out;
}
