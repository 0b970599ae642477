// The TLS secrets the ztunnels, waypoints and sidecars log (SSLKEYLOGFILE format), gathered into one
// keys.log so `tshark -o tls.keylog_file:keys.log` can open the HBONE tunnels of a trace.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { labStateFile } from '../state/store.js';
import { insideDir } from '../util/inside-dir.js';
import type { LabPlan } from '../topology/address-plan.js';

/** Key log files named in the lab's ztunnel and waypoint configs (`keyLogFile`) that exist. */
export function keyLogFiles(plan: LabPlan): { configured: string[]; present: string[] } {
  const configured: string[] = [];
  const configs = [
    ...plan.nodes.map((n) => labStateFile(plan.lab, 'ztunnel', `${n.name}.json`)),
    ...plan.pods.filter((p) => p.role === 'waypoint').map((p) => labStateFile(plan.lab, 'waypoint', `${p.namespace}.${p.name}.json`)),
    // Sidecars log their keys too: Istio mTLS between two sidecars is opened with them.
    ...plan.pods.filter((p) => p.role === 'workload' && p.mode === 'sidecar').map((p) => labStateFile(plan.lab, 'sidecar', `${p.namespace}.${p.name}`, 'config.json')),
  ];
  for (const file of configs) {
    try {
      const cfg = JSON.parse(readFileSync(file, 'utf8')) as { keyLogFile?: string };
      if (cfg.keyLogFile) configured.push(cfg.keyLogFile);
    } catch {
      // no mesh, or no config for this proxy
    }
  }
  return { configured, present: configured.filter((f) => existsSync(f)) };
}

/** Lines of a key log, deduplicated (both ends of a tunnel log the same secrets). */
export function mergeKeyLogs(texts: string[]): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const t of texts) {
    for (const line of t.split('\n')) {
      if (!line.trim() || seen.has(line)) continue;
      seen.add(line);
      out.push(line);
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** Writes keys.log into `dir`; returns its path, or undefined when no ztunnel logs keys. */
export function copyKeyLog(plan: LabPlan, dir: string): string | undefined {
  const { present } = keyLogFiles(plan);
  if (!present.length) return undefined;
  const file = insideDir(dir, 'keys.log');
  writeFileSync(file, mergeKeyLogs(present.map((f) => readFileSync(f, 'utf8'))), { mode: 0o600 });
  return file;
}
