// A parsed YAML file plus typed readers (yaml-fields.ts) that know where every value came from,
// so a bad value is reported as `<file>:<line>:<col>: <field path>: <problem>`; it also remembers
// where each value was, for checks made after reading. It knows nothing about topologies:
// schema.ts says which keys and types are expected.
import { parseDocument, LineCounter } from 'yaml';
import type { Document } from 'yaml';
import { YamlFields } from './yaml-fields.js';
import type { Field, MapEntry } from './yaml-fields.js';

export type { Field, MapEntry };
export { childPath, describe, itemPath, ROOT_PATH } from './yaml-fields.js';

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

export class YamlSource extends YamlFields {
  /** Field path -> offset of every value the readers visited; later checks point at them. */
  private readonly offsets = new Map<string, number>();

  private constructor(file: string, lines: LineCounter, doc: Document) {
    super(file, lines, doc);
  }

  /** Parses `text`; a syntax error is thrown as a UserError at its line and column. */
  static parse(text: string, file: string): YamlSource {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
    const src = new YamlSource(file, lines, doc);
    const err = doc.errors[0];
    if (err) src.fail(err.pos[0], 'yaml', syntaxMessage(err.code, err.message, text, err.pos));
    return src;
  }

  /** `file:line:col: path` — the start of every message about the value at `at`. */
  where(at: number, path: string): string {
    const { line, col } = this.lines.linePos(at);
    return `${this.file}:${line}:${col}: ${path}`;
  }

  describeAt(at: number, path: string, message: string): string {
    return `${this.where(at, path)}: ${message}`;
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

  protected override visited(path: string, at: number): void {
    this.offsets.set(path, at);
  }

  /** The entries of a map in file order; keys outside `allowed` are errors. */
  map(f: Field, allowed: readonly string[] | null, expected = 'a map'): MapEntry[] {
    return this.mapEntries(f, expected, (key, keyAt, path) => {
      if (allowed && !allowed.includes(key)) {
        this.fail(keyAt, path, `unknown key ${JSON.stringify(key)} (allowed: ${allowed.join(', ')})`);
      }
    });
  }

  stringList(f: Field, opts: { nonEmpty?: boolean } = {}): string[] {
    const items = this.list(f, 'a list of strings');
    if (opts.nonEmpty && items.length === 0) this.fail(f.at, f.path, 'expected a non-empty list of strings, got an empty list');
    return items.map((item) => this.string(item));
  }
}
