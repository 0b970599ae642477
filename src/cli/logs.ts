import type { Argv } from 'yargs';
import { createReadStream, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { resolveLab, loadLab } from './select.js';
import { labStateDir, labStateFile } from '../state/store.js';
import { insideDir } from '../util/inside-dir.js';
import { UserError } from '../util/errors.js';

export const logsCommand = {
  command: 'logs [target]',
  describe: 'Show the logs of a pod\'s app, a ztunnel (`ztunnel-node-a`), a Geneve daemon (`geneve-node-a`) or the lab itself (`lab`)',
  builder: (y: Argv) =>
    y
      .positional('target', { type: 'string', default: 'lab' })
      .option('lab', { type: 'string' })
      .option('follow', { alias: 'f', type: 'boolean', describe: 'keep printing new lines' })
      .option('raw', { type: 'boolean', describe: 'JSON lines as written (pino)' }),
  handler: async (argv: { target: string; lab?: string; follow?: boolean; raw?: boolean }) => {
    const lab = await resolveLab(argv.lab);
    const { state } = loadLab(lab);
    const t = argv.target;
    let file: string | undefined;
    if (t === 'lab') file = labStateFile(lab, 'logs', 'lab.log');
    else {
      const p = state.processes.find((x) =>
        x.id === `pod/${t}` || x.pod?.endsWith(`/${t}`) && x.role !== 'ztunnel' || x.id === t.replace(/^(ztunnel|geneve)-/, '$1/'));
      // Every log the lab writes lives in its state directory; a recorded path elsewhere is not followed.
      file = p?.log && insideLabDir(lab, p.log);
    }
    if (!file || !existsSync(file)) {
      throw new UserError(`no log for "${t}"`, `targets: lab, ${state.processes.map((p) => p.id.replace(/^pod\/[^/]+\//, '').replace('/', '-')).join(', ')}`);
    }
    const src = argv.follow ? spawn('tail', ['-n', '+1', '-f', file], { stdio: ['ignore', 'pipe', 'inherit'] }).stdout! : createReadStream(file);
    if (argv.raw) return void src.pipe(process.stdout);
    const { default: pretty } = await import('pino-pretty');
    src.pipe(pretty({ colorize: process.stdout.isTTY, translateTime: 'HH:MM:ss.l', ignore: 'hostname' })).pipe(process.stdout);
  },
};

function insideLabDir(lab: string, file: string): string | undefined {
  try { return insideDir(labStateDir(lab), file); } catch { return undefined; }
}
