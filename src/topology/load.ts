// Topology file -> normalized Topology: parse, read the schema with defaults, then
// cross-check. Every problem is a UserError `<file>:<line>:<col>: <field path>: <what>`,
// with the file named as the caller gave it so messages are stable across machines.
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { Topology } from './types.js';
import { YamlSource } from './yaml-source.js';
import { readTopology, rawManifests, rawResources } from './schema.js';
import type { Field } from './yaml-source.js';
import { parseResources, mergeParsed, validateResources, type ParsedResources } from '../istio/index.js';
import { splitObjects } from '../istio/documents.js';
import { validateTopology } from './validate.js';
import { UserError } from '../util/errors.js';

/**
 * The text of the `resources:` list cut out of the file, with the columns of its first line
 * kept (blanked prefix) and its line offset, so src/istio reports real lines and columns.
 */
function resourcesText(text: string, f: Field): { text: string; lineOffset: number } {
  const [start, end] = f.node!.range!;
  const lineStart = text.lastIndexOf('\n', start - 1) + 1;
  return { text: ' '.repeat(start - lineStart) + text.slice(start, end), lineOffset: text.slice(0, lineStart).split('\n').length - 1 };
}

/** Far above any real topology or manifest; a bigger file is a mistake, read whole it could exhaust memory. */
export const MAX_INPUT_BYTES = 8 * 1024 * 1024;

/**
 * A topology or manifest file's text, or why it cannot be read. Only regular files are read: a
 * path like /dev/zero or /dev/stdin (a typo in `manifests:`, or a hostile file) would otherwise
 * be read forever or block `lab up`, with no message.
 */
export function readInputFile(path: string): { text: string } | { why: string } {
  const why = (e: NodeJS.ErrnoException): string => (e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.message);
  try {
    const st = statSync(path);
    if (st.isDirectory()) return { why: 'it is a directory' };
    if (!st.isFile()) return { why: 'it is not a regular file (a device, pipe or socket is never read)' };
    if (st.size > MAX_INPUT_BYTES) return { why: `it is ${st.size} bytes, more than the ${MAX_INPUT_BYTES} a topology or manifest may have` };
    return { text: readFileSync(path, 'utf8') };
  } catch (err) {
    return { why: why(err as NodeJS.ErrnoException) };
  }
}

function readManifest(topologyFile: string, rel: string, i: number): { parsed: ParsedResources; text: string; name: string } {
  const path = isAbsolute(rel) ? rel : join(dirname(topologyFile), rel);
  const read = readInputFile(path);
  if ('why' in read) throw new UserError(`${topologyFile}: manifests[${i}]: cannot read ${path}: ${read.why}`, 'manifests are paths relative to the topology file');
  const { text } = read;
  const name = relative(process.cwd(), path) || path;
  return { parsed: parseResources(text, name), text, name };
}

/** Objects applied to a running lab (`lab apply`), added to what the topology file itself holds. */
export interface LoadOptions {
  extraResources?: ParsedResources[];
}

export function parseTopology(text: string, file: string, opts: LoadOptions = {}): Topology {
  const src = YamlSource.parse(text, file);
  const topology = readTopology(src, file);
  validateTopology(topology, src);
  // Istio and Gateway API objects, after the topology itself: references are checked against it.
  const inline = rawResources.get(src);
  const manifests = rawManifests.get(src) ?? [];
  const extra = opts.extraResources ?? [];
  if (inline || manifests.length || extra.length) {
    const parts: ParsedResources[] = [];
    const objects: NonNullable<Topology['objects']> = [];
    const record = (t: string, f: string, lineOffset = 0) => objects.push(...splitObjects(t, f).map((d) => ({
      kind: d.kind, namespace: d.namespace, name: d.name, where: d.where.replace(/:(\d+)$/, (_m, l) => `:${Number(l) + lineOffset}`),
    })));
    if (inline) {
      const cut = resourcesText(text, inline);
      parts.push(parseResources(cut.text, file, { lineOffset: cut.lineOffset }));
      record(cut.text, file, cut.lineOffset);
    }
    manifests.forEach((m, i) => {
      const r = readManifest(file, m, i);
      parts.push(r.parsed);
      record(r.text, r.name);
    });
    if (objects.length) topology.objects = objects;
    const parsed = mergeParsed(...parts, ...extra);
    const { warnings } = validateResources(parsed, topology);
    topology.resources = parsed.resources;
    // L4 AuthorizationPolicies (and istiod's L4 conversion of L7 ones) go to ztunnel like `policies:`.
    topology.policies = [...topology.policies, ...parsed.l4Policies];
    topology.warnings = [...parsed.warnings, ...warnings];
  }
  return { ...topology, file: resolve(file) };
}

export function loadTopology(file: string, opts: LoadOptions = {}): Topology {
  const read = readInputFile(file);
  if ('why' in read) throw new UserError(`${file}: cannot read the topology file: ${read.why}`, 'pass the path of a topology YAML file, e.g. topologies/demo.yaml');
  return parseTopology(read.text, file, opts);
}
