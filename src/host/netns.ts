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

/** Lab name from a netns name the lab would generate (`al-<lab>-underlay|node-…|pod-…`). */
export function labOfNetnsName(netns: string): string | undefined {
  return /^al-(.+)-underlay$/.exec(netns)?.[1] ?? /^al-(.+?)-(?:node|pod)-./.exec(netns)?.[1];
}

/**
 * Namespaces owned by `lab` (or by any lab): those whose `lo` carries our owner alias, plus
 * unmarked ones with our naming and no process whose only links are `lo` and veths whose peer
 * lives in a namespace of the same lab: what a `lab up` killed between stages leaves (a pod's
 * eth0 is made by its node's batch, its `lo` is marked by its own). Deleting those destroys
 * nothing that is not the lab's.
 */
export async function findOwnedNetns(lab?: string): Promise<OwnedNetns[]> {
  return (await scanNetns(lab)).owned;
}

/**
 * findOwnedNetns, plus the namespaces with our naming whose owner mark names another lab
 * (`al-a-node-x` of lab `a-node`, seen while looking for lab `a`): `lab down` never deletes
 * those, whatever a state.json lists.
 */
export async function scanNetns(lab?: string): Promise<{ owned: OwnedNetns[]; foreign: string[] }> {
  const candidates = listNetns().filter((n) => n.startsWith(lab ? `al-${lab}-` : 'al-'));
  const foreign: string[] = [];
  const found = await Promise.all(
    candidates.map(async (netns) => {
      const r = await run('ip', ['-n', netns, '-o', 'link', 'show'], { reject: false });
      const m = /alias (\S+)/.exec(r.stdout.split('\n')[0] ?? '');
      const owner = m ? parseOwnerAlias(m[1]) : undefined;
      if (owner && lab && owner.lab !== lab) foreign.push(netns);
      if (owner) return !lab || owner.lab === lab ? { netns, ...owner } : undefined;
      const guess = labOfNetnsName(netns);
      if (!guess || (lab && guess !== lab) || r.exitCode !== 0) return undefined;
      const links = r.stdout.trim().split('\n').filter(Boolean).filter((l) => !/^\d+: lo:/.test(l));
      const ours = links.every((l) => l.includes(`link-netns al-${guess}-`));
      return ours && !(await netnsPids(netns)).length ? { netns, lab: guess, kind: 'unmarked', name: netns } : undefined;
    }),
  );
  return { owned: found.filter((x): x is OwnedNetns => !!x), foreign };
}

/** PIDs of processes whose network namespace is `netns`. */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', netns], { reject: false });
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}
