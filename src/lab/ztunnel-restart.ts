// `lab ztunnel restart NODE [--graceful]`: replacing a running ztunnel, as a DaemonSet rollout
// does. The supervisor does the replacing (it is the one place that starts replacements and
// writes their PIDs into the state, so a rollout never races a crash restart); the CLI drops a
// request file in the lab's state directory, which the supervisor picks up at its next look
// (every 100 ms), and waits for the result file.
//
// plain:    SIGTERM the old ztunnel (SIGKILL after 1.5 s), then start the new one. Between the
//           two nothing listens on 15001/15006/15008: TPROXY drops the SYNs, clients retry or
//           time out, and the connections the old one carried are cut.
// graceful: start the new ztunnel beside the old one (every ztunnel listener is SO_REUSEPORT),
//           wait until it is ready, record it as the process, then SIGUSR2 the old one: it
//           stops accepting (the kernel hands its queued connections to the new listener,
//           net.ipv4.tcp_migrate_req), GOAWAYs its HBONE sessions and exits once its open
//           connections have ended; past the drain timeout it gets SIGTERM, then SIGKILL.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { labStateFile } from '../state/store.js';
import { sleep } from '../host/processes.js';

export type RestartKind = 'plain' | 'graceful';

export const DRAIN_DEFAULT_MS = 10_000;
export const DRAIN_MAX_MS = 300_000;
/** After SIGTERM (a plain restart, or a drain that ran out), SIGKILL follows this much later. */
export const TERM_GRACE_MS = 1500;

export interface RestartRequest {
  /** The process id in the state (`ztunnel/node-a`). */
  id: string;
  kind: RestartKind;
  drainMs: number;
}

export interface RestartResult {
  ok: boolean;
  id: string;
  kind: RestartKind;
  error?: string;
  oldPid?: number;
  newPid?: number;
  /** From the request being taken up to the new ztunnel's ready file. */
  newReadyMs?: number;
  /** plain: from SIGTERM of the old until the new one was ready (nothing listened meanwhile). */
  gapMs?: number;
  /** graceful: from SIGUSR2 until the old one exited. */
  drainedMs?: number;
  /** graceful: connections the old one was carrying when it stopped accepting (from its log). */
  openAtDrain?: Record<string, number>;
  /** How the old one ended: 'exited' on its own (drained / terminated), or 'SIGTERM'/'SIGKILL' sent past the bound. */
  oldEnded?: 'exited' | 'SIGTERM' | 'SIGKILL';
}

const requestDir = (lab: string): string => labStateFile(lab, 'requests');

/**
 * "10s", "500ms", "2m" or a bare number of seconds -> milliseconds. Undefined when it is not
 * one of those or out of range (the CLI turns that into a UserError naming the form).
 */
export function parseDuration(s: string | number): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(s).trim());
  if (!m) return undefined;
  const n = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  return n >= 100 && n <= DRAIN_MAX_MS ? Math.round(n) : undefined;
}

// ---- the CLI's side ------------------------------------------------------------------

/** Writes the request where the supervisor looks; returns its key. */
export function submitRestart(lab: string, req: RestartRequest): string {
  const dir = requestDir(lab);
  mkdirSync(dir, { recursive: true });
  const key = `${Date.now()}-${randomBytes(4).toString('hex')}`;
  const tmp = join(dir, `.${key}.tmp`);
  writeFileSync(tmp, JSON.stringify(req));
  renameSync(tmp, join(dir, `${key}.request.json`));
  return key;
}

/** Waits for the supervisor's answer to request `key`; undefined past `timeoutMs` or when `alive()` turns false. */
export async function awaitRestart(lab: string, key: string, timeoutMs: number, alive: () => boolean): Promise<RestartResult | undefined> {
  const file = join(requestDir(lab), `${key}.result.json`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(file)) {
      const r = JSON.parse(readFileSync(file, 'utf8')) as RestartResult;
      rmSync(file, { force: true });
      return r;
    }
    if (!alive()) return undefined;
    await sleep(50);
  }
  return undefined;
}

// ---- the supervisor's side ------------------------------------------------------------

/** Requests waiting, oldest first; each is claimed (renamed) so it is handled once. */
export function takeRequests(lab: string): Array<{ key: string; req: RestartRequest }> {
  const dir = requestDir(lab);
  let names: string[];
  try { names = readdirSync(dir).filter((n) => n.endsWith('.request.json')).sort(); } catch { return []; }
  const out: Array<{ key: string; req: RestartRequest }> = [];
  for (const n of names) {
    const key = n.slice(0, -'.request.json'.length);
    const claimed = join(dir, `${key}.taken.json`);
    try {
      renameSync(join(dir, n), claimed);
      out.push({ key, req: JSON.parse(readFileSync(claimed, 'utf8')) as RestartRequest });
    } catch { /* gone or unreadable: nothing to do */ }
    rmSync(claimed, { force: true });
  }
  return out;
}

export function answerRestart(lab: string, key: string, result: RestartResult): void {
  const dir = requestDir(lab);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${key}.result.tmp`);
  writeFileSync(tmp, JSON.stringify(result));
  renameSync(tmp, join(dir, `${key}.result.json`));
}

/** The pid a ready file names (writeReadyFile puts it there), or undefined while there is none. */
export function readyPid(file: string): number | undefined {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { pid?: number }).pid;
  } catch {
    return undefined;
  }
}

/** The log's size now: where to start reading for what a process logs next. */
export function logOffset(log: string): number {
  try { return statSync(log).size; } catch { return 0; }
}

/** The `open` counts of the old ztunnel's "draining" log line, written after byte `from` of its log. */
export function openAtDrain(log: string, pid: number, from: number): Record<string, number> | undefined {
  let text: string;
  try {
    const fd = openSync(log, 'r');
    try {
      // The line comes right after the signal; 64 KB past the offset is plenty even with access logs interleaved.
      const buf = Buffer.alloc(65_536);
      text = buf.subarray(0, readSync(fd, buf, 0, buf.length, from)).toString('utf8');
    } finally { closeSync(fd); }
  } catch { return undefined; }
  for (const line of text.split('\n')) {
    if (!line.includes('"draining: stopped accepting')) continue;
    try {
      const l = JSON.parse(line) as { pid?: number; open?: Record<string, number> };
      if (l.pid === pid) return l.open;
    } catch { /* a partial line */ }
  }
  return undefined;
}
