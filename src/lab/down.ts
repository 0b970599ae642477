// `lab down`: removes what the lab owns, in reverse: processes, namespaces (which takes
// their links, rules, routes and ipsets with them), /etc/netns files, state. It works
// from the state directory, and without it from the owner marks on the objects.
import { sweepStaleScratch } from '../host/probe.js';
import { existsSync, readdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { labStateDir, readState, removeStateDir, listStateLabs, writeState } from '../state/store.js';
import { findOwnedNetns, scanNetns, netnsExists, netnsPids } from '../host/netns.js';
import { processOwner, stopProcesses } from '../host/processes.js';
import { ipBatch } from '../host/run.js';
import { etcMarker } from '../plan/lab-build.js';

export interface DownResult {
  lab: string;
  processes: number;
  netns: number;
  files: number;
  /** The state directory, when it was left in place because it holds no state.json (not ours). */
  keptStateDir?: string;
}

/** Labs that exist in any form: a state directory or owned namespaces. */
export async function listLabs(): Promise<string[]> {
  const owned = await findOwnedNetns();
  return [...new Set([...listStateLabs(), ...owned.map((o) => o.lab)])].sort();
}

/**
 * Whether anything of `lab` is left for `down` to remove: its state directory, a namespace
 * carrying its owner mark, a process with its tag, or its /etc/netns directories.
 * `lab down NAME` of a lab with none of these is a typo, not a no-op.
 */
export async function labExists(lab: string): Promise<boolean> {
  if (existsSync(labStateDir(lab))) return true;
  if ((await findOwnedNetns(lab)).length) return true;
  if (scanOwnedProcesses(lab).length) return true;
  try {
    return readdirSync('/etc/netns').some((d) => d.startsWith(`al-${lab}-`) && ['resolv.conf', 'hosts'].some((f) => {
      try { return readFileSync(`/etc/netns/${d}/${f}`, 'utf8').split('\n')[0] === etcMarker(lab); } catch { return false; }
    }));
  } catch { return false; }
}

export async function downLab(lab: string): Promise<DownResult> {
  const state = readState(lab);
  if (state && state.phase !== 'deleting') {
    state.phase = 'deleting';
    writeState(state);
  }
  // What state.json lists is deleted only when it is named like this lab's and carries no other
  // lab's owner mark (a namespace `up` created but had not marked yet has none): a state file
  // edited by hand, or one of a lab whose name is a prefix of another's, deletes nothing else.
  const { owned, foreign } = await scanNetns(lab);
  const recorded = (state?.netns ?? []).filter((n) => n.startsWith(`al-${lab}-`) && !foreign.includes(n));
  const netns = [...new Set([...recorded, ...owned.map((o) => o.netns)])].filter(netnsExists);

  // Processes: the recorded PIDs, plus anything still living in one of our namespaces
  // and tagged as ours (covers a SIGKILLed `up` that never recorded its PIDs).
  const inNetns = (await Promise.all(netns.map(netnsPids))).flat();
  const tagged = scanOwnedProcesses(lab);
  const pids = [...new Set([...(state?.processes.map((p) => p.pid) ?? []), ...inNetns, ...tagged])];
  const stopped = await stopProcesses(lab, pids);
  // Untagged processes left in our namespaces (e.g. a `lab exec` shell) would keep them alive.
  for (const pid of inNetns) {
    if (!processOwner(pid)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }

  // Pods first, then nodes, then the underlay: deleting a netns deletes its links and
  // their veth peers, so the order only keeps the kernel's work small.
  const order = (n: string) => (n.includes('-pod-') ? 0 : n.endsWith('-underlay') ? 2 : 1);
  const sorted = [...netns].sort((a, b) => order(a) - order(b));
  if (sorted.length) await ipBatch(undefined, sorted.map((n) => `netns delete ${n}`));

  const files = removeEtcNetns(lab, state?.files ?? []);
  // A `lab up` killed while probing the host left its scratch namespace (not named after the lab).
  await sweepStaleScratch();
  const removed = removeStateDir(lab);
  return { lab, processes: stopped, netns: sorted.length, files, ...(removed ? {} : { keptStateDir: labStateDir(lab) }) };
}

/** Files under /etc/netns/<ns>/ are ours when their first line is the lab's marker. */
function removeEtcNetns(lab: string, recorded: string[]): number {
  // Only directories directly under /etc/netns, whatever state.json says.
  const dirs = new Set(recorded.map((f) => dirname(f)).filter((d) => dirname(d) === '/etc/netns'));
  try {
    for (const d of readdirSync('/etc/netns')) if (d.startsWith(`al-${lab}-`)) dirs.add(`/etc/netns/${d}`);
  } catch { /* no /etc/netns */ }
  let n = 0;
  for (const d of dirs) {
    for (const f of ['resolv.conf', 'hosts']) {
      const p = `${d}/${f}`;
      if (existsSync(p) && readFileSync(p, 'utf8').split('\n')[0] === etcMarker(lab)) { rmSync(p); n++; }
    }
    try { rmdirSync(d); } catch { /* not empty or gone: something else lives there; leave it */ }
  }
  return n;
}

function scanOwnedProcesses(lab: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    if (processOwner(Number(d))?.startsWith(`${lab}:`)) out.push(Number(d));
  }
  return out;
}
