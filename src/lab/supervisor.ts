// The lab's supervisor: restarts a ztunnel (or userspace Geneve daemon) that died, as a
// DaemonSet would, and records the new PID, the restart count and the last exit in the
// state. One per lab, started by `lab up` in the underlay netns; `lab down` stops it.
//
// Two promises it keeps:
// - It never leaves a replacement behind after `lab down`: it checks the phase right before
//   starting one, checks it again right after (down may have begun in between, and its scan
//   for our processes may already be over) and kills what it just started if the lab is no
//   longer up; and when down stops it (SIGTERM), it kills every replacement it started, which
//   covers its own state write racing down's.
// - A process that keeps dying is not restarted every tick forever: like Kubernetes'
//   CrashLoopBackOff, each quick death in a row doubles the wait (capped), and a process that
//   stayed up for a while starts the count again.
import { rmSync, readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import { readState, writeState, labStateDir, type LabState, type ProcessRecord } from '../state/store.js';
import { isAlive, startProcess, waitReady } from '../host/processes.js';
import { fileLogger } from '../util/log.js';
import type { LabBuild, ProcessSpec } from '../plan/lab-build.js';

const SUPERVISED = new Set(['ztunnel', 'geneve', 'waypoint', 'sidecar', 'dns']);

export const BACKOFF = {
  /** Wait before the second restart in a row; doubles for each further quick death. */
  firstMs: 500,
  capMs: 30_000,
  /** A process that ran at least this long before dying did not crash-loop. */
  stableMs: 10_000,
};

/** Wait before restarting a process that died `quickDeaths` times in a row, each soon after its start. */
export function restartDelayMs(quickDeaths: number): number {
  if (quickDeaths <= 1) return 0;
  return Math.min(BACKOFF.firstMs * 2 ** (quickDeaths - 2), BACKOFF.capMs);
}

/** How a supervised process last ended: code or signal when the supervisor was its parent
 * (a process `lab up` started is not our child, so only the time is known). */
export interface ExitInfo {
  at: string;
  code?: number | null;
  signal?: string | null;
}

/** The state's process record as the supervisor keeps it. */
export type SupervisedRecord = ProcessRecord & { lastExit?: ExitInfo };

export type OnExit = (code: number | null, signal: NodeJS.Signals | null) => void;

/** What the supervisor does to the world; tests replace parts of it. */
export interface SupervisorDeps {
  readState: (lab: string) => LabState | undefined;
  writeState: (s: LabState) => void;
  start: (lab: string, spec: ProcessSpec, onExit: OnExit) => ProcessRecord;
  isAlive: (pid: number) => boolean;
  now: () => number;
}

export const realDeps: SupervisorDeps = {
  readState, writeState, isAlive,
  start: (lab, spec, onExit) => startProcess(lab, spec, {}, onExit),
  now: () => Date.now(),
};

interface Death {
  /** The PID that died (a new one means a new death). */
  pid: number;
  quickDeaths: number;
  notBefore: number;
  exit: ExitInfo;
}

export class Supervisor {
  /** Replacements this supervisor started that have not exited yet. */
  private readonly children = new Set<number>();
  private readonly exits = new Map<number, ExitInfo>();
  private readonly deaths = new Map<string, Death>();

  constructor(
    readonly lab: string,
    private readonly specs: Map<string, ProcessSpec>,
    private readonly log: Logger,
    private readonly deps: SupervisorDeps = realDeps,
  ) {}

  /** One pass over the lab's processes. False once the lab's state is gone (nothing left to supervise). */
  async tick(): Promise<boolean> {
    const state = this.deps.readState(this.lab);
    if (!state) return false;
    if (state.phase !== 'up') return true;
    for (const rec of state.processes) {
      const spec = this.specs.get(rec.id);
      // A child of ours is dead for good only once its exit is reaped (then we know how it ended).
      if (!spec || this.children.has(rec.pid) || this.deps.isAlive(rec.pid)) continue;
      if (!(await this.restart(rec as SupervisedRecord, spec))) return true;
    }
    return true;
  }

  /** Restarts one dead process unless it is backing off; false when the lab stopped being up. */
  private async restart(rec: SupervisedRecord, spec: ProcessSpec): Promise<boolean> {
    const now = this.deps.now();
    let death = this.deaths.get(rec.id);
    if (!death || death.pid !== rec.pid) {
      const quick = now - Date.parse(rec.startedAt) < BACKOFF.stableMs;
      const quickDeaths = quick ? (death?.quickDeaths ?? 0) + 1 : 1;
      const exit = this.exits.get(rec.pid) ?? { at: new Date(now).toISOString() };
      this.exits.delete(rec.pid);
      death = { pid: rec.pid, quickDeaths, notBefore: now + restartDelayMs(quickDeaths), exit };
      this.deaths.set(rec.id, death);
      this.log.warn({ id: rec.id, pid: rec.pid, exit, quickDeaths, restartInMs: death.notBefore - now },
        quickDeaths > 1 ? 'process died again soon after its start; backing off' : 'process died; restarting');
    }
    if (now < death.notBefore) return true;

    // Right before starting: `lab down` may have begun since the tick read the state (or
    // during the back-off), and it must not find a process it has not seen.
    const before = this.deps.readState(this.lab);
    if (!before || before.phase !== 'up') return false;
    if (spec.readyFile) rmSync(spec.readyFile, { force: true });
    const fresh = this.deps.start(this.lab, spec, (code, signal) => {
      this.children.delete(fresh.pid);
      this.exits.set(fresh.pid, { at: new Date(this.deps.now()).toISOString(), code, signal });
    });
    this.children.add(fresh.pid);

    const latest = this.deps.readState(this.lab);
    if (!latest || latest.phase !== 'up') {
      this.log.warn({ id: rec.id, pid: fresh.pid }, 'lab is going down; stopping the replacement just started');
      await this.stop(fresh.pid);
      return false;
    }
    const restarts = (latest.processes.find((p) => p.id === rec.id)?.restarts ?? 0) + 1;
    latest.processes = latest.processes.map((p): SupervisedRecord => (p.id === rec.id ? { ...fresh, restarts, lastExit: death.exit } : p));
    this.deps.writeState(latest);
    this.log.info({ id: rec.id, pid: fresh.pid, restarts }, 'restarted');
    if (spec.readyFile) {
      // Not awaited: a replacement that is slow to get ready must not hold up the others.
      waitReady([{ readyFile: spec.readyFile, pid: fresh.pid, log: spec.log, id: spec.id }])
        .then(() => this.log.info({ id: rec.id, pid: fresh.pid }, 'ready'))
        .catch((e) => this.log.error({ id: rec.id, err: String(e) }, 'restart failed'));
    }
    return true;
  }

  /** SIGKILL a replacement and wait until it is gone (reaped by us, or at least not running). */
  private async stop(pid: number): Promise<void> {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    const deadline = Date.now() + 2000;
    while (this.children.has(pid) && this.deps.isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  /** Kills every replacement still running: the lab is going down (or is gone). Synchronous, for a signal handler. */
  killChildren(): number[] {
    const killed = [...this.children];
    for (const pid of killed) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    if (killed.length) this.log.warn({ pids: killed }, 'stopped: killed the replacements started here');
    return killed;
  }
}

export async function supervise(lab: string, intervalMs = 300): Promise<never> {
  const log = fileLogger(`${labStateDir(lab)}/logs/supervisor.log`, 'supervisor');
  const buildFile = `${labStateDir(lab)}/build.json`;
  const readSpecs = (): Map<string, ProcessSpec> => {
    const build = JSON.parse(readFileSync(buildFile, 'utf8')) as LabBuild;
    return new Map(build.processes.filter((p) => SUPERVISED.has(p.role)).map((p) => [p.id, p]));
  };
  const specs = readSpecs();
  let buildMtime = statSync(buildFile).mtimeMs;
  const sup = new Supervisor(lab, specs, log);
  // Only `lab down` (or a failed `up` removing itself) stops the supervisor.
  process.once('SIGTERM', () => { sup.killChildren(); process.exit(0); });
  log.info({ supervised: [...specs.keys()] }, 'supervising');
  for (;;) {
    await new Promise((r) => setTimeout(r, intervalMs));
    // `lab apply` may add or remove a waypoint: it rewrites build.json, and the specs follow it.
    try {
      const m = statSync(buildFile).mtimeMs;
      if (m !== buildMtime) {
        buildMtime = m;
        const next = readSpecs();
        specs.clear();
        for (const [k, v] of next) specs.set(k, v);
        log.info({ supervised: [...specs.keys()] }, 'build changed; supervising');
      }
    } catch { /* the lab is going away: tick() sees it */ }
    if (!(await sup.tick())) {
      sup.killChildren();
      process.exit(0);
    }
  }
}

if (process.argv[1]?.endsWith('supervisor.js')) {
  const lab = process.argv[process.argv.indexOf('--lab') + 1];
  void supervise(lab);
}
