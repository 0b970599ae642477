// Lab processes: started detached inside their pod's netns (`ip netns exec`, which also
// bind-mounts /etc/netns/<ns>/resolv.conf), recorded by PID, stopped by PID. Each carries
// AMBIENT_LAB_OWNER in its environment so we never signal a process we did not start.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, existsSync, mkdirSync, watch, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ProcessSpec } from '../plan/lab-build.js';
import { shArg } from './run.js';
import type { ProcessRecord } from '../state/store.js';

export const OWNER_ENV = 'AMBIENT_LAB_OWNER';

/** `onExit` is for a parent that outlives its child (the supervisor): it learns the exit code or signal. */
export function startProcess(lab: string, spec: ProcessSpec, extraEnv: Record<string, string> = {},
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void): ProcessRecord {
  mkdirSync(dirname(spec.log), { recursive: true });
  const fd = openSync(spec.log, 'a');
  try {
    const child = spawn('ip', ['netns', 'exec', spec.netns, ...userArgv(spec)], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...extraEnv, [OWNER_ENV]: ownerTag(lab, spec) },
    });
    if (onExit) child.once('exit', onExit);
    child.unref();
    if (!child.pid) throw new Error(`could not start ${spec.argv.join(' ')} in ${spec.netns}`);
    return processRecord(spec, child.pid);
  } finally {
    closeSync(fd);
  }
}

const ownerTag = (lab: string, spec: ProcessSpec): string => `${lab}:${spec.id}`;

/**
 * A pod's processes may run as another user (a sidecar proxy is uid/gid 1337, which its
 * pod's iptables rules exempt from capture): setpriv drops to it after entering the netns.
 */
function userArgv(spec: ProcessSpec): string[] {
  return spec.user
    ? ['setpriv', `--reuid=${spec.user.uid}`, `--regid=${spec.user.gid}`, '--clear-groups', '--', ...spec.argv]
    : spec.argv;
}

function processRecord(spec: ProcessSpec, pid: number): ProcessRecord {
  return {
    id: spec.id, role: spec.role, pid, netns: spec.netns, pod: spec.pod, node: spec.node,
    log: spec.log, argv: spec.argv, startedAt: new Date().toISOString(),
  };
}

/**
 * What the others depend on (`startFirst`: tunnels, node proxies, DNS) first, so it boots ahead
 * of the apps; otherwise in build order.
 */
export function launchOrder(specs: ProcessSpec[]): ProcessSpec[] {
  return [...specs.filter((s) => s.startFirst), ...specs.filter((s) => !s.startFirst)];
}

/**
 * The launcher's script: per process one line that starts it exactly as startProcess does
 * (in its netns with `ip netns exec`, in a session of its own, stdin from /dev/null, output
 * appended to its log, tagged with the owner variable) in the background, and prints its PID.
 * setsid does not fork here (a background job of a shell without job control is not a group
 * leader) and env-assignment, setsid, ip and setpriv all exec, so `$!` is the PID of the
 * process itself: the one state.json records and the supervisor watches.
 */
export function launcherScript(lab: string, specs: ProcessSpec[]): string {
  return specs.map((spec) => [
    `${OWNER_ENV}=${shArg(ownerTag(lab, spec))}`, 'setsid', 'ip', 'netns', 'exec', shArg(spec.netns),
    ...userArgv(spec).map(shArg), `</dev/null >>${shArg(spec.log)} 2>&1 & echo $!`,
  ].join(' ')).join('\n') + '\n';
}

/**
 * Starts many processes at once through one launcher: a POSIX shell that forks them all.
 * Node's spawn() is a synchronous fork+exec of the (large) CLI process that waits for the
 * child's exec: ~15-40 ms each on a busy host, 260 times for a 20x10 lab. The shell's forks
 * are cheap and do not wait. Records come back in the order of `specs`.
 */
export async function startProcesses(lab: string, specs: ProcessSpec[]): Promise<ProcessRecord[]> {
  if (!specs.length) return [];
  for (const d of new Set(specs.map((s) => dirname(s.log)))) mkdirSync(d, { recursive: true });
  const out = await new Promise<string>((resolve, reject) => {
    // Detached, like the processes: Ctrl-C on the terminal must not reach it half-way.
    const sh = spawn('/bin/sh', ['-s'], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    sh.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    sh.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    sh.on('error', reject);
    sh.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`the process launcher failed (exit ${code}): ${stderr.trim()}`))));
    sh.stdin!.end(launcherScript(lab, specs));
  });
  const pids = out.split('\n').filter(Boolean).map(Number);
  if (pids.length !== specs.length || pids.some((p) => !Number.isInteger(p) || p <= 0)) {
    throw new Error(`the process launcher reported ${pids.length} PIDs for ${specs.length} processes: ${out.slice(0, 200)}`);
  }
  return specs.map((spec, i) => processRecord(spec, pids[i]));
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

/**
 * Waits for every ready file, failing early with the log tail if a process died. Returns, per
 * id, the ms after the call at which its file was seen (what `lab up --timings` shows).
 * Ready files arrive by notification (inotify on their directories: a process writes its file
 * and renames it into place), so the wait costs no CPU while 260 processes boot; a slow
 * check every `checkMs` looks for dead processes and catches any missed event; with many processes
 * it runs less often (2 ms per process: ~0.5 s for a 20x10 lab), as each costs three syscalls per
 * pending process and the CLI would otherwise take CPU from the processes it waits for.
 * AMBIENT_LAB_READY_TIMEOUT_MS raises the wait on slow machines (the emulated kernel-Geneve VM test).
 */
export async function waitReady(items: Array<{ readyFile: string; pid: number; log: string; id: string }>,
  timeoutMs = Number(process.env.AMBIENT_LAB_READY_TIMEOUT_MS) || 15000, checkMs = 100): Promise<Record<string, number>> {
  const t0 = performance.now();
  const seen: Record<string, number> = {};
  const pending = new Map(items.map((i) => [i.readyFile, i]));
  if (!pending.size) return seen;
  const dirs = [...new Set(items.map((i) => dirname(i.readyFile)))];
  for (const d of dirs) mkdirSync(d, { recursive: true });
  const deadline = Date.now() + timeoutMs;
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const arrived = (file: string) => {
        const item = pending.get(file);
        if (item && existsSync(file)) {
          pending.delete(file);
          seen[item.id] = Math.round(performance.now() - t0);
        }
        if (!pending.size) resolve();
      };
      // Watch first, then look: a file renamed in between is seen by one or the other.
      for (const d of dirs) {
        const w = watch(d, (_event, name) => { if (name) arrived(join(d, name.toString())); });
        w.on('error', () => undefined); // the slow check below still sees the files
        watchers.push(w);
      }
      const check = () => {
        for (const file of [...pending.keys()]) arrived(file);
        for (const i of pending.values()) {
          if (!isAlive(i.pid)) return reject(new Error(`${i.id} exited before it was ready; last log lines:\n${tail(i.log)}`));
        }
        if (pending.size && Date.now() > deadline) reject(new Error(`timed out waiting for ${[...pending.values()].map((p) => p.id).join(', ')} to be ready`));
      };
      check();
      timer = setInterval(check, Math.max(checkMs, items.length * 2));
    });
  } finally {
    clearInterval(timer);
    for (const w of watchers) w.close();
  }
  return seen;
}

export function tail(file: string, n = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}
