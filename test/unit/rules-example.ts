// The shared input of the rule golden files (a node with enrolled pods and two Services).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeProxyService } from '../../src/plan/kube-proxy.js';
import type { AmbientNodeInput } from '../../src/ambient/node-rules.js';

export const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden', 'rules');
export const example = JSON.parse(readFileSync(join(GOLDEN, 'example-node.json'), 'utf8')) as {
  podCidr: string;
  node: AmbientNodeInput;
  services: KubeProxyService[];
};
