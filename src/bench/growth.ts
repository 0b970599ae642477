// How `lab up` time grows with the lab: split into a per-node and a per-pod cost, and the
// factor that doubling the largest case costs (2.0 = linear). Pure.
import type { LifecycleFigures, LifecycleVariant } from './lifecycle.js';
import type { Growth } from './report.js';
import { fitNodesPods } from './stats.js';

export function computeGrowth(cases: LifecycleFigures[]): Growth[] {
  const out: Growth[] = [];
  for (const variant of ['no-mesh', 'mesh'] as const) {
    const pick = (c: LifecycleFigures): LifecycleVariant | undefined => (variant === 'mesh' ? c.mesh : c.noMesh);
    const usable = cases.filter((c) => pick(c));
    const fit = fitNodesPods(usable.map((c) => ({ nodes: c.nodes, pods: c.pods, y: pick(c)!.upWallMs.median })));
    if (!fit) continue;
    out.push({ variant, baseMs: fit.base, perNodeMs: fit.perNode, perPodMs: fit.perPod, doublingRatio: doublingRatio(usable, pick) });
  }
  return out;
}

/** up(largest) / up(the case with half its nodes), when such a pair was measured. */
export function doublingRatio(cases: LifecycleFigures[], pick: (c: LifecycleFigures) => LifecycleVariant | undefined): number | undefined {
  const byNodes = [...cases].sort((a, b) => b.nodes - a.nodes);
  const big = byNodes[0];
  const half = big && cases.find((c) => c.nodes * 2 === big.nodes && c.pods * 2 >= big.pods * 0.9);
  const vb = big && pick(big);
  const vh = half && pick(half);
  return vb && vh ? vb.upWallMs.median / vh.upWallMs.median : undefined;
}
