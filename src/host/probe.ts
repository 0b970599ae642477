// Probing the host before planning: every experiment runs in a scratch namespace of its own
// (owner-marked, removed afterwards), never in the root namespace and never in a lab's, so
// planning needs nothing created and a refused topology leaves nothing behind.
import { run } from './run.js';
import { ownerAlias } from '../topology/naming.js';
import type { HostFacts } from '../plan/host-facts.js';

/** Runs `fn` with a fresh netns `al-<purpose>-<pid>`; the netns is deleted however `fn` ends. */
export async function withScratchNetns<T>(purpose: string, fn: (netns: string) => Promise<T>): Promise<T> {
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

/** Can this kernel create a Geneve device? (Debian's stock kernel can; this VM's cannot.) */
export async function kernelHasGeneve(netns: string): Promise<boolean> {
  const r = await run('ip', ['-n', netns, 'link', 'add', 'alprobe0', 'type', 'geneve', 'id', '999', 'remote', '127.0.0.1'], { reject: false });
  return r.exitCode === 0;
}

export async function probeHost(): Promise<HostFacts> {
  return withScratchNetns('probe', async (ns) => ({ kernelGeneve: await kernelHasGeneve(ns) }));
}
