// A proxy's start-up, split where the time goes (issue 13: a killed proxy should serve again
// within 1 s). All in ms since the process started (performance.timeOrigin: Node's own start,
// after `ip netns exec` exec'd it).
import { performance } from 'node:perf_hooks';

export interface StartupTimes {
  /** Node's start-up, up to the end of its bootstrap (before any of our code is loaded). */
  nodeMs: number;
  /** The capture listeners listening (connections queue from here), when they were bound early. */
  listeningMs?: number;
  /** Our modules and their dependencies (pino, HTTP/2, TLS, ...) loaded. */
  loadedMs: number;
  /** Process start to ready: config, certificates, every listener (wall). */
  readyMs: number;
  /** CPU time (user + system) spent up to ready: what the start costs without waiting for a CPU. */
  cpuMs: number;
}

/** The marks are performance.now() values taken by the entry module. */
export function startupTimes(marks: { listeningAt?: number; loadedAt: number }, now = performance.now()): StartupTimes {
  const cpu = process.cpuUsage();
  const r = (n: number): number => Math.round(n);
  return {
    nodeMs: r(performance.nodeTiming.bootstrapComplete),
    ...(marks.listeningAt !== undefined ? { listeningMs: r(marks.listeningAt) } : {}),
    loadedMs: r(marks.loadedAt),
    readyMs: r(now),
    cpuMs: r((cpu.user + cpu.system) / 1000),
  };
}
