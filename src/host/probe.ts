// Probing the host before planning: every experiment runs in a scratch namespace of its own
// (owner-marked, removed afterwards), never in the root namespace and never in a lab's, so
// planning needs nothing created and a refused topology leaves nothing behind.
import { existsSync, readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './run.js';
import { stateRoot } from '../state/store.js';
import { ownerAlias, parseOwnerAlias } from '../topology/naming.js';
import { listNetns } from './netns.js';
import { isAlive } from './processes.js';
import type { HostFacts } from '../plan/host-facts.js';

/** Runs `fn` with a fresh netns `al-<purpose>-<pid>`; the netns is deleted however `fn` ends. */
export async function withScratchNetns<T>(purpose: string, fn: (netns: string) => Promise<T>): Promise<T> {
  await sweepStaleScratch();
  const ns = `al-${purpose}-${process.pid}`;
  await run('ip', ['netns', 'add', ns]);
  try {
    // Marked like a lab's, so `lab down --all` finds it should this process be killed here.
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'alias', ownerAlias(purpose, 'scratch', ns)], { reject: false });
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'], { reject: false });
    return await fn(ns);
  } finally {
    await run('ip', ['netns', 'delete', ns], { reject: false });
  }
}

const SCRATCH = /^al-(probe|doctor)-(\d+)$/;

/**
 * Removes the scratch namespaces of `lab up`/`lab doctor` runs that were killed inside
 * withScratchNetns (SIGKILL skips its finally): named `al-probe|doctor-<pid>` with that pid gone,
 * and either marked as that scratch namespace or not marked at all (killed between `netns add` and
 * the mark). Called before every new scratch namespace and by `lab down`, so a killed `up` leaves
 * nothing that the next `up` or `down` does not remove. Returns the names removed.
 */
export async function sweepStaleScratch(): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of listNetns()) {
    const m = SCRATCH.exec(ns);
    if (!m || Number(m[2]) === process.pid || isAlive(Number(m[2]))) continue;
    const lo = await run('ip', ['-n', ns, '-o', 'link', 'show', 'lo'], { reject: false });
    const alias = / alias (.+?)(?:\\|$)/.exec(lo.stdout)?.[1];
    const owner = alias ? parseOwnerAlias(alias) : undefined;
    if (alias && !(owner?.kind === 'scratch' && owner.name === ns)) continue;
    const del = await run('ip', ['netns', 'delete', ns], { reject: false });
    if (del.exitCode === 0) removed.push(ns);
  }
  return removed;
}

/** Can this kernel create a Geneve device? (Debian's stock kernel can; this VM's cannot.) */
export async function kernelHasGeneve(netns: string): Promise<boolean> {
  const r = await run('ip', ['-n', netns, 'link', 'add', 'alprobe0', 'type', 'geneve', 'id', '999', 'remote', '127.0.0.1'], { reject: false });
  return r.exitCode === 0;
}

/**
 * The facts of this boot of this kernel: probed once, then read back. What they depend on does not
 * change until a reboot, except a geneve module loaded later, which is in the key too; each probe
 * costs `lab up` a scratch namespace and five `ip` runs. `lab doctor` always probes afresh.
 */
export async function probeHost(probe: () => Promise<HostFacts> = probeInScratch): Promise<HostFacts> {
  const file = join(stateRoot(), HOST_FACTS_FILE);
  const key = hostKey();
  try {
    const cached = JSON.parse(readFileSync(file, 'utf8')) as { key?: string; facts?: HostFacts };
    if (cached.key === key && typeof cached.facts?.kernelGeneve === 'boolean') return cached.facts;
  } catch {
    /* none yet, or unreadable: probe */
  }
  const facts = await probe();
  try {
    mkdirSync(stateRoot(), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ key, facts }) + '\n');
    renameSync(tmp, file);
  } catch {
    /* a read-only state root only costs the next `up` another probe */
  }
  return facts;
}

const probeInScratch = (): Promise<HostFacts> => withScratchNetns('probe', async (ns) => ({ kernelGeneve: await kernelHasGeneve(ns) }));

/** In the state root, beside the labs' directories; a file, so never taken for a lab (those are directories with state.json). */
export const HOST_FACTS_FILE = '.host-facts.json';

/** Boot, kernel release, and whether the geneve module is loaded now. */
function hostKey(): string {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  return [read('/proc/sys/kernel/random/boot_id'), read('/proc/sys/kernel/osrelease'), existsSync('/sys/module/geneve') ? 'geneve' : 'no-geneve'].join(' ');
}
