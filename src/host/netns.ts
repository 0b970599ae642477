// Network namespaces the lab owns. Ownership is recorded on `lo` of every netns
// (ifalias "ambient-lab:<lab>:<kind>:<name>") so `lab down --all` can find them
// without the state directory and never deletes a namespace it did not create.
import { readdirSync, existsSync } from 'node:fs';
import { run } from './run.js';
import { parseOwnerAlias } from '../topology/naming.js';

export const NETNS_DIR = '/run/netns';

export function listNetns(): string[] {
  try {
    return readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

export const netnsExists = (name: string): boolean => existsSync(`${NETNS_DIR}/${name}`);

export interface OwnedNetns {
  netns: string;
  lab: string;
  kind: string;
  name: string;
}

/** Reads the owner alias of `lo` in each candidate netns (prefix `al-` first, cheap filter). */
export async function findOwnedNetns(lab?: string): Promise<OwnedNetns[]> {
  const candidates = listNetns().filter((n) => n.startsWith(lab ? `al-${lab}-` : 'al-'));
  const found = await Promise.all(
    candidates.map(async (netns) => {
      const r = await run('ip', ['-n', netns, '-o', 'link', 'show', 'lo'], { reject: false });
      const m = /alias (\S+)/.exec(r.stdout);
      const owner = m ? parseOwnerAlias(m[1]) : undefined;
      return owner && (!lab || owner.lab === lab) ? { netns, ...owner } : undefined;
    }),
  );
  return found.filter((x): x is OwnedNetns => !!x);
}

/** PIDs of processes whose network namespace is `netns`. */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', netns], { reject: false });
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}
