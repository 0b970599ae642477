import type { Argv } from 'yargs';
import { downLab, listLabs } from '../lab/down.js';
import { resolveLab } from './select.js';
import { printJson, ms } from './output.js';

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
    const t0 = performance.now();
    let labs: string[];
    if (argv.all) labs = await listLabs();
    else {
      const requested = argv.name ?? argv.lab;
      labs = requested ? [requested] : (await listLabs()).length === 0 ? [] : [await resolveLab()];
    }
    const results = [];
    for (const lab of labs) results.push(await downLab(lab));
    const total = performance.now() - t0;
    if (argv.json) return printJson({ removed: results, totalMs: Math.round(total) });
    if (!results.length) return void process.stdout.write('no lab to remove\n');
    for (const r of results) {
      process.stdout.write(`lab "${r.lab}" removed: ${r.processes} processes, ${r.netns} namespaces, ${r.files} files (${ms(total)})\n`);
    }
  },
};
