import type { Argv } from 'yargs';
import { spawnSync } from 'node:child_process';
import { checkedLabArg, resolveLab, loadLab, resolveTarget } from './select.js';
import { UserError } from '../util/errors.js';

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
  handler: async (argv: { target: string; cmd?: string[]; lab?: string; '--'?: string[] }) => {
    checkedLabArg(argv.lab);
    const cmd = [...(argv.cmd ?? []), ...(argv['--'] ?? [])].map(String);
    if (!cmd.length) throw new UserError('no command given', 'usage: lab exec TARGET -- COMMAND [ARGS...]');
    const { plan } = loadLab(await resolveLab(argv.lab));
    const t = resolveTarget(plan, argv.target);
    const r = spawnSync('ip', ['netns', 'exec', t.netns, ...cmd], { stdio: 'inherit' });
    if (r.error) throw r.error;
    process.exitCode = r.status ?? (r.signal ? 128 : 1);
  },
};
