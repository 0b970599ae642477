// A proxy's start-up, split where the time goes (issue 13: a killed proxy should serve again
// within 1 s). All in ms since the process started (performance.timeOrigin: Node's own start,
// after `ip netns exec` exec'd it).
import { performance } from 'node:perf_hooks';
export interface StartupTimes {
  /** Node's start-up, up to the end of its bootstrap (before any of our code is loaded). */
  nodeMs: number;
  /** Loading and evaluating our modules and their dependencies (pino, ...). */
  modulesMs: number;
  /** From the modules being loaded to ready: config, certificates, listeners. */
  startMs: number;
  /** Process start to ready (wall). */
  readyMs: number;
  /** CPU time (user + system) spent up to ready: what the start costs without waiting for a CPU. */
  cpuMs: number;
}

/** `loadedAt`: performance.now() when the entry module's body began (its imports evaluated). */
export function startupTimes(loadedAt: number, now = performance.now()): StartupTimes {
  const nodeMs = performance.nodeTiming.bootstrapComplete;
  const cpu = process.cpuUsage();
  const r = (n: number): number => Math.round(n);
  return {
    nodeMs: r(nodeMs),
    modulesMs: r(loadedAt - nodeMs),
    startMs: r(now - loadedAt),
    readyMs: r(now),
    cpuMs: r((cpu.user + cpu.system) / 1000),
  };
}
