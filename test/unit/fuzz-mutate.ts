// Hostile documents for the property-based input tests (fuzz-*.test.ts): real topologies and
// `lab apply` files of the repository, mutated the ways users and attackers get YAML wrong.
// A document is a seed (a real file, parsed to plain values) plus a few structural mutations
// (drop, duplicate, retype, replace with a hostile value, hostile keys, shared nodes that YAML
// writes as anchors and aliases, alias bombs, deep nesting), serialized, then a few textual ones
// (duplicate key lines, truncation, stray YAML syntax). fast-check drives every choice, so a
// seed replays the same documents and a failure shrinks to a small one.
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';

export interface Seed {
  /** Where it came from (a repository path, or `<sample>#N`). */
  name: string;
  /** The seed as YAML text. */
  text: string;
  /** Its documents as plain values; undefined when the text is not valid YAML (text mutations only). */
  docs?: unknown[];
}

export interface FuzzDoc {
  seed: string;
  /** What was done to it, for the failure report. */
  ops: string[];
  text: string;
}

/** The `.yaml` files of a directory, as seeds. */
export function seedsFrom(dir: string): Seed[] {
  return readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort().map((f) => seedOf(join(dir, f), readFileSync(join(dir, f), 'utf8')));
}

export function seedOf(name: string, text: string): Seed {
  try {
    const parsed = parseAllDocuments(text);
    if (!Array.isArray(parsed) || parsed.some((d) => d.errors.length)) return { name, text };
    return { name, text, docs: parsed.map((d) => d.toJS({ maxAliasCount: -1 })) };
  } catch {
    return { name, text };
  }
}

const LONG = 'x'.repeat(100_000);
/** Values that break naive code: limits, YAML's own surprises, paths, shell, unicode, huge. */
const HOSTILE_SCALARS: unknown[] = [
  null, true, false, 0, -1, 1.5, -0, 1e308, -1e308, 2 ** 31, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER + 2, 65535, 65536, 99999,
  Infinity, -Infinity, NaN, 10n ** 40n,
  '', ' ', '.', '..', '../..', '/', '/etc', '/etc/passwd', '../../../../etc/shadow', 'a/../../b', '/dev/zero', '/dev/stdin',
  '/proc/self/mem', '/run/ambient-lab', '~', '-', '--all', '*', '0x10', '0o17', '1e3', '08', 'yes', 'no', 'on', 'null', '~',
  '\0', 'a\nb', 'a\tb', '\r', '${HOME}', '$(reboot)', '`id`', "'; rm -rf / #", '%s%s%n', '<script>', 'ünïcödé', '名前',
  '🚀🚀', '\u202eevil', '\ufeffbom', 'Ａｂｃ', 'a'.repeat(64), 'a'.repeat(300), LONG, '-'.repeat(5000), '1'.repeat(400),
  '10.0.0.0/33', '10.0.0.0/0', '0.0.0.0/0', '999.1.1.1', '1.2.3', '::1', 'fe80::/10', '255.255.255.255', '10.244.0.1',
  'TCP', 'UDP', 'SCTP', 'http', 'ALLOW', 'DENY', 'AUDIT', 'ambient', 'sidecar', 'kernel', 'istio-system', 'kube-system',
  'default', 'node-a', 'sleep', 'httpbin', 'reviews', 'v1', '1ms', '0s', '-1s', '99999999h', '1.5s', '/*', 'prefix*',
];

const scalar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...HOSTILE_SCALARS) },
  { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 16 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
);

/** [[[...]]] or {a: {a: ...}} `depth` deep. */
function nested(depth: number, map: boolean): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = map ? { a: v } : [v];
  return v;
}

/**
 * Billion laughs: every level is `width` references to the level below. YAML writes the shared
 * levels once, as anchors and aliases, so the text is small and its full expansion is huge.
 */
function aliasBomb(levels: number, width: number, map: boolean): unknown {
  let v: unknown = map ? { lol: 'lol' } : ['lol'];
  for (let i = 0; i < levels; i++) {
    const below = v;
    v = map ? Object.fromEntries(Array.from({ length: width }, (_x, j) => [`l${i}_${j}`, below])) : Array.from({ length: width }, () => below);
  }
  return v;
}

const hostileValue = fc.oneof(
  { weight: 8, arbitrary: scalar },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 2, max: 600 }), fc.boolean()).map(([d, m]) => nested(d, m)) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 2, max: 10 }), fc.boolean()).map(([l, w, m]) => aliasBomb(l, w, m)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom({}, [], [null], { '': '' }) },
);

const KNOWN_KEYS = [
  'name', 'namespace', 'node', 'nodes', 'pods', 'services', 'policies', 'resources', 'manifests', 'network', 'labels', 'app',
  'command', 'mode', 'ports', 'port', 'targetPort', 'selector', 'rules', 'from', 'to', 'kind', 'apiVersion', 'metadata',
  'spec', 'hosts', 'http', 'route', 'destination', 'subset', 'weight', 'match', 'action', 'items', 'tunnel', 'serviceAccount',
];
const hostileKey = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '',
    ' ', '..', '/etc', '<<', '?', '- x', '#c', 'a: b', 'NAME', 'name ', '名前', LONG.slice(0, 2000), '1', '0') },
  { weight: 3, arbitrary: fc.constantFrom(...KNOWN_KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

type Container = Record<string, unknown> | unknown[];
const isContainer = (v: unknown): v is Container => typeof v === 'object' && v !== null;

/** Every value below `root` as (container, key) with its ancestors, so a mutation can reach anywhere. */
function slots(root: Container): Array<{ parent: Container; key: string | number; ancestors: Set<unknown> }> {
  const out: Array<{ parent: Container; key: string | number; ancestors: Set<unknown> }> = [];
  // Each container once: an alias bomb shares its levels, and walking every path through them never ends.
  const seen = new Set<unknown>();
  const walk = (c: Container, ancestors: Set<unknown>, depth: number): void => {
    if (depth > 40 || seen.has(c)) return;
    seen.add(c);
    const inner = new Set(ancestors).add(c);
    const keys: Array<string | number> = Array.isArray(c) ? c.map((_x, i) => i) : Object.keys(c);
    for (const k of keys) {
      out.push({ parent: c, key: k, ancestors: inner });
      const v = (c as Record<string | number, unknown>)[k];
      if (isContainer(v) && !inner.has(v)) walk(v, inner, depth + 1);
    }
  };
  walk(root, new Set(), 0);
  return out;
}

/** Sets an own property, `__proto__` included (plain assignment would change the prototype). */
function put(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function retype(v: unknown): unknown {
  if (typeof v === 'string') return v.length ? (Number.isNaN(Number(v)) ? [v] : Number(v)) : 0;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 1;
  if (Array.isArray(v)) return Object.fromEntries(v.map((x, i) => [String(i), x]));
  if (isContainer(v)) return Object.values(v);
  return {};
}

const STRUCT_OPS = ['drop', 'duplicate', 'retype', 'replace', 'replace', 'addKey', 'renameKey', 'share', 'emptyContainer'] as const;
/**
 * A position in [0, 1), uniform: fc.double favours 0 and the extremes, which would mutate
 * the first field of every document (apiVersion, name) far more than the rest.
 */
const position = fc.noBias(fc.integer({ min: 0, max: 999_999 })).map((n) => n / 1_000_000);

const structOp = fc.record({
  kind: fc.constantFrom(...STRUCT_OPS),
  at: position,
  at2: position,
  value: hostileValue,
  key: hostileKey,
});
type StructOp = typeof structOp extends fc.Arbitrary<infer T> ? T : never;

function applyStructOp(root: Container, op: StructOp): string {
  const all = slots(root);
  if (!all.length) {
    if (!Array.isArray(root)) put(root, op.key, op.value);
    return `${op.kind}: (empty) +${JSON.stringify(op.key)}`;
  }
  const s = all[Math.floor(op.at * all.length)];
  const p = s.parent as Record<string | number, unknown>;
  const label = `${op.kind} @${String(s.key).slice(0, 40)}`;
  switch (op.kind) {
    case 'drop':
      if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1); else delete p[s.key];
      break;
    case 'duplicate':
      if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 0, structuredClone(s.parent[s.key as number]));
      else put(p as Record<string, unknown>, `${String(s.key)}`, p[s.key]); // same key: stays one; duplicate keys come as text
      break;
    case 'retype': p[s.key] = retype(p[s.key]); break;
    case 'replace': p[s.key] = op.value; break;
    case 'emptyContainer': p[s.key] = Array.isArray(p[s.key]) ? [] : isContainer(p[s.key]) ? {} : null; break;
    case 'addKey': {
      const target = isContainer(p[s.key]) && !Array.isArray(p[s.key]) ? p[s.key] as Record<string, unknown> : Array.isArray(s.parent) ? undefined : p as Record<string, unknown>;
      if (target) put(target, op.key, op.value); else (s.parent as unknown[]).push(op.value);
      break;
    }
    case 'renameKey':
      if (!Array.isArray(s.parent)) { const v = p[s.key]; delete p[s.key]; put(p as Record<string, unknown>, op.key, v); }
      break;
    case 'share': {
      // The same node in two places: YAML writes it once with an anchor, then an alias.
      const src = all[Math.floor(op.at2 * all.length)];
      const v = (src.parent as Record<string | number, unknown>)[src.key];
      if (!(isContainer(v) && (s.ancestors.has(v) || v === s.parent))) p[s.key] = v;
      break;
    }
  }
  return op.kind === 'replace' || op.kind === 'addKey' || op.kind === 'renameKey' ? `${label} key=${JSON.stringify(op.key).slice(0, 40)}` : label;
}

const JUNK = ['\t', '{', '}', '[', ']', ':', ': ', ' &x ', ' *x', '*undefined_alias', '!!binary ', '!!js/function "x"', '!!python/object:os.system',
  '<<: *x\n', '\n---\n', '%YAML 1.1\n', '"', "'", '\0', '\ufeff', '\r\n', '? ', '|', '>', '- ', '#', '&a ', '!custom ', '@', '`',
  '\n' + '  '.repeat(50) + 'deep: 1\n'];

const textOp = fc.record({
  kind: fc.constantFrom('dupLine', 'dupLine', 'truncate', 'junk', 'indent', 'swapLines'),
  at: position,
  at2: position,
  junk: fc.constantFrom(...JUNK),
});
type TextOp = typeof textOp extends fc.Arbitrary<infer T> ? T : never;

function applyTextOp(text: string, op: TextOp): { text: string; label: string } {
  const lines = text.split('\n');
  const i = Math.floor(op.at * lines.length);
  switch (op.kind) {
    case 'dupLine': {
      // A map key repeated: the duplicate-key case (or a duplicated list item).
      const withKey = lines.map((l, n) => [l, n] as const).filter(([l]) => /^\s*-?\s*[^\s#][^:]*:/.test(l));
      if (!withKey.length) return { text, label: 'dupLine (none)' };
      const [l, n] = withKey[Math.floor(op.at * withKey.length)];
      lines.splice(n + 1, 0, l.replace(/^(\s*)-\s/, '$1  '));
      return { text: lines.join('\n'), label: `dupLine ${n + 1}` };
    }
    case 'truncate': return { text: text.slice(0, Math.floor(op.at * text.length)), label: 'truncate' };
    case 'junk': {
      const at = Math.floor(op.at * text.length);
      return { text: text.slice(0, at) + op.junk + text.slice(at), label: `junk ${JSON.stringify(op.junk).slice(0, 30)}` };
    }
    case 'indent': lines[i] = ' '.repeat(1 + Math.floor(op.at2 * 7)) + lines[i]; return { text: lines.join('\n'), label: `indent ${i + 1}` };
    case 'swapLines': {
      const j = Math.floor(op.at2 * lines.length);
      [lines[i], lines[j]] = [lines[j], lines[i]];
      return { text: lines.join('\n'), label: `swap ${i + 1},${j + 1}` };
    }
  }
}

/** Documents derived from `seeds`: mostly structural mutations, sometimes textual ones on top. */
export function mutatedDocs(seeds: Seed[]): fc.Arbitrary<FuzzDoc> {
  return fc.record({
    seed: fc.constantFrom(...seeds),
    struct: fc.array(structOp, { minLength: 1, maxLength: 3 }),
    text: fc.oneof({ weight: 3, arbitrary: fc.constant([] as TextOp[]) }, { weight: 1, arbitrary: fc.array(textOp, { minLength: 1, maxLength: 3 }) }),
  }).map(({ seed, struct, text }) => {
    const ops: string[] = [];
    let out = seed.text;
    if (seed.docs && struct.length) {
      const docs = structuredClone(seed.docs);
      for (const op of struct) {
        const d = Math.floor(op.at2 * docs.length);
        if (isContainer(docs[d])) ops.push(applyStructOp(docs[d] as Container, op));
        else { docs[d] = op.value; ops.push('replace document'); }
      }
      try {
        out = docs.map((d) => stringify(d, { aliasDuplicateObjects: true, lineWidth: 0 })).join('---\n');
      } catch (e) {
        ops.push(`(not serializable: ${(e as Error).message.slice(0, 60)})`);
      }
    }
    for (const op of text) {
      const r = applyTextOp(out, op);
      out = r.text;
      ops.push(r.label);
    }
    return { seed: seed.name, ops, text: out };
  });
}

/** Hand-made hostile texts every run includes, whatever the seed: the classics. */
export const CLASSICS: Array<{ name: string; text: string }> = [
  { name: 'empty', text: '' },
  { name: 'only a comment', text: '# nothing\n' },
  { name: 'a scalar', text: 'hello\n' },
  { name: 'a list', text: '- a\n- b\n' },
  { name: 'null document', text: '~\n' },
  { name: 'billion laughs', text: ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ...Array.from({ length: 8 }, (_x, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`)].join('\n') + '\n' },
  { name: 'recursive alias', text: 'nodes: &n\n  - name: node-a\n  - *n\n' },
  { name: 'merge-key bomb', text: 'x: &x {a: 1}\nnodes:\n  - <<: [*x, *x, *x, *x]\n    name: node-a\n' },
  { name: 'undefined alias', text: 'nodes: *nothing\n' },
  { name: 'tags', text: 'nodes: !!js/function "function(){}"\npods: !!binary aGVsbG8=\n' },
  { name: 'deep flow nesting', text: `nodes: ${'['.repeat(5000)}${']'.repeat(5000)}\n` },
  { name: 'deep block nesting', text: `nodes:\n${Array.from({ length: 2000 }, (_x, i) => `${'  '.repeat(i + 1)}- `).join('\n')}x\n` },
  { name: 'duplicate keys', text: 'nodes:\n  - name: node-a\nnodes:\n  - name: node-b\n' },
  { name: 'huge key', text: `${'k'.repeat(200_000)}: 1\n` },
  { name: 'huge line', text: `name: ${'a'.repeat(1_000_000)}\n` },
  { name: 'many documents', text: 'a: 1\n---\n'.repeat(5000) },
  { name: 'NUL bytes', text: 'nodes:\n  - name: "node\0a"\n' },
  { name: 'BOM and CRLF', text: '\ufeffnodes:\r\n  - name: node-a\r\n' },
  { name: 'manifest is a device', text: 'nodes:\n  - name: node-a\nmanifests: [/dev/zero]\n' },
  { name: 'manifest is stdin', text: 'nodes:\n  - name: node-a\nmanifests: [/dev/stdin]\n' },
  { name: 'manifest is a directory', text: 'nodes:\n  - name: node-a\nmanifests: [/etc]\n' },
  { name: 'manifest outside', text: 'nodes:\n  - name: node-a\nmanifests: [../../../../etc/passwd]\n' },
  { name: 'proto keys', text: '__proto__: {polluted: true}\nconstructor: {prototype: {polluted: true}}\nnodes:\n  - name: node-a\n    __proto__: x\n' },
];
