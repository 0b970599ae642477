// `lab break list | SCENARIO | --random [--seed N] | --reset` and `lab fix`: faults injected into a
// live lab for the break-fix exercise (src/lab/break.ts). The output names the symptom, never the
// cause; a random pick does not even name the scenario.
import type { Argv } from 'yargs';
import { SCENARIOS, injectFault, resetFaults } from '../lab/break.js';
import { resolveLab } from './select.js';
import { printJson, table } from './output.js';
import { UserError } from '../util/errors.js';

async function reset(labArg: string | undefined, json: boolean): Promise<void> {
  const lab = await resolveLab(labArg);
  const r = await resetFaults(lab);
  if (json) return printJson(r);
  process.stdout.write(r.undone.length
    ? `${r.undone.map((u) => `undone: ${u.scenario} (${u.where})`).join('\n')}\nlab ${lab} is as lab up left it; lab check 09 tells\n`
    : `no fault injected in lab ${lab}: nothing to undo\n`);
}

export const breakCommand = {
  command: 'break [scenario]',
  describe: 'Inject one fault into a live lab (break-fix exercise 09): `break list`, `break SCENARIO`, `break --random`, `break --reset`',
  builder: (y: Argv) => y
    .positional('scenario', { type: 'string', describe: '`list`, or a scenario of `lab break list`' })
    .option('random', { type: 'boolean', describe: 'pick a scenario at random (its seed is printed, not its name)' })
    .option('seed', { type: 'number', describe: 'with --random: the seed (the same seed breaks the same thing)' })
    .option('reset', { type: 'boolean', describe: 'undo every injected fault (also `lab fix`)' })
    .option('lab', { type: 'string', describe: 'lab name (default: the only lab that is up)' })
    .option('json', { type: 'boolean', describe: 'print the result as JSON' })
    .example('$0 break --random', 'break something; find it with lab trace, lab capture and the counters')
    .example('$0 break --reset', 'put everything back'),
  handler: async (argv: { scenario?: string; random?: boolean; seed?: number; reset?: boolean; lab?: string; json?: boolean }) => {
    const modes = [argv.scenario !== undefined, !!argv.random, !!argv.reset].filter(Boolean).length;
    if (modes !== 1) throw new UserError('lab break takes one of: list, a SCENARIO, --random, --reset', 'lab break list shows the scenarios');
    if (argv.seed !== undefined && !argv.random) throw new UserError('--seed goes with --random', 'lab break --random --seed 7');
    if (argv.seed !== undefined && (!Number.isInteger(argv.seed) || argv.seed < 0)) throw new UserError(`--seed ${argv.seed}: expected a whole number >= 0`, 'lab break --random --seed 7');
    if (argv.scenario === 'list') {
      // The symptom as a learner would phrase it, with the exercise's pod names.
      const rows = SCENARIOS.map((s) => ({ scenario: s.id, symptom: s.symptom({ client: { name: 'the client' } as never, server: { name: 'the server' } as never }) }));
      if (argv.json) return printJson(rows);
      process.stdout.write(table(['scenario', 'what you will see'], rows.map((r) => [r.scenario, r.symptom])) + '\n');
      return;
    }
    if (argv.reset) return reset(argv.lab, !!argv.json);
    const lab = await resolveLab(argv.lab);
    const seed = argv.random ? argv.seed ?? Math.floor(Math.random() * 1000) : undefined;
    const r = await injectFault(lab, argv.random ? { seed } : { id: argv.scenario });
    if (argv.json) return printJson(r);
    process.stdout.write(`${r.scenario ? `fault injected: ${r.scenario}` : `a fault was injected (random, seed ${r.seed})`}\n`
      + `symptom: ${r.symptom}\nfind it: lab trace, lab capture, the counters (lab exec NODE -- iptables -t mangle -L -v -n); undo: lab break --reset\n`);
  },
};

export const fixCommand = {
  command: 'fix',
  describe: 'Undo every fault `lab break` injected (same as `lab break --reset`)',
  builder: (y: Argv) => y
    .option('lab', { type: 'string', describe: 'lab name (default: the only lab that is up)' })
    .option('json', { type: 'boolean', describe: 'print the result as JSON' }),
  handler: async (argv: { lab?: string; json?: boolean }) => reset(argv.lab, !!argv.json),
};
