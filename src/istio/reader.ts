// Typed readers (yaml-fields.ts, shared with the topology's YamlSource) over one Kubernetes
// object of a multi-document YAML text. Every value knows where it came from, so a problem is
// reported as `<file>:<line>:<col>: <Kind> <ns>/<name>: <field path>: <problem>`. The subject
// ("VirtualService default/reviews") is set once the envelope has been read; before that it is
// "document N". What is the Istio reader's own: that prefix (with the document's line offset),
// how unknown and unsupported fields are named, and a few extra readers.
import { isScalar, isSeq } from 'yaml';
import type { Document, LineCounter } from 'yaml';
import { childPath, describe, itemPath, ROOT_PATH, YamlFields } from '../topology/yaml-fields.js';
import type { Field, MapEntry } from '../topology/yaml-fields.js';

export type { Field, MapEntry };
export { childPath, itemPath, ROOT_PATH };

/** Fields Istio or Gateway API define that the lab does not implement: key -> why / what instead. */
export type NotSupported = Readonly<Record<string, string>>;

export class ObjectReader extends YamlFields {
  subject: string;

  constructor(
    file: string,
    lines: LineCounter,
    doc: Document,
    /** 1-based position of the document in the text, for messages before the kind is known. */
    readonly docNumber: number,
    private readonly lineOffset: number,
  ) {
    super(file, lines, doc);
    this.subject = `document ${docNumber}`;
  }

  /** A reader for another object of the same document (an item of a List). */
  sibling(): ObjectReader {
    return new ObjectReader(this.file, this.lines, this.doc, this.docNumber, this.lineOffset);
  }

  /** `file:line:col: subject: path` — the start of every message about the value at `at`. */
  where(at: number, path: string): string {
    const { line, col } = this.lines.linePos(at);
    return `${this.file}:${line + this.lineOffset}:${col}: ${this.subject}: ${path}`;
  }

  isSequence(f: Field): boolean {
    return isSeq(this.deref(f));
  }

  /**
   * The entries of a map in file order. Keys in `notSupported` are refused with the reason; other
   * keys outside `allowed` are unknown. Both messages list what this map supports.
   */
  map(f: Field, allowed: readonly string[], notSupported: NotSupported = {}, expected = 'a map'): MapEntry[] {
    const supported = allowed.length ? allowed.join(', ') : 'nothing';
    return this.mapEntries(f, expected, (key, keyAt, path) => {
      const why = Object.hasOwn(notSupported, key) ? notSupported[key] : undefined;
      if (why !== undefined) this.fail(keyAt, path, `not supported by the lab: ${why} (supported here: ${supported})`);
      if (!allowed.includes(key)) this.fail(keyAt, path, `unknown field "${key}" (supported here: ${supported})`);
    });
  }

  nonEmptyString(f: Field, expected: string): string {
    const s = this.string(f, expected);
    if (s === '') this.fail(f.at, f.path, `expected ${expected}, got an empty string`);
    return s;
  }

  number(f: Field, min: number, max: number): number {
    const n = this.deref(f);
    const v = isScalar(n) ? n.value : undefined;
    if (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max) return v;
    this.fail(f.at, f.path, `expected a number ${min}-${max}, got ${describe(n)}`);
  }

  stringList(f: Field, opts: { nonEmpty?: boolean; expected?: string } = {}): string[] {
    return this.list(f, 'a list of strings', opts).map((item) => this.string(item, opts.expected));
  }

  /** Calls `problem` on a string value and fails with what it returns. */
  checked(f: Field, value: string, problem: (v: string) => string | undefined): string {
    const p = problem(value);
    if (p) this.fail(f.at, f.path, p);
    return value;
  }

  required(parent: Field, fields: Map<string, Field>, key: string, expected: string): Field {
    const f = fields.get(key);
    if (!f) this.fail(parent.at, childPath(parent.path, key), `missing; expected ${expected}`);
    return f;
  }
}

/** Entries of a map by key, after the reader has rejected unknown keys. */
export function byKey(entries: MapEntry[]): Map<string, Field> {
  return new Map(entries.map((e) => [e.key, e.value]));
}
