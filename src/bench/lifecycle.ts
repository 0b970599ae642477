// `lab up` / `lab down` wall time, with and without the mesh, repeated; keeps each run's
// timingsMs so the report can say which step the time went to. On a case that names an exec
// target, also the wall time of `lab exec TARGET -- true` while the lab is up: the CLI's
// start-up, which every verb a learner types pays.
import { labUp, labDown, runCli } from './lab-cli.js';
import { spread, type Spread } from './stats.js';

export interface LifecycleCase {
  /** demo, 10x10, 20x10 */
  label: string;
  file: string;
  nodes: number;
  reps: number;
  /** Time `lab exec <target> -- true` this many times after each `lab up`. */
  exec?: { target: string; reps: number };
}

export interface LifecycleVariant {
  upWallMs: Spread;
  upTotalMs: Spread;
  downWallMs: Spread;
  /** Median of each `lab up` step over the runs. */
  stepsMs: Record<string, number>;
  /** Median of each stage before the steps (`prepareMs` of `lab up --json`: start, load, probe, plan, check). */
  prepareMs?: Record<string, number>;
  /** Pod namespaces `lab up` reported (workloads plus a ztunnel per node and cluster DNS). */
  podNamespaces: number;
  /** `lab exec <target> -- true`, every run of every lab up of this variant. */
  execWallMs?: Spread;
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
  const prepare: Record<string, number[]> = {};
  const exec: number[] = [];
  let podNamespaces = 0;
  for (let r = 0; r < c.reps; r++) {
    const u = await labUp(c.file, name, mesh);
    let d: Awaited<ReturnType<typeof labDown>>;
    try {
      if (c.exec) exec.push(...await timeExec(name, c.exec.target, c.exec.reps));
    } finally {
      d = await labDown(name);
    }
    up.push(u.wallMs);
    total.push(u.summary.totalMs);
    down.push(d.wallMs);
    podNamespaces = u.summary.pods.length;
    for (const [k, v] of Object.entries(u.summary.timingsMs)) (steps[k] ??= []).push(v);
    const before = (u.summary as { prepareMs?: Record<string, number> }).prepareMs ?? {};
    for (const [k, v] of Object.entries(before)) (prepare[k] ??= []).push(v);
    log(`  ${c.label}${mesh ? '' : ' --no-mesh'} run ${r + 1}/${c.reps}: up ${Math.round(u.wallMs)} ms, down ${Math.round(d.wallMs)} ms`);
  }
  return {
    upWallMs: spread(up), upTotalMs: spread(total), downWallMs: spread(down),
    stepsMs: medians(steps),
    prepareMs: medians(prepare),
    podNamespaces,
    ...(exec.length ? { execWallMs: spread(exec) } : {}),
  };
}

const medians = (r: Record<string, number[]>): Record<string, number> =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, spread(v).median]));

/** Wall times of `lab exec --lab NAME TARGET -- true`, the compiled CLI as a user runs it. */
async function timeExec(name: string, target: string, reps: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const r = await runCli(['exec', '--lab', name, target, '--', 'true']);
    if (r.code !== 0) throw new Error(`lab exec --lab ${name} ${target} -- true failed (exit ${r.code}): ${r.stderr.trim()}`);
    out.push(r.wallMs);
  }
  return out;
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
