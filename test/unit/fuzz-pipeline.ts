// What the CLI does with a document before it touches the machine, in-process, for the
// property-based input tests: `lab up FILE --dry-run` is load (parse, schema, validation, the
// Istio objects) -> address plan -> build plan -> the printed build (src/lab/up.ts prepareUp,
// src/cli/dry-run.ts); `lab apply -f FILE` is steps 1 and 2 of src/lab/apply.ts applyObjects:
// the file on its own, then the lab's topology with every applied object, planned as `up` plans.
// The property: each either succeeds or throws UserError (which src/cli/main.ts prints as a
// message, exit 2), never another exception, a message with a stack in it, or a long run.
import { loadTopology, parseTopology } from '../../src/topology/load.js';
import { planAddresses } from '../../src/topology/address-plan.js';
import { planLab } from '../../src/plan/lab-build.js';
import { parseResources } from '../../src/istio/index.js';
import { splitObjects, type ObjectDocument } from '../../src/istio/documents.js';
import { renderBuild } from '../../src/cli/dry-run.js';
import { UserError } from '../../src/util/errors.js';
import type { Topology } from '../../src/topology/types.js';

const PATHS = { stateDir: '/run/ambient-lab/fuzz', distDir: '/opt/ambient-lab/dist', node: '/usr/bin/node' };

function planAndRender(topology: Topology): void {
  const plan = planAddresses(topology);
  // Both Geneve kinds: `tunnel: kernel` is refused without the module (a UserError), planned with it.
  for (const kernelGeneve of [false, true]) {
    const build = planLab(plan, { kernelGeneve }, { ...PATHS, stateDir: `/run/ambient-lab/${plan.lab}` }, { mesh: true });
    renderBuild(build);
    JSON.stringify(build);
  }
}

/** `lab up FILE --dry-run` of a topology text; `file` places it (manifests are relative to it). */
export function upDryRun(text: string, file: string): void {
  planAndRender(parseTopology(text, file));
}

/** `lab apply -f FILE` to a lab of `baseTopology`, up to the push (nothing after it is input handling). */
export function applyPlan(text: string, file: string, baseTopology: string): void {
  parseResources(text, file);
  const docs = splitObjects(text, file);
  if (!docs.length) throw new UserError(`${file}: no objects in it`);
  // As applyObjects keeps them: one object per key, the last one wins; each re-read from its own text.
  const byKey = new Map<string, ObjectDocument>(docs.map((d) => [d.key, d]));
  const extra = [...byKey.values()].map((o) => parseResources(o.text, o.where.replace(/:\d+$/, ''), { lineOffset: Number(o.where.split(':').pop()) - 1 }));
  planAndRender(loadTopology(baseTopology, { extraResources: extra }));
}

export type Outcome = { outcome: 'accepted' | 'refused'; ms: number; message?: string };

/** Longest a message may be: a clear message names the value, it does not echo 100 KB of it. */
export const MAX_MESSAGE = 4000;

/**
 * Runs `fn` and classifies it; anything but success or a clean UserError throws (the property
 * fails): another exception, a message that is empty, holds a stack trace or is huge, a slow run.
 */
export function classify(fn: () => void, maxMs: number): Outcome {
  const t0 = performance.now();
  let message: string | undefined;
  try {
    fn();
  } catch (e) {
    if (!(e instanceof UserError)) {
      throw new Error(`not a UserError (the CLI would print a stack trace and exit 1): ${(e as Error)?.stack ?? String(e)}`);
    }
    message = e.message;
    if (!message.trim()) throw new Error('a UserError with an empty message');
    if (/\n\s+at /.test(message)) throw new Error(`a UserError whose message holds a stack trace: ${message.slice(0, 500)}`);
    if (message.length > MAX_MESSAGE) throw new Error(`a UserError message of ${message.length} characters (max ${MAX_MESSAGE}): ${message.slice(0, 300)}...`);
  }
  const ms = performance.now() - t0;
  if (ms > maxMs) throw new Error(`took ${Math.round(ms)} ms (max ${maxMs})`);
  return { outcome: message === undefined ? 'accepted' : 'refused', ms, ...(message !== undefined ? { message } : {}) };
}
