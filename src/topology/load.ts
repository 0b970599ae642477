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

function readManifest(topologyFile: string, rel: string, i: number): ParsedResources {
  const path = isAbsolute(rel) ? rel : join(dirname(topologyFile), rel);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UserError(`${topologyFile}: manifests[${i}]: cannot read ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
      'manifests are paths relative to the topology file');
  }
  return parseResources(text, relative(process.cwd(), path) || path);
}

export function parseTopology(text: string, file: string): Topology {
  const src = YamlSource.parse(text, file);
  const topology = readTopology(src, file);
  validateTopology(topology, src);
  // Istio and Gateway API objects, after the topology itself: references are checked against it.
  const inline = rawResources.get(src);
  const manifests = rawManifests.get(src) ?? [];
  if (inline || manifests.length) {
    const parts: ParsedResources[] = [];
    if (inline) {
      const cut = resourcesText(text, inline);
      parts.push(parseResources(cut.text, file, { lineOffset: cut.lineOffset }));
    }
    manifests.forEach((m, i) => parts.push(readManifest(file, m, i)));
    const parsed = mergeParsed(...parts);
    const { warnings } = validateResources(parsed, topology);
    topology.resources = parsed.resources;
    // L4 AuthorizationPolicies (and istiod's L4 conversion of L7 ones) go to ztunnel like `policies:`.
    topology.policies = [...topology.policies, ...parsed.l4Policies];
    topology.warnings = [...parsed.warnings, ...warnings];
  }
  return { ...topology, file: resolve(file) };
}

export function loadTopology(file: string): Topology {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.message;
    throw new UserError(`${file}: cannot read the topology file: ${why}`, 'pass the path of a topology YAML file, e.g. topologies/demo.yaml');
  }
  return parseTopology(text, file);
}
