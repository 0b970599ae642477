// Typed readers over one Kubernetes object of a multi-document YAML text. Like the topology's
// YamlSource, every value knows where it came from, so a problem is reported as
// `<file>:<line>:<col>: <Kind> <ns>/<name>: <field path>: <problem>`. The subject ("VirtualService
// default/reviews") is set once the envelope has been read; before that it is "document N".
import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Node } from 'yaml';
import { UserError } from '../util/errors.js';
import { childPath, describe, itemPath, ROOT_PATH } from '../topology/yaml-source.js';
import type { Field, MapEntry } from '../topology/yaml-source.js';

export type { Field, MapEntry };
export { childPath, itemPath, ROOT_PATH };

/** Fields Istio or Gateway API define that the lab does not implement: key -> why / what instead. */
export type NotSupported = Readonly<Record<string, string>>;

export class ObjectReader {
  subject: string;

  constructor(
    readonly file: string,
    private readonly lines: LineCounter,
    private readonly doc: Document,
    /** 1-based position of the document in the text, for messages before the kind is known. */
    readonly docNumber: number,
    private readonly lineOffset: number,
  ) {
    this.subject = `document ${docNumber}`;
  }

  /** A reader for another object of the same document (an item of a List). */
  sibling(): ObjectReader {
    return new ObjectReader(this.file, this.lines, this.doc, this.docNumber, this.lineOffset);
  }

  get root(): Field {
    const node = this.doc.contents as Node | null;
    return { node, at: node?.range?.[0] ?? 0, path: ROOT_PATH };
  }

  /** `file:line:col: subject: path` — the start of every message about the value at `at`. */
  where(at: number, path: string): string {
    const { line, col } = this.lines.linePos(at);
    return `${this.file}:${line + this.lineOffset}:${col}: ${this.subject}: ${path}`;
  }

  fail(at: number, path: string, message: string): never {
    throw new UserError(`${this.where(at, path)}: ${message}`);
  }

  private deref(f: Field): Node | null {
    const node = f.node;
    if (node && isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return node;
  }

  isSequence(f: Field): boolean {
    return isSeq(this.deref(f));
  }

  isNull(f: Field): boolean {
    const n = this.deref(f);
    return n === null || (isScalar(n) && (n.value === null || n.value === undefined));
  }

  /**
   * The entries of a map in file order. Keys in `notSupported` are refused with the reason; other
   * keys outside `allowed` are unknown. Both messages list what this map supports.
   */
  map(f: Field, allowed: readonly string[], notSupported: NotSupported = {}, expected = 'a map'): MapEntry[] {
    const n = this.deref(f);
    if (!isMap(n)) this.fail(f.at, f.path, `expected ${expected}, got ${describe(n)}`);
    const supported = allowed.length ? allowed.join(', ') : 'nothing';
    return n.items.map((pair) => {
      const k = pair.key as Node | null;
      const keyAt = k?.range?.[0] ?? f.at;
      if (!isScalar(k) || k.value === null || typeof k.value === 'object') {
        this.fail(keyAt, f.path, `expected a plain key, got ${describe(k)}`);
      }
      const key = String(k.value);
      const path = childPath(f.path, key);
      const why = Object.hasOwn(notSupported, key) ? notSupported[key] : undefined;
      if (why !== undefined) this.fail(keyAt, path, `not supported by the lab: ${why} (supported here: ${supported})`);
      if (!allowed.includes(key)) this.fail(keyAt, path, `unknown field "${key}" (supported here: ${supported})`);
      const v = pair.value as Node | null;
      return { key, keyAt, value: { node: v, at: v?.range?.[0] ?? keyAt, path } };
    });
  }

  /** A map whose keys are data (labels, header names): any string key. */
  entries(f: Field, expected = 'a map'): MapEntry[] {
    const n = this.deref(f);
    if (!isMap(n)) this.fail(f.at, f.path, `expected ${expected}, got ${describe(n)}`);
    return n.items.map((pair) => {
      const k = pair.key as Node | null;
      const keyAt = k?.range?.[0] ?? f.at;
      if (!isScalar(k) || k.value === null || typeof k.value === 'object') {
        this.fail(keyAt, f.path, `expected a plain key, got ${describe(k)}`);
      }
      const key = String(k.value);
      const v = pair.value as Node | null;
      return { key, keyAt, value: { node: v, at: v?.range?.[0] ?? keyAt, path: childPath(f.path, key) } };
    });
  }

  list(f: Field, expected = 'a list', opts: { nonEmpty?: boolean } = {}): Field[] {
    const n = this.deref(f);
    if (!isSeq(n)) this.fail(f.at, f.path, `expected ${expected}, got ${describe(n)}`);
    if (opts.nonEmpty && n.items.length === 0) this.fail(f.at, f.path, `expected ${expected}, got an empty list`);
    return n.items.map((item, i) => {
      const v = item as Node | null;
      return { node: v, at: v?.range?.[0] ?? f.at, path: itemPath(f.path, i) };
    });
  }

  string(f: Field, expected = 'a string'): string {
    const n = this.deref(f);
    if (isScalar(n) && typeof n.value === 'string') return n.value;
    const quoteHint = isScalar(n) && (typeof n.value === 'number' || typeof n.value === 'boolean')
      ? ` (quote it: "${n.source ?? String(n.value)}")` : '';
    this.fail(f.at, f.path, `expected ${expected}, got ${describe(n)}${quoteHint}`);
  }

  nonEmptyString(f: Field, expected: string): string {
    const s = this.string(f, expected);
    if (s === '') this.fail(f.at, f.path, `expected ${expected}, got an empty string`);
    return s;
  }

  integer(f: Field, min: number, max: number): number {
    const n = this.deref(f);
    const v = isScalar(n) ? n.value : undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    this.fail(f.at, f.path, `expected an integer ${min}-${max}, got ${describe(n)}`);
  }

  number(f: Field, min: number, max: number): number {
    const n = this.deref(f);
    const v = isScalar(n) ? n.value : undefined;
    if (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max) return v;
    this.fail(f.at, f.path, `expected a number ${min}-${max}, got ${describe(n)}`);
  }

  boolean(f: Field): boolean {
    const n = this.deref(f);
    if (isScalar(n) && typeof n.value === 'boolean') return n.value;
    this.fail(f.at, f.path, `expected true or false, got ${describe(n)}`);
  }

  oneOf<T extends string>(f: Field, values: readonly T[]): T {
    const s = this.string(f, `one of ${values.join(', ')}`);
    if ((values as readonly string[]).includes(s)) return s as T;
    this.fail(f.at, f.path, `unknown value ${JSON.stringify(s)} (expected one of: ${values.join(', ')})`);
  }

  stringList(f: Field, opts: { nonEmpty?: boolean; expected?: string } = {}): string[] {
    return this.list(f, 'a list of strings', opts).map((item) => this.string(item, opts.expected));
  }

  /** A string->string map; `check` returns a problem with a key or value. */
  stringMap(f: Field, check: { key?: (k: string) => string | undefined; value?: (v: string) => string | undefined } = {}): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.entries(f, 'a map of strings')) {
      const keyProblem = check.key?.(e.key);
      if (keyProblem) this.fail(e.keyAt, e.value.path, keyProblem);
      const v = this.string(e.value);
      const valueProblem = check.value?.(v);
      if (valueProblem) this.fail(e.value.at, e.value.path, valueProblem);
      out[e.key] = v;
    }
    return out;
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
