import type { Argv } from 'yargs';
import { runDoctor } from '../lab/doctor.js';
import { table, printJson } from './output.js';

export const doctorCommand = {
  command: 'doctor',
  describe: 'Check tools and kernel features (tried in a scratch namespace) and say what a missing one means',
  builder: (y: Argv) => y.option('json', { type: 'boolean' }),
  handler: async (argv: { json?: boolean }) => {
    const r = await runDoctor();
    const required = ['ip', 'iptables', 'iptables-restore', 'ipset', 'nsenter', 'netns', 'veth', 'bridge', 'ipset', 'TPROXY', 'conntrack marks', 'policy routing', 'nat (kube-proxy)'];
    const fatal = r.checks.filter((c) => !c.ok && required.includes(c.name));
    if (argv.json) {
      printJson({ ...r, ready: fatal.length === 0 && r.tunnel !== 'none' });
    } else {
      process.stdout.write(table(['check', 'kind', 'status', 'detail / impact'], r.checks.map((c) => [
        c.name, c.kind, c.ok ? 'ok' : 'MISSING', c.ok ? c.detail : `${c.detail} -> ${c.impact}; fix: ${c.fix}`,
      ])) + '\n\n');
      const tunnel = r.tunnel === 'kernel' ? 'kernel Geneve' : r.tunnel === 'userspace' ? 'userspace Geneve over TAP devices (this kernel has no geneve module)' : 'NONE: neither kernel Geneve nor TUN/TAP';
      process.stdout.write(`Geneve for istioin/istioout: ${tunnel}\n`);
      process.stdout.write(fatal.length ? `not ready: ${fatal.map((c) => c.name).join(', ')}\n` : 'ready: the lab can run here\n');
    }
    if (fatal.length || r.tunnel === 'none') process.exitCode = 1;
  },
};
