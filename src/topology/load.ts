// Topology file -> normalized Topology: parse, read the schema with defaults, then
// cross-check. Every problem is a UserError `<file>:<line>:<col>: <field path>: <what>`,
// with the file named as the caller gave it so messages are stable across machines.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Topology } from './types.js';
import { YamlSource } from './yaml-source.js';
import { readTopology } from './schema.js';
import { validateTopology } from './validate.js';
import { UserError } from '../util/errors.js';

export function parseTopology(text: string, file: string): Topology {
  const src = YamlSource.parse(text, file);
  const topology = readTopology(src, file);
  validateTopology(topology, src);
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
