// Topology file -> normalized Topology: parse, read the schema with defaults, then
// cross-check. Every problem is a UserError `<file>:<line>:<col>: <field path>: <what>`,
// with the file named as the caller gave it so messages are stable across machines.
import { readFileSync } from 'node:fs';
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

function readManifest(topologyFile: string, rel: string, i: number): { parsed: ParsedResources; text: string; name: string } {
  const path = isAbsolute(rel) ? rel : join(dirname(topologyFile), rel);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UserError(`${topologyFile}: manifests[${i}]: cannot read ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
      'manifests are paths relative to the topology file');
  }
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
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.message;
    throw new UserError(`${file}: cannot read the topology file: ${why}`, 'pass the path of a topology YAML file, e.g. topologies/demo.yaml');
  }
  return parseTopology(text, file, opts);
}
