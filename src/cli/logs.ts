import type { Argv } from 'yargs';
import { createReadStream, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { resolveLab, loadLab } from './select.js';
import { labStateDir, labStateFile } from '../state/store.js';
import { insideDir } from '../util/inside-dir.js';
import { UserError } from '../util/errors.js';

export const logsCommand = {
  command: 'logs [target]',
  describe: 'Show the logs of a pod\'s app, a ztunnel (`ztunnel-node-a`), the userspace Geneve daemon (`geneve`) or the lab itself (`lab`)',
  builder: (y: Argv) =>
    y
      .positional('target', { type: 'string', default: 'lab' })
      .option('lab', { type: 'string' })
      .option('follow', { alias: 'f', type: 'boolean', describe: 'keep printing new lines' })
      .option('raw', { type: 'boolean', describe: 'JSON lines as written (pino)' })
      .option('container', { alias: 'c', type: 'string', describe: 'in a sidecar pod: istio-proxy for the sidecar proxy (as kubectl logs -c), else the app' })
      .example('$0 logs sleep-sc -c istio-proxy', 'the sidecar proxy of pod sleep-sc (also: lab logs sidecar-sleep-sc)'),
  handler: async (argv: { target: string; lab?: string; follow?: boolean; raw?: boolean; container?: string }) => {
    const lab = await resolveLab(argv.lab);
    const { state } = loadLab(lab);
    const proxy = argv.container === 'istio-proxy' || /^sidecar-/.test(argv.target);
    if (argv.container !== undefined && !['istio-proxy', 'app'].includes(argv.container)) {
      throw new UserError(`no container "${argv.container}"`, 'a pod has its app and, with a sidecar, istio-proxy');
    }
    const t = argv.target.replace(/^sidecar-/, '');
    let file: string | undefined;
    if (t === 'lab') file = labStateFile(lab, 'logs', 'lab.log');
    else {
      const inPod = (x: (typeof state.processes)[number]) => x.id === `pod/${t}` || x.pod === t || x.pod?.endsWith(`/${t}`);
      const p = proxy
        ? state.processes.find((x) => x.role === 'sidecar' && inPod(x))
        : state.processes.find((x) => inPod(x) && !['ztunnel', 'sidecar'].includes(x.role)) ?? state.processes.find((x) => x.id === t.replace(/^(ztunnel|geneve)-/, '$1/'));
      // Every log the lab writes lives in its state directory; a recorded path elsewhere is not followed.
      file = p?.log && insideLabDir(lab, p.log);
    }
    if (!file || !existsSync(file)) {
      const name = (p: (typeof state.processes)[number]) => (p.role === 'sidecar' ? `sidecar-${p.pod?.split('/').pop()}` : p.pod && !['ztunnel'].includes(p.role) ? p.pod.split('/').pop() : p.id.replace('/', '-'));
      throw new UserError(`no log for "${argv.target}"${proxy ? ' (sidecar proxy)' : ''}`, `targets: lab, ${state.processes.map(name).join(', ')}`);
    }
    const src = argv.follow ? spawn('tail', ['-n', '+1', '-f', file], { stdio: ['ignore', 'pipe', 'inherit'] }).stdout! : createReadStream(file);
    if (argv.raw) return void src.pipe(process.stdout);
    // pino-pretty's default export writes to fd 1 itself and also passes its input through, so
    // piping it on glued raw JSON into the pretty text (`lab logs ... | grep`); its line
    // formatter, fed one line at a time, prints each record once (non-JSON lines as they are).
    const { prettyFactory } = await import('pino-pretty');
    const prettify = prettyFactory({ colorize: process.stdout.isTTY, translateTime: 'HH:MM:ss.l', ignore: 'hostname' });
    process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); throw e; });
    for await (const line of createInterface({ input: src, crlfDelay: Infinity })) {
      if (!process.stdout.write(prettify(line))) await once(process.stdout, 'drain');
    }
  },
};

function insideLabDir(lab: string, file: string): string | undefined {
  try { return insideDir(labStateDir(lab), file); } catch { return undefined; }
}
