// The lab's supervisor: restarts a process the build marks `restart: 'always'` (ztunnels, the
// userspace Geneve daemon, waypoints, sidecar proxies, cluster DNS: each kind's planner says
// so, the supervisor knows no kinds) when it dies, as a DaemonSet would, and records the new
// PID, the restart count and the last exit in the state. One per lab, started by `lab up` in
// the underlay netns; `lab down` stops it.
//
// Two promises it keeps:
// - It never leaves a replacement behind after `lab down`: it checks the phase right before
//   starting one, checks it again right after (down may have begun in between, and its scan
//   for our processes may already be over) and kills what it just started if the lab is no
//   longer up; and when down stops it (SIGTERM), it kills every replacement it started, which
//   covers its own state write racing down's.
// - A process that keeps dying is not restarted every tick forever: like Kubernetes'
//   CrashLoopBackOff, each quick death in a row doubles the wait (capped), and a process that
//   stayed up for a while starts the count again. The state says so (backoffUntil), for `lab status`.
//
// It also carries out `lab ztunnel restart` (lab/ztunnel-restart.ts): a replacement asked for
// is not a crash, and while one is under way the process is left to it.
import { rmSync, readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import { readState, writeState, labStateDir, type LabState, type ProcessRecord } from '../state/store.js';
import { isAlive, sleep, startProcess, waitReady } from '../host/processes.js';
import { fileLogger } from '../util/log.js';
import type { LabBuild, ProcessSpec } from '../plan/lab-build.js';
import {
  answerRestart, logOffset, openAtDrain, readyPid, takeRequests, TERM_GRACE_MS, type RestartRequest, type RestartResult,
} from './ztunnel-restart.js';
import { SUCCESSOR_ENV } from '../ztunnel/successor.js';

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
export type SupervisedRecord = ProcessRecord & {
  lastExit?: ExitInfo;
  /** Set while a crash-looping process waits for its next start (ISO time). */
  backoffUntil?: string;
  /** The last `lab ztunnel restart` that replaced it. */
  rollout?: { kind: 'plain' | 'graceful'; at: string; previousPid: number };
  /** An old ztunnel finishing its open connections after a graceful restart (id `<id>#draining`). */
  draining?: { since: string; until: string };
};

/** The id under which an old process that is draining stays in the state, so `lab down` still stops it. */
export const drainingId = (id: string): string => `${id}#draining`;

export type OnExit = (code: number | null, signal: NodeJS.Signals | null) => void;

/** What the supervisor does to the world; tests replace parts of it. */
export interface SupervisorDeps {
  readState: (lab: string) => LabState | undefined;
  writeState: (s: LabState) => void;
  /** `env` is added to the process's environment. */
  start: (lab: string, spec: ProcessSpec, onExit: OnExit, env?: Record<string, string>) => ProcessRecord;
  isAlive: (pid: number) => boolean;
  now: () => number;
  kill: (pid: number, signal: NodeJS.Signals) => void;
}

export const realDeps: SupervisorDeps = {
  readState, writeState, isAlive,
  start: (lab, spec, onExit, env) => startProcess(lab, spec, env ?? {}, onExit),
  now: () => Date.now(),
  kill: (pid, signal) => { try { process.kill(pid, signal); } catch { /* already gone */ } },
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
  /** Ids a `lab ztunnel restart` is replacing right now: not for the crash path. */
  private readonly busy = new Set<string>();
  /**
   * Called when a process of ours exits, so the loop looks at once instead of at its next tick:
   * up to 100 ms of the 1 s budget from a death to serving again (issue 13). A process `lab up`
   * started is not our child; its death is seen by the tick.
   */
  onChildExit?: () => void;

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
      if (!spec || this.busy.has(rec.id) || this.children.has(rec.pid) || this.deps.isAlive(rec.pid)) continue;
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
      if (death.notBefore > now) {
        const until = new Date(death.notBefore).toISOString();
        this.updateRecord(rec.id, (r) => ({ ...r, lastExit: exit, backoffUntil: until }));
      }
    }
    if (now < death.notBefore) return true;

    // Right before starting: `lab down` may have begun since the tick read the state (or
    // during the back-off), and it must not find a process it has not seen.
    const before = this.deps.readState(this.lab);
    if (!before || before.phase !== 'up') return false;
    if (spec.readyFile) rmSync(spec.readyFile, { force: true });
    const fresh = this.startChild(spec);

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

  /** Starts a process of ours; its exit is reaped here, so we learn its code or signal. */
  private startChild(spec: ProcessSpec, env?: Record<string, string>): ProcessRecord {
    const fresh = this.deps.start(this.lab, spec, (code, signal) => {
      this.children.delete(fresh.pid);
      this.exits.set(fresh.pid, { at: new Date(this.deps.now()).toISOString(), code, signal });
      this.onChildExit?.();
    }, env);
    this.children.add(fresh.pid);
    return fresh;
  }

  /** Read, change one record, write: synchronous, so nothing else of ours writes in between. */
  private updateRecord(id: string, fn: (r: SupervisedRecord) => SupervisedRecord | undefined): LabState | undefined {
    const s = this.deps.readState(this.lab);
    if (!s || s.phase !== 'up') return undefined;
    s.processes = s.processes.flatMap((p) => (p.id === id ? [fn(p as SupervisedRecord)].filter((x): x is SupervisedRecord => !!x) : [p]));
    this.deps.writeState(s);
    return s;
  }

  /** Takes the `lab ztunnel restart` requests waiting; each runs on its own, the ticks go on meanwhile. */
  handleRequests(): void {
    for (const { key, req } of takeRequests(this.lab)) {
      void this.rollout(req).then((r) => answerRestart(this.lab, key, r), (e: Error) => {
        this.log.error({ err: e.message, req }, 'restart failed');
        answerRestart(this.lab, key, { ok: false, id: req.id, kind: req.kind, error: e.message });
      });
    }
  }

  /** Replaces a running process on request: plain (stop, start) or graceful (start, then drain the old one). */
  async rollout(req: RestartRequest): Promise<RestartResult> {
    const base = { id: req.id, kind: req.kind };
    const spec = this.specs.get(req.id);
    const rec = this.deps.readState(this.lab)?.processes.find((p) => p.id === req.id) as SupervisedRecord | undefined;
    if (!spec || !rec) return { ...base, ok: false, error: `${req.id} is not a process this supervisor looks after` };
    if (this.busy.has(req.id)) return { ...base, ok: false, error: `a restart of ${req.id} is already under way` };
    if (!this.deps.isAlive(rec.pid)) return { ...base, ok: false, error: `${req.id} (pid ${rec.pid}) is not running; the supervisor restarts it on its own` };
    this.busy.add(req.id);
    try {
      return req.kind === 'graceful' ? await this.graceful(rec, spec, req.drainMs) : await this.plain(rec, spec);
    } finally {
      this.busy.delete(req.id);
    }
  }

  private async plain(old: SupervisedRecord, spec: ProcessSpec): Promise<RestartResult> {
    const t0 = this.deps.now();
    this.log.info({ id: old.id, pid: old.pid }, 'restart (plain): stopping the old process');
    const oldEnded = await this.terminate(old.pid);
    const fresh = this.startChild(spec);
    const latest = this.updateRecord(old.id, (r) => ({
      ...fresh, restarts: r.restarts, ...(r.lastExit ? { lastExit: r.lastExit } : {}),
      rollout: { kind: 'plain', at: new Date(t0).toISOString(), previousPid: old.pid },
    }));
    if (!latest) {
      await this.stop(fresh.pid);
      return { ok: false, id: old.id, kind: 'plain', oldPid: old.pid, error: 'the lab is going down' };
    }
    const ready = await this.readyOf(spec, fresh.pid);
    const gapMs = this.deps.now() - t0;
    this.log.info({ id: old.id, oldPid: old.pid, pid: fresh.pid, gapMs, ready }, 'restart (plain) done');
    if (ready !== true) return { ok: false, id: old.id, kind: 'plain', oldPid: old.pid, newPid: fresh.pid, error: ready, oldEnded };
    return { ok: true, id: old.id, kind: 'plain', oldPid: old.pid, newPid: fresh.pid, newReadyMs: gapMs, gapMs, oldEnded };
  }

  private async graceful(old: SupervisedRecord, spec: ProcessSpec, drainMs: number): Promise<RestartResult> {
    const t0 = this.deps.now();
    const fail = (error: string, newPid?: number): RestartResult =>
      ({ ok: false, id: old.id, kind: 'graceful', oldPid: old.pid, ...(newPid ? { newPid } : {}), error });
    this.log.info({ id: old.id, pid: old.pid }, 'restart (graceful): starting the new process beside the old one');
    // The old one keeps serving until the new one is ready: the new one must not take
    // connections before it can serve them (no early listening, ztunnel/early-listen.ts).
    const fresh = this.startChild(spec, { [SUCCESSOR_ENV]: '1' });
    const ready = await this.readyOf(spec, fresh.pid);
    if (ready !== true) {
      // The old one never stopped serving; what the new one said is in its log (EADDRINUSE when
      // the old one predates SO_REUSEPORT listeners).
      await this.stop(fresh.pid);
      return fail(`the new ${old.id} did not become ready (${ready}); the old one (pid ${old.pid}) keeps serving`, fresh.pid);
    }
    const newReadyMs = this.deps.now() - t0;
    const since = this.deps.now();
    const draining: SupervisedRecord = {
      ...old, id: drainingId(old.id),
      draining: { since: new Date(since).toISOString(), until: new Date(since + drainMs).toISOString() },
    };
    // One write swaps in the new PID and keeps the old one on record (lab down must still find it).
    const latest = this.deps.readState(this.lab);
    if (!latest || latest.phase !== 'up') {
      await this.stop(fresh.pid);
      return fail('the lab is going down', fresh.pid);
    }
    latest.processes = latest.processes.flatMap((p): SupervisedRecord[] => (p.id === old.id ? [{
      ...fresh, restarts: p.restarts, ...((p as SupervisedRecord).lastExit ? { lastExit: (p as SupervisedRecord).lastExit } : {}),
      rollout: { kind: 'graceful', at: new Date(t0).toISOString(), previousPid: old.pid },
    }, draining] : [p]));
    this.deps.writeState(latest);
    this.log.info({ id: old.id, pid: fresh.pid, oldPid: old.pid, newReadyMs, drainMs }, 'new process ready; draining the old one');

    const logFrom = logOffset(old.log);
    this.deps.kill(old.pid, 'SIGUSR2');
    let oldEnded: RestartResult['oldEnded'] = 'exited';
    if (!(await this.gone(old.pid, drainMs))) oldEnded = await this.terminate(old.pid);
    const drainedMs = this.deps.now() - since;
    this.updateRecord(draining.id, () => undefined);
    const open = openAtDrain(old.log, old.pid, logFrom);
    this.log.info({ id: old.id, oldPid: old.pid, drainedMs, oldEnded, open }, 'restart (graceful) done');
    return {
      ok: true, id: old.id, kind: 'graceful', oldPid: old.pid, newPid: fresh.pid, newReadyMs, drainedMs, oldEnded,
      ...(open ? { openAtDrain: open } : {}),
    };
  }

  /** True once `pid` has ended (within `ms`). */
  private async gone(pid: number, ms: number): Promise<boolean> {
    const deadline = this.deps.now() + ms;
    while (this.deps.isAlive(pid)) {
      if (this.deps.now() >= deadline) return false;
      await sleep(20);
    }
    return true;
  }

  /** SIGTERM, then SIGKILL past TERM_GRACE_MS, as `lab down` stops a process; says which one ended it. */
  private async terminate(pid: number): Promise<'SIGTERM' | 'SIGKILL'> {
    this.deps.kill(pid, 'SIGTERM');
    if (await this.gone(pid, TERM_GRACE_MS)) return 'SIGTERM';
    this.deps.kill(pid, 'SIGKILL');
    await this.gone(pid, 2000);
    return 'SIGKILL';
  }

  /** Waits for the ready file to name `pid`; true, or why not. */
  private async readyOf(spec: ProcessSpec, pid: number, timeoutMs = Number(process.env.AMBIENT_LAB_READY_TIMEOUT_MS) || 15_000): Promise<true | string> {
    if (!spec.readyFile) return true;
    const deadline = this.deps.now() + timeoutMs;
    for (;;) {
      if (readyPid(spec.readyFile) === pid) return true;
      if (!this.deps.isAlive(pid)) return `it exited: ${this.exits.get(pid) ? JSON.stringify(this.exits.get(pid)) : 'see its log'} (${spec.log})`;
      if (this.deps.now() > deadline) return `not ready after ${timeoutMs} ms`;
      await sleep(10);
    }
  }

  /** SIGKILL a replacement and wait until it is gone: reaped by us (a zombie already looks dead to isAlive). */
  private async stop(pid: number): Promise<void> {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    const deadline = Date.now() + 2000;
    while (this.children.has(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
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

/**
 * The loop. 100 ms between looks: a dead proxy is noticed within that (one of ours at once),
 * and restarting it (a Node process start, its listeners) fits the 1 s budget from death to
 * serving again on a machine that is not overloaded.
 */
export async function supervise(lab: string, intervalMs = 100): Promise<never> {
  const log = fileLogger(`${labStateDir(lab)}/logs/supervisor.log`, 'supervisor');
  const buildFile = `${labStateDir(lab)}/build.json`;
  const readSpecs = (): Map<string, ProcessSpec> => {
    const build = JSON.parse(readFileSync(buildFile, 'utf8')) as LabBuild;
    return new Map(build.processes.filter((p) => p.restart === 'always').map((p) => [p.id, p]));
  };
  const specs = readSpecs();
  let buildMtime = statSync(buildFile).mtimeMs;
  const sup = new Supervisor(lab, specs, log);
  // Only `lab down` (or a failed `up` removing itself) stops the supervisor.
  process.once('SIGTERM', () => { sup.killChildren(); process.exit(0); });
  log.info({ supervised: [...specs.keys()] }, 'supervising');
  let wake: (() => void) | undefined;
  sup.onChildExit = () => wake?.();
  for (;;) {
    await new Promise<void>((r) => {
      const timer = setTimeout(r, intervalMs);
      wake = () => { clearTimeout(timer); r(); };
    });
    wake = undefined;
    sup.handleRequests();
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
