import type { Argv } from 'yargs';
import { downLab, labExists, listLabs } from '../lab/down.js';
import { checkedLabArg, resolveLab } from './select.js';
import { printJson, ms } from './output.js';
import { UserError } from '../util/errors.js';
import { sweepStaleScratch } from '../host/probe.js';

export const downCommand = {
  command: 'down [name]',
  describe: 'Remove a lab: its processes, namespaces, links, rules and files, and nothing else',
  builder: (y: Argv) =>
    y
      .positional('name', { type: 'string', describe: 'lab name (default: the only lab that is up)' })
      .option('lab', { type: 'string', describe: 'lab name (same as NAME)' })
      .option('all', { type: 'boolean', describe: 'remove every lab, including leftovers found only by their owner marks' })
      .option('json', { type: 'boolean' }),
  handler: async (argv: { name?: string; lab?: string; all?: boolean; json?: boolean }) => {
    // Both spellings are checked before anything else: the name becomes a path that is deleted.
    const name = checkedLabArg(argv.name, 'NAME');
    const opt = checkedLabArg(argv.lab, '--lab');
    if (name !== undefined && opt !== undefined && name !== opt) {
      throw new UserError(`two different lab names: NAME "${name}" and --lab "${opt}"`, 'give one of them');
    }
    const t0 = performance.now();
    let labs: string[];
    if (argv.all) labs = await listLabs();
    else {
      const requested = name ?? opt;
      if (requested !== undefined && !(await labExists(requested))) {
        // A `lab up` killed while probing the host leaves only its scratch namespace, named after
        // its pid rather than the lab: removing that is what `lab down` is for, so it is no typo.
        const swept = await sweepStaleScratch();
        if (swept.length) {
          const r = { lab: requested, processes: 0, netns: swept.length, files: 0 };
          if (argv.json) return printJson({ removed: [r], totalMs: Math.round(performance.now() - t0) });
          return void process.stdout.write(`lab "${requested}" removed: ${swept.length} scratch namespace(s) of an interrupted lab up (${swept.join(', ')})\n`);
        }
        const known = await listLabs();
        throw new UserError(`no lab "${requested}": no state directory and no network namespaces of it`,
          known.length ? `labs: ${known.join(', ')}` : 'no lab is up');
      }
      labs = requested !== undefined ? [requested] : (await listLabs()).length === 0 ? [] : [await resolveLab()];
    }
    const results = [];
    for (const lab of labs) results.push(await downLab(lab));
    const total = performance.now() - t0;
    if (argv.json) return printJson({ removed: results, totalMs: Math.round(total) });
    if (!results.length) return void process.stdout.write('no lab to remove\n');
    for (const r of results) {
      process.stdout.write(`lab "${r.lab}" removed: ${r.processes} processes, ${r.netns} namespaces, ${r.files} files (${ms(total)})\n`);
      if (r.keptStateDir) process.stderr.write(`lab: left ${r.keptStateDir} in place: it holds no state.json, so \`lab up\` did not make it\n`);
    }
  },
};
