// The property-based input tests run here, in a worker thread, so that the test can bound the
// time of every document: a document that hangs the parser or the planner (a synchronous loop)
// cannot be interrupted from inside, but the worker can be terminated from outside. Before each
// document the worker writes it to `currentFile` and sends a heartbeat; fuzz-harness.ts kills a
// worker that stops beating and reports the document it was on.
import { parentPort, workerData } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { fuzzTargets, type TargetName } from './fuzz-targets.js';
import type { Outcome } from './fuzz-pipeline.js';

export interface WorkerInput {
  target: TargetName;
  seed: number;
  numRuns: number;
  maxMs: number;
  currentFile: string;
}

export interface WorkerResult {
  failed: boolean;
  numRuns: number;
  seed: number;
  path?: string;
  counterexample?: { seed: string; ops: string[]; text: string };
  error?: string;
  accepted: number;
  refused: number;
  maxMs: number;
  totalMs: number;
  /** Refusal messages by their problem (the text after the last ": "), most frequent first. */
  topProblems: Array<[string, number]>;
}

const input = workerData as WorkerInput;
const target = fuzzTargets(input.maxMs)[input.target];
let beat = 0;
const stats = { accepted: 0, refused: 0, maxMs: 0 };
const problems = new Map<string, number>();
const t0 = performance.now();

const details = fc.check(fc.property(target.docs, (doc) => {
  writeFileSync(input.currentFile, `seed document: ${doc.seed}\nmutations: ${doc.ops.join('; ')}\n---\n${doc.text}`);
  parentPort!.postMessage({ beat: ++beat });
  const r: Outcome = target.run(doc);
  stats[r.outcome]++;
  stats.maxMs = Math.max(stats.maxMs, r.ms);
  if (r.message) {
    const problem = r.message.split(': ').pop()!.replace(/"[^"]*"/g, '"…"').replace(/\d+/g, 'N').slice(0, 70);
    problems.set(problem, (problems.get(problem) ?? 0) + 1);
  }
}), { seed: input.seed, numRuns: input.numRuns });

const result: WorkerResult = {
  failed: details.failed,
  numRuns: details.numRuns,
  seed: details.seed,
  ...(details.failed ? {
    path: details.counterexamplePath ?? undefined,
    counterexample: details.counterexample?.[0],
    error: String((details.errorInstance as Error | undefined)?.message ?? details.errorInstance),
  } : {}),
  ...stats,
  totalMs: performance.now() - t0,
  topProblems: [...problems].sort((a, b) => b[1] - a[1]).slice(0, 8),
};
parentPort!.postMessage({ result });
