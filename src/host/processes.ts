// Lab processes: started detached inside their pod's netns (`ip netns exec`, which also
// bind-mounts /etc/netns/<ns>/resolv.conf), recorded by PID, stopped by PID. Each carries
// AMBIENT_LAB_OWNER in its environment so we never signal a process we did not start.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ProcessSpec } from '../plan/lab-build.js';
import type { ProcessRecord } from '../state/store.js';

export const OWNER_ENV = 'AMBIENT_LAB_OWNER';

/** `onExit` is for a parent that outlives its child (the supervisor): it learns the exit code or signal. */
export function startProcess(lab: string, spec: ProcessSpec, extraEnv: Record<string, string> = {},
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void): ProcessRecord {
  mkdirSync(dirname(spec.log), { recursive: true });
  const fd = openSync(spec.log, 'a');
  try {
    // A pod's processes may run as another user (a sidecar proxy is uid/gid 1337, which its
    // pod's iptables rules exempt from capture): setpriv drops to it after entering the netns.
    const argv = spec.user
      ? ['setpriv', `--reuid=${spec.user.uid}`, `--regid=${spec.user.gid}`, '--clear-groups', '--', ...spec.argv]
      : spec.argv;
    const child = spawn('ip', ['netns', 'exec', spec.netns, ...argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...extraEnv, [OWNER_ENV]: `${lab}:${spec.id}` },
    });
    if (onExit) child.once('exit', onExit);
    child.unref();
    if (!child.pid) throw new Error(`could not start ${spec.argv.join(' ')} in ${spec.netns}`);
    return {
      id: spec.id, role: spec.role, pid: child.pid, netns: spec.netns, pod: spec.pod, node: spec.node,
      log: spec.log, argv: spec.argv, startedAt: new Date().toISOString(),
    };
  } finally {
    closeSync(fd);
  }
}

/** The owner tag of a live process, or undefined if it is gone or not ours. */
export function processOwner(pid: number): string | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const e = env.find((x) => x.startsWith(`${OWNER_ENV}=`));
    return e?.slice(OWNER_ENV.length + 1);
  } catch {
    return undefined;
  }
}

export const isAlive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !isZombie(pid);

function isZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** SIGTERM the lab's own processes, then SIGKILL what is left after `graceMs`. */
export async function stopProcesses(lab: string, pids: number[], graceMs = 1500): Promise<number> {
  const ours = pids.filter((p) => processOwner(p)?.startsWith(`${lab}:`));
  for (const p of ours) signal(p, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (ours.some(isAlive) && Date.now() < deadline) await sleep(20);
  for (const p of ours.filter(isAlive)) signal(p, 'SIGKILL');
  while (ours.some(isAlive) && Date.now() < deadline + 1000) await sleep(10);
  return ours.length;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for every ready file, failing early with the log tail if a process died. */
/** AMBIENT_LAB_READY_TIMEOUT_MS raises the wait on slow machines (the emulated kernel-Geneve VM test). */
export async function waitReady(items: Array<{ readyFile: string; pid: number; log: string; id: string }>,
  timeoutMs = Number(process.env.AMBIENT_LAB_READY_TIMEOUT_MS) || 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pending = items;
  while (pending.length) {
    pending = pending.filter((i) => !existsSync(i.readyFile));
    for (const i of pending) {
      if (!isAlive(i.pid)) throw new Error(`${i.id} exited before it was ready; last log lines:\n${tail(i.log)}`);
    }
    if (!pending.length) break;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pending.map((p) => p.id).join(', ')} to be ready`);
    await sleep(10);
  }
}

export function tail(file: string, n = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}
