// Property-based input test: thousands of mutated topology files (`lab up FILE --dry-run`), from the repository's own files.
// Property: the CLI's own load, validation and planning either succeed or throw UserError (a
// clear message, exit 2), never another exception, a stack trace or a hang (each document is
// bounded; see fuzz-harness.ts). AMBIENT_LAB_FUZZ_SEED / AMBIENT_LAB_FUZZ_RUNS pick the seed and count.
import t from 'tap';
import { fuzzTest, FUZZ_RUNS, FUZZ_SEED } from './fuzz-harness.js';

t.test(`${FUZZ_RUNS} mutated topology documents (seed ${FUZZ_SEED}): accepted or refused with a UserError, each within 10 s`, (t) => fuzzTest(t, 'topology'));
