// Runs a fuzz target in a worker thread (fuzz-worker.ts) with a watchdog: a worker silent for
// `stallMs` is on a document that hangs; it is terminated and that document is the failure.
import type { Test } from 'tap';
import { Worker } from 'node:worker_threads';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkerInput, WorkerResult } from './fuzz-worker.js';
import type { TargetName } from './fuzz-targets.js';

/** AMBIENT_LAB_FUZZ_SEED picks another seed (the failure report prints the one used). */
export const FUZZ_SEED = Number(process.env.AMBIENT_LAB_FUZZ_SEED ?? 1313);
/** AMBIENT_LAB_FUZZ_RUNS: documents per target (CI: 2,500 each). */
export const FUZZ_RUNS = Number(process.env.AMBIENT_LAB_FUZZ_RUNS ?? 2500);

export type HarnessResult = WorkerResult | { hung: true; seed: number; beats: number; document: string };

export function fuzzInWorker(target: TargetName, opts: { seed?: number; numRuns?: number; maxMs?: number; stallMs?: number } = {}): Promise<HarnessResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pf-fuzz-'));
  const input: WorkerInput = {
    target, seed: opts.seed ?? FUZZ_SEED, numRuns: opts.numRuns ?? FUZZ_RUNS, maxMs: opts.maxMs ?? 10_000, currentFile: join(dir, 'current.yaml'),
  };
  const stallMs = opts.stallMs ?? 60_000;
  // Before its first document the worker compiles and loads the code: on a loaded machine that
  // alone can take longer than any document should.
  const startMs = 240_000;
  const worker = new Worker(new URL('./fuzz-worker.ts', import.meta.url), { workerData: input });
  return new Promise<HarnessResult>((resolve, reject) => {
    let beats = 0;
    let timer: NodeJS.Timeout;
    const arm = (ms: number): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        let document = '';
        try { document = readFileSync(input.currentFile, 'utf8'); } catch { /* none yet */ }
        void worker.terminate();
        resolve({ hung: true, seed: input.seed, beats, document: document.slice(0, 3000) });
      }, ms);
    };
    arm(startMs);
    worker.on('message', (m: { beat?: number; result?: WorkerResult }) => {
      if (m.beat) { beats = m.beat; arm(stallMs); }
      if (m.result) { clearTimeout(timer); resolve(m.result); void worker.terminate(); }
    });
    worker.once('error', (e) => { clearTimeout(timer); reject(e); });
  }).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** One paragraph a person can act on: how to replay, what the document was, what went wrong. */
export function describeFailure(target: TargetName, r: HarnessResult): string {
  if ('hung' in r) {
    return `${target}: document ${r.beats} did not finish (seed ${r.seed}; replay with AMBIENT_LAB_FUZZ_SEED=${r.seed}):\n${r.document}`;
  }
  const c = r.counterexample;
  return `${target}: seed ${r.seed}, path ${r.path} (replay with AMBIENT_LAB_FUZZ_SEED=${r.seed}): ${r.error}\n` +
    `seed document: ${c?.seed}\nmutations: ${c?.ops.join('; ')}\n---\n${c?.text.slice(0, 3000)}`;
}

/** The whole test of one target: no failure, every document checked, both outcomes seen, figures as comments. */
export async function fuzzTest(t: Test, target: TargetName): Promise<void> {
  const r = await fuzzInWorker(target);
  if ('hung' in r || r.failed) {
    t.fail(describeFailure(target, r));
    return;
  }
  t.equal(r.numRuns, FUZZ_RUNS, `${r.numRuns} documents checked`);
  t.ok(r.accepted > 0 && r.refused > 0, `both outcomes happen: ${r.accepted} accepted, ${r.refused} refused`);
  t.comment(`${r.numRuns} documents in ${(r.totalMs / 1000).toFixed(1)} s (slowest ${Math.round(r.maxMs)} ms): ${r.accepted} accepted, ${r.refused} refused`);
  t.comment(`most frequent refusals: ${r.topProblems.map(([p, n]) => `${n}× ${p}`).join(' | ')}`);
}
