// `lab up` / `lab down` wall time, with and without the mesh, repeated; keeps each run's
// timingsMs so the report can say which step the time went to.
import { labUp, labDown } from './lab-cli.js';
import { spread, type Spread } from './stats.js';

export interface LifecycleCase {
  /** demo, 10x10, 20x10 */
  label: string;
  file: string;
  nodes: number;
  reps: number;
}

export interface LifecycleVariant {
  upWallMs: Spread;
  upTotalMs: Spread;
  downWallMs: Spread;
  /** Median of each `lab up` step over the runs. */
  stepsMs: Record<string, number>;
  /** Pod namespaces `lab up` reported (workloads plus a ztunnel per node and cluster DNS). */
  podNamespaces: number;
}

export interface LifecycleFigures {
  label: string;
  nodes: number;
  /** Pod namespaces, infrastructure pods included: what `lab up` actually builds. */
  pods: number;
  reps: number;
  noMesh: LifecycleVariant;
  mesh?: LifecycleVariant;
  meshError?: string;
}

type Log = (msg: string) => void;

async function variant(c: LifecycleCase, name: string, mesh: boolean, log: Log): Promise<LifecycleVariant> {
  const up: number[] = [];
  const total: number[] = [];
  const down: number[] = [];
  const steps: Record<string, number[]> = {};
  let podNamespaces = 0;
  for (let r = 0; r < c.reps; r++) {
    const u = await labUp(c.file, name, mesh);
    const d = await labDown(name);
    up.push(u.wallMs);
    total.push(u.summary.totalMs);
    down.push(d.wallMs);
    podNamespaces = u.summary.pods.length;
    for (const [k, v] of Object.entries(u.summary.timingsMs)) (steps[k] ??= []).push(v);
    log(`  ${c.label}${mesh ? '' : ' --no-mesh'} run ${r + 1}/${c.reps}: up ${Math.round(u.wallMs)} ms, down ${Math.round(d.wallMs)} ms`);
  }
  return {
    upWallMs: spread(up), upTotalMs: spread(total), downWallMs: spread(down),
    stepsMs: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, spread(v).median])),
    podNamespaces,
  };
}

/** Baseline first, then the mesh; a mesh that does not come up is reported, not fatal. */
export async function measureLifecycle(c: LifecycleCase, name: string, withMesh: boolean, log: Log): Promise<LifecycleFigures> {
  const noMesh = await variant(c, name, false, log);
  const out: LifecycleFigures = { label: c.label, nodes: c.nodes, pods: noMesh.podNamespaces, reps: c.reps, noMesh };
  if (!withMesh) return out;
  try {
    out.mesh = await variant(c, name, true, log);
  } catch (e) {
    out.meshError = (e as Error).message.split('\n')[0];
    log(`  ${c.label} mesh: ${out.meshError}`);
  }
  return out;
}
