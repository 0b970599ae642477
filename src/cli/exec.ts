import type { Argv } from 'yargs';
import { spawnSync } from 'node:child_process';
import { checkedLabArg, resolveLab, loadLab, resolveTarget } from './select.js';
import { listStateLabs } from '../state/store.js';
import { UserError } from '../util/errors.js';

export interface ExecArgs {
  target: string;
  cmd?: string[];
  lab?: string;
  '--'?: string[];
}

export const execCommand = {
  command: 'exec <target> [cmd..]',
  describe: 'Run a command inside a pod (or node) network namespace, with its resolv.conf',
  builder: (y: Argv) =>
    y
      .positional('target', { type: 'string', describe: 'pod (`sleep`, `default/sleep`), node (`node-a`), `ztunnel-node-a` or `underlay`', demandOption: true })
      .positional('cmd', { type: 'string', array: true, describe: 'command and arguments (after --)' })
      .option('lab', { type: 'string' })
      .example('$0 exec sleep -- curl -s http://httpbin:8000/ip', 'request from the sleep pod')
      .example('$0 exec node-a -- iptables-save -t mangle', 'rules on a node'),
  handler: async (argv: ExecArgs) => {
    const lab = checkedLabArg(argv.lab);
    const cmd = [...(argv.cmd ?? []), ...(argv['--'] ?? [])].map(String);
    if (!cmd.length) throw new UserError('no command given', 'usage: lab exec TARGET -- COMMAND [ARGS...]');
    const { plan } = loadLab(lab ?? await execLab());
    const t = resolveTarget(plan, argv.target);
    const r = spawnSync('ip', ['netns', 'exec', t.netns, ...cmd], { stdio: 'inherit' });
    if (r.error) throw r.error;
    process.exitCode = r.status ?? (r.signal ? 128 : 1);
  },
};

/**
 * The lab exec acts on without --lab. One lab with a state directory is the answer without
 * asking `ip` about every namespace on the host (resolveLab probes each one's owner mark: one
 * process per namespace, most of exec's time on a host with other labs); a leftover lab
 * without state could not be exec'd into anyway. Anything else gets resolveLab's answer and
 * its messages.
 */
async function execLab(): Promise<string> {
  const labs = listStateLabs();
  return labs.length === 1 ? labs[0] : resolveLab();
}

/**
 * `exec TARGET [--lab NAME] -- CMD...` read without yargs, whose import alone costs more than
 * the rest of exec. Only this plain shape is taken (one target, at most --lab, then `--`); any
 * other shape (--help, other options, no `--`) returns undefined and goes through yargs,
 * which gives the usual help and errors.
 */
export function quickExecArgs(args: string[]): ExecArgs | undefined {
  const dash = args.indexOf('--');
  if (dash < 0) return undefined;
  const before = args.slice(0, dash);
  let target: string | undefined;
  let lab: string | undefined;
  for (let i = 0; i < before.length; i++) {
    const a = before[i];
    if (lab === undefined && a.startsWith('--lab=')) lab = a.slice('--lab='.length);
    else if (lab === undefined && a === '--lab' && i + 1 < before.length && !before[i + 1].startsWith('-')) lab = before[++i];
    else if (target === undefined && a !== '' && !a.startsWith('-')) target = a;
    else return undefined;
  }
  if (target === undefined) return undefined;
  return { target, ...(lab === undefined ? {} : { lab }), '--': args.slice(dash + 1) };
}
