// `lab check NN [--json]`: the exercise's checks against its live lab, one line each, then
// "N passed, N failed". Exit 0 all passed, 1 some failed, 2 the lab is not up (or no such exercise).
import type { Argv } from 'yargs';
import { findExercise, requireWritten, liveLabOf, runChecks, renderReport } from '../course/runner.js';
import { printJson } from './output.js';

export const checkCommand = {
  command: 'check <exercise>',
  describe: "Check a course exercise against its lab (and your ~/answers/NN.yaml)",
  builder: (y: Argv) => y
    .positional('exercise', { type: 'string', describe: 'exercise number, e.g. 02' })
    .option('json', { type: 'boolean' }),
  handler: async (argv: { exercise: string; json?: boolean }) => {
    const e = findExercise(argv.exercise);
    requireWritten(e);
    const r = await runChecks(e, liveLabOf(e));
    if (argv.json) printJson(r);
    else process.stdout.write(renderReport(r));
    process.exitCode = r.failed ? 1 : 0;
  },
};
