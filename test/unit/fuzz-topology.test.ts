// Property-based input test: thousands of mutated topology files (`lab up FILE --dry-run`), from the repository's own files.
// Property: the CLI's own load, validation and planning either succeed or throw UserError (a
// clear message, exit 2), never another exception, a stack trace or a hang (each document is
// bounded; see fuzz-harness.ts). AMBIENT_LAB_FUZZ_SEED / AMBIENT_LAB_FUZZ_RUNS pick the seed and count.
import t from 'tap';
import { describeFailure, fuzzInWorker, FUZZ_RUNS, FUZZ_SEED } from './fuzz-harness.js';

t.test(`${FUZZ_RUNS} mutated topology documents (seed ${FUZZ_SEED}): accepted or refused with a UserError, each within 10 s`, async (t) => {
  const r = await fuzzInWorker('topology');
  if ('hung' in r || r.failed) {
    t.fail(describeFailure('topology', r));
    return;
  }
  t.equal(r.numRuns, FUZZ_RUNS, `${r.numRuns} documents checked`);
  t.ok(r.accepted > 0 && r.refused > 0, `both outcomes happen: ${r.accepted} accepted, ${r.refused} refused`);
  t.comment(`${r.numRuns} documents in ${(r.totalMs / 1000).toFixed(1)} s (slowest ${Math.round(r.maxMs)} ms): ${r.accepted} accepted, ${r.refused} refused`);
  t.comment(`most frequent refusals: ${r.topProblems.map(([p, n]) => `${n}× ${p}`).join(' | ')}`);
});
