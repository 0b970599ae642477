// A parsed YAML file plus typed readers that know where every value came from, so a
// bad value is reported as `<file>:<line>:<col>: <field path>: <problem>`. It knows
// nothing about topologies: schema.ts says which keys and types are expected.
import { parseDocument, LineCounter, isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Document, Node } from 'yaml';
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

/** YAML's own wording for a few errors is cryptic out of context; say it plainly. */
function syntaxMessage(code: string, message: string, text: string, pos: [number, number]): string {
  if (code === 'DUPLICATE_KEY') {
    // The error's range covers only the key's first character; read the whole key.
    const key = /^("[^"]*"|'[^']*'|[^:\n]*?)\s*:/.exec(text.slice(pos[0]))?.[1] ?? text.slice(pos[0], pos[1]);
    return `duplicate key ${key.startsWith('"') ? key : JSON.stringify(key.replace(/^'|'$/g, ''))}: keys of a YAML map must be unique`;
  }
  if (code === 'MULTIPLE_DOCS') return 'the file holds more than one YAML document (a second "---"); a topology is one document';
  return `syntax error: ${message}`;
}

export class YamlSource {
  /** Field path -> offset of every value the readers visited; later checks point at them. */
  private readonly offsets = new Map<string, number>();

  private constructor(
    readonly file: string,
    private readonly lines: LineCounter,
    private readonly doc: Document,
  ) {}

  /** Parses `text`; a syntax error is thrown as a UserError at its line and column. */
  static parse(text: string, file: string): YamlSource {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
    const src = new YamlSource(file, lines, doc);
    const err = doc.errors[0];
    if (err) src.fail(err.pos[0], 'yaml', syntaxMessage(err.code, err.message, text, err.pos));
    return src;
  }

  get root(): Field {
    const node = this.doc.contents as Node | null;
    return { node, at: node?.range?.[0] ?? 0, path: ROOT_PATH };
  }

  fail(at: number, path: string, message: string): never {
    throw new UserError(this.describeAt(at, path, message));
  }

  describeAt(at: number, path: string, message: string): string {
    const { line, col } = this.lines.linePos(at);
    return `${this.file}:${line}:${col}: ${path}: ${message}`;
  }

  /** Where the value at `path` is, or the nearest enclosing value when it was defaulted. */
  offsetOf(path: string): number {
    for (let p = path; ; ) {
      const at = this.offsets.get(p);
      if (at !== undefined) return at;
      const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
      if (cut <= 0) return this.root.at;
      p = p.slice(0, cut);
    }
  }

  hasValue(path: string): boolean {
    return this.offsets.has(path);
  }

  private deref(f: Field): Node | null {
    const node = f.node;
    if (node && isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return node;
  }

  private visit(node: Node | null, at: number, path: string): Field {
    this.offsets.set(path, at);
    return { node, at, path };
  }

  isNull(f: Field): boolean {
    const n = this.deref(f);
    return n === null || (isScalar(n) && (n.value === null || n.value === undefined));
  }

  /** The entries of a map in file order; keys outside `allowed` are errors. */
  map(f: Field, allowed: readonly string[] | null, expected = 'a map'): MapEntry[] {
    const n = this.deref(f);
    if (!isMap(n)) this.fail(f.at, f.path, `expected ${expected}, got ${describe(n)}`);
    this.offsets.set(f.path, f.at);
    return n.items.map((pair) => {
      const k = pair.key as Node | null;
      const keyAt = k?.range?.[0] ?? f.at;
      if (!isScalar(k) || k.value === null || typeof k.value === 'object') {
        this.fail(keyAt, f.path, `expected a plain key, got ${describe(k)}`);
      }
      const key = String(k.value);
      const path = childPath(f.path, key);
      if (allowed && !allowed.includes(key)) {
        this.fail(keyAt, path, `unknown key ${JSON.stringify(key)} (allowed: ${allowed.join(', ')})`);
      }
      const v = pair.value as Node | null;
      return { key, keyAt, value: this.visit(v, v?.range?.[0] ?? keyAt, path) };
    });
  }

  list(f: Field, expected = 'a list'): Field[] {
    const n = this.deref(f);
    if (!isSeq(n)) this.fail(f.at, f.path, `expected ${expected}, got ${describe(n)}`);
    this.offsets.set(f.path, f.at);
    return n.items.map((item, i) => {
      const v = item as Node | null;
      return this.visit(v, v?.range?.[0] ?? f.at, itemPath(f.path, i));
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

  stringList(f: Field, opts: { nonEmpty?: boolean } = {}): string[] {
    const items = this.list(f, 'a list of strings');
    if (opts.nonEmpty && items.length === 0) this.fail(f.at, f.path, 'expected a non-empty list of strings, got an empty list');
    return items.map((item) => this.string(item));
  }

  /** A string->string map; `check` returns a problem with a key or value. */
  stringMap(
    f: Field,
    check: { key?: (k: string) => string | undefined; value?: (v: string) => string | undefined } = {},
  ): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.map(f, null, 'a map of strings')) {
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
