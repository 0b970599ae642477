// Typed readers over a parsed YAML document that know where every value came from, shared by
// the topology file (YamlSource) and the Istio resource files (ObjectReader). Both report a bad
// value as `<where>: <problem>`; only how `<where>` is written differs, so a subclass supplies
// where() and keeps the readers whose rules are its own (which keys a map allows, and how an
// unknown one is named).
import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Node } from 'yaml';
import { UserError } from '../util/errors.js';

/** A value in the file: its node (null when the key had nothing after it), where it is and its field path. */
export interface Field {
  node: Node | null;
  at: number;
  path: string;
}

export interface MapEntry {
  key: string;
  keyAt: number;
  value: Field;
}

export const ROOT_PATH = '(top level)';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function childPath(parent: string, key: string): string {
  if (!IDENT.test(key)) return `${parent === ROOT_PATH ? '' : parent}[${JSON.stringify(key)}]`;
  return parent === ROOT_PATH ? key : `${parent}.${key}`;
}

export const itemPath = (parent: string, i: number): string => `${parent}[${i}]`;

/** How a wrong value looks to the user, for "expected X, got Y". */
export function describe(node: Node | null): string {
  if (node === null) return 'nothing';
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null || v === undefined) return 'nothing';
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number') return `the number ${node.source ?? v}`;
    if (typeof v === 'boolean') return `the boolean ${v}`;
    return String(v);
  }
  return 'an unsupported YAML node';
}

/** Longest quoted value a message repeats whole; a longer one is cut, with its length. */
const MAX_QUOTED = 120;

/**
 * Messages quote the value that was wrong (a key, a string); a 100 KB string or key quoted
 * whole (sometimes twice: in the field path and in the problem) buries the message. Each
 * quoted run longer than MAX_QUOTED, and each bare word over 400 characters, is cut to its
 * start and its length.
 */
export function clipQuoted(message: string): string {
  return message
    .replace(/"((?:[^"\\]|\\.)*)"/g, (whole, inner: string) =>
      (inner.length > MAX_QUOTED ? `"${inner.slice(0, MAX_QUOTED - 20)}…" (${inner.length} characters)` : whole))
    // A huge key written bare in a field path (`xxxx…xxxx.name`): same cut.
    .replace(/[^\s"]{400,}/g, (word) => `${word.slice(0, MAX_QUOTED - 20)}… (${word.length} characters)`);
}

/** Checks a key of a map before its value is read; fails (throws) when the key is not allowed there. */
export type KeyCheck = (key: string, keyAt: number, path: string) => void;

export abstract class YamlFields {
  protected constructor(
    readonly file: string,
    protected readonly lines: LineCounter,
    protected readonly doc: Document,
  ) {}

  /** The start of every message about the value at `at` (offset in the text) with field path `path`. */
  abstract where(at: number, path: string): string;

  /** Told of every map or list read and of each value in it; YamlSource remembers where they are. */
  protected visited(_path: string, _at: number): void {}

  get root(): Field {
    const node = this.doc.contents as Node | null;
    return { node, at: node?.range?.[0] ?? 0, path: ROOT_PATH };
  }

  fail(at: number, path: string, message: string): never {
    throw new UserError(clipQuoted(`${this.where(at, path)}: ${message}`));
  }

  protected deref(f: Field): Node | null {
    const node = f.node;
    if (!node || !isAlias(node)) return node;
    const target = node.resolve(this.doc) as Node | undefined;
    // An alias with no anchor before it is an error in YAML; read as "nothing", it slipped
    // through as an empty document and crashed later (`lab apply -f` of "*x").
    if (!target) this.fail(f.at, f.path, `alias *${node.source} refers to no anchor &${node.source} defined before it`);
    return target;
  }

  private field(node: Node | null, at: number, path: string): Field {
    this.visited(path, at);
    return { node, at, path };
  }

  isNull(f: Field): boolean {
    const n = this.deref(f);
    return n === null || (isScalar(n) && (n.value === null || n.value === undefined));
  }

  /** The entries of a map in file order, each key passed to `checkKey` (if any) before its value is taken. */
  protected mapEntries(f: Field, expected: string, checkKey?: KeyCheck): MapEntry[] {
    const n = this.deref(f);
    if (!isMap(n)) this.fail(f.at, f.path, `expected ${expected}, got ${describe(n)}`);
    this.visited(f.path, f.at);
    return n.items.map((pair) => {
      const k = pair.key as Node | null;
      const keyAt = k?.range?.[0] ?? f.at;
      if (!isScalar(k) || k.value === null || typeof k.value === 'object') {
        this.fail(keyAt, f.path, `expected a plain key, got ${describe(k)}`);
      }
      const key = String(k.value);
      const path = childPath(f.path, key);
      checkKey?.(key, keyAt, path);
      const v = pair.value as Node | null;
      return { key, keyAt, value: this.field(v, v?.range?.[0] ?? keyAt, path) };
    });
  }

  /** A map whose keys are data (labels, header names): any string key. */
  entries(f: Field, expected = 'a map'): MapEntry[] {
    return this.mapEntries(f, expected);
  }

  list(f: Field, expected = 'a list', opts: { nonEmpty?: boolean } = {}): Field[] {
    const n = this.deref(f);
    if (!isSeq(n)) this.fail(f.at, f.path, `expected ${expected}, got ${describe(n)}`);
    if (opts.nonEmpty && n.items.length === 0) this.fail(f.at, f.path, `expected ${expected}, got an empty list`);
    this.visited(f.path, f.at);
    return n.items.map((item, i) => {
      const v = item as Node | null;
      return this.field(v, v?.range?.[0] ?? f.at, itemPath(f.path, i));
    });
  }

  string(f: Field, expected = 'a string'): string {
    const n = this.deref(f);
    if (isScalar(n) && typeof n.value === 'string') return n.value;
    // YAML turns unquoted 123, 1.0 or true into non-strings; Kubernetes would refuse them too.
    const quoteHint = isScalar(n) && (typeof n.value === 'number' || typeof n.value === 'boolean')
      ? ` (quote it: "${n.source ?? String(n.value)}")` : '';
    this.fail(f.at, f.path, `expected ${expected}, got ${describe(n)}${quoteHint}`);
  }

  integer(f: Field, min: number, max: number): number {
    const n = this.deref(f);
    const v = isScalar(n) ? n.value : undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    this.fail(f.at, f.path, `expected an integer ${min}-${max}, got ${describe(n)}`);
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

  /** A string->string map; `check` returns a problem with a key or value. */
  stringMap(
    f: Field,
    check: { key?: (k: string) => string | undefined; value?: (v: string) => string | undefined } = {},
  ): Record<string, string> {
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
}
