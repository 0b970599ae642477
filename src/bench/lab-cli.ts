// The bench drives the lab exactly as a user does: the compiled CLI as a child process,
// timed by wall clock. Every lab it brings up is remembered until it is brought down, so
// an error or Ctrl-C still removes it (`downAllSync`).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { labNameProblem } from '../topology/lab-name.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = resolve(REPO, 'dist/cli/main.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  wallMs: number;
}

/** CLI children still running: on Ctrl-C they get the signal too, and we let them finish first. */
const inflight = new Set<ChildProcess>();

export function runCli(args: string[], timeoutMs = 180_000): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    inflight.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      inflight.delete(child);
      resolvePromise({ code: code ?? -1, stdout, stderr, wallMs: performance.now() - t0 });
    });
  });
}

/**
 * A bench lab's name with AMBIENT_LAB_BENCH_TAG appended (`bench-dp-mesh-gv`): two people
 * running the bench on one machine at once must not bring up, or take down, each other's labs.
 */
export function benchLabName(base: string, tag = process.env.AMBIENT_LAB_BENCH_TAG): string {
  if (!tag) return base;
  const name = `${base}-${tag}`;
  const problem = labNameProblem(name);
  if (problem) throw new Error(`AMBIENT_LAB_BENCH_TAG=${tag} makes the lab name ${name}: ${problem}`);
  return name;
}

/** Labs this process brought up and has not yet removed. */
const active = new Set<string>();

export interface UpSummary {
  lab: string;
  tunnel?: string;
  totalMs: number;
  timingsMs: Record<string, number>;
  pods: Array<{ name: string; node: string; ip: string; mode: string; role: string; netns: string }>;
  services: Array<{ name: string; vip: string; ports: Array<{ port: number; targetPort: number }> }>;
}

export async function labUp(file: string, name: string, mesh: boolean): Promise<{ wallMs: number; summary: UpSummary }> {
  if (!/^bench-/.test(name)) throw new Error(`bench lab names start with "bench-" (got ${name})`);
  active.add(name);
  const r = await runCli(['up', file, name, '--json', ...(mesh ? [] : ['--no-mesh'])]);
  if (r.code !== 0) {
    await labDown(name).catch(() => undefined);
    throw new Error(`lab up ${file} ${name}${mesh ? '' : ' --no-mesh'} failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(0, 6).join('\n')}`);
  }
  return { wallMs: r.wallMs, summary: JSON.parse(r.stdout) as UpSummary };
}

export async function labDown(name: string): Promise<{ wallMs: number; totalMs: number }> {
  const r = await runCli(['down', name, '--json']);
  if (r.code !== 0) throw new Error(`lab down ${name} failed (exit ${r.code}): ${r.stderr.trim()}`);
  active.delete(name);
  return { wallMs: r.wallMs, totalMs: JSON.parse(r.stdout).totalMs };
}

export interface StatusProcess {
  id: string;
  role: string;
  pid: number;
  pod?: string;
  node?: string;
  alive: boolean;
}

export async function labStatus(name: string): Promise<{ tunnel?: string; healthy: boolean; processes: StatusProcess[] }> {
  const r = await runCli(['status', '--lab', name, '--json']);
  if (r.code !== 0) throw new Error(`lab status --lab ${name} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

/**
 * For signal handlers: waits (synchronously, up to `waitMs`) for CLI children to finish
 * handling the same signal (an interrupted `lab up` removes its half-built lab itself),
 * then runs `lab down` for every lab still ours. Best effort, only our labs.
 */
export function downAllSync(waitMs = 20_000): string[] {
  const deadline = Date.now() + waitMs;
  while ([...inflight].some((c) => c.exitCode === null && c.signalCode === null && isRunning(c.pid)) && Date.now() < deadline) {
    spawnSync('sleep', ['0.1']);
  }
  const removed: string[] = [];
  for (const name of [...active]) {
    spawnSync(process.execPath, [CLI, 'down', name], { cwd: REPO, stdio: 'ignore', timeout: 60_000 });
    active.delete(name);
    removed.push(name);
  }
  return removed;
}

export const activeLabs = (): string[] => [...active];

/** Alive and not a zombie (while we block, nobody reaps our exited children). */
function isRunning(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
