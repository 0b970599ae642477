// Memory and CPU of lab processes, read from /proc: VmRSS from status, utime+stime from stat.
// The parsers are pure (unit-tested on captured text); the readers return undefined for a
// process that is gone.
import { readFileSync } from 'node:fs';

/** VmRSS in KiB from the text of /proc/<pid>/status. */
export function parseVmRssKb(status: string): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

/** utime+stime in clock ticks from the text of /proc/<pid>/stat. */
export function parseCpuTicks(stat: string): number | undefined {
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : undefined;
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

export function rssKb(pid: number): number | undefined {
  const s = read(`/proc/${pid}/status`);
  return s === undefined ? undefined : parseVmRssKb(s);
}

export function cpuTicks(pid: number): number | undefined {
  const s = read(`/proc/${pid}/stat`);
  return s === undefined ? undefined : parseCpuTicks(s);
}

/** Linux has reported times in USER_HZ = 100 ticks/s on every architecture since 2.6. */
export const TICKS_PER_SECOND = 100;

/** Peak RSS of a set of processes, sampled every `everyMs` while `during` runs. */
export async function peakRssWhile<T>(pids: number[], during: () => Promise<T>, everyMs = 200): Promise<{ result: T; peakKb: Map<number, number> }> {
  const peakKb = new Map<number, number>();
  const sample = () => {
    for (const pid of pids) {
      const kb = rssKb(pid);
      if (kb !== undefined) peakKb.set(pid, Math.max(peakKb.get(pid) ?? 0, kb));
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  try {
    const result = await during();
    sample();
    return { result, peakKb };
  } finally {
    clearInterval(timer);
  }
}

/** CPU seconds each process spent while `during` ran (wall seconds alongside). */
export async function cpuWhile<T>(pids: number[], during: () => Promise<T>): Promise<{ result: T; cpuSeconds: Map<number, number>; wallSeconds: number }> {
  const before = new Map(pids.map((p) => [p, cpuTicks(p)]));
  const t0 = performance.now();
  const result = await during();
  const wallSeconds = (performance.now() - t0) / 1000;
  const cpuSeconds = new Map<number, number>();
  for (const p of pids) {
    const a = before.get(p);
    const b = cpuTicks(p);
    if (a !== undefined && b !== undefined) cpuSeconds.set(p, (b - a) / TICKS_PER_SECOND);
  }
  return { result, cpuSeconds, wallSeconds };
}
