// The lab's supervisor: restarts a ztunnel (or userspace Geneve daemon) that died, as a
// DaemonSet would, and records the new PID in the state. One per lab, started by `lab up`
// in the underlay netns; `lab down` stops it first (it never restarts while the lab is
// not in phase "up").
import { readState, writeState } from '../state/store.js';
import { isAlive, startProcess, waitReady } from '../host/processes.js';
import { fileLogger } from '../util/log.js';
import type { LabBuild } from '../plan/lab-build.js';
import { readFileSync, rmSync } from 'node:fs';
import { labStateDir } from '../state/store.js';

const SUPERVISED = new Set(['ztunnel', 'geneve']);

export async function supervise(lab: string, intervalMs = 300): Promise<never> {
  const log = fileLogger(`${labStateDir(lab)}/logs/supervisor.log`, 'supervisor');
  const build = JSON.parse(readFileSync(`${labStateDir(lab)}/build.json`, 'utf8')) as LabBuild;
  const specs = new Map(build.processes.filter((p) => SUPERVISED.has(p.role)).map((p) => [p.id, p]));
  log.info({ supervised: [...specs.keys()] }, 'supervising');
  for (;;) {
    await new Promise((r) => setTimeout(r, intervalMs));
    const state = readState(lab);
    if (!state) process.exit(0);
    if (state.phase !== 'up') continue;
    for (const rec of state.processes) {
      const spec = specs.get(rec.id);
      if (!spec || isAlive(rec.pid)) continue;
      log.warn({ id: rec.id, pid: rec.pid }, 'process died; restarting');
      if (spec.readyFile) rmSync(spec.readyFile, { force: true });
      const fresh = startProcess(lab, spec);
      const latest = readState(lab);
      if (!latest || latest.phase !== 'up') continue;
      latest.processes = latest.processes.map((p) => (p.id === rec.id ? { ...fresh, restarts: (p.restarts ?? 0) + 1 } : p));
      writeState(latest);
      try {
        if (spec.readyFile) await waitReady([{ readyFile: spec.readyFile, pid: fresh.pid, log: spec.log, id: spec.id }]);
        log.info({ id: rec.id, pid: fresh.pid }, 'restarted');
      } catch (e) {
        log.error({ id: rec.id, err: String(e) }, 'restart failed');
      }
    }
  }
}

if (process.argv[1]?.endsWith('supervisor.js')) {
  const lab = process.argv[process.argv.indexOf('--lab') + 1];
  void supervise(lab);
}
