import type { Argv } from 'yargs';
import { resolveLab, loadLab } from './select.js';
import { run } from '../host/run.js';
import { printJson, table } from './output.js';
import { UserError } from '../util/errors.js';
import { ADMIN_PORT } from '../mesh/ports.js';

/** Reads a ztunnel's admin endpoint (127.0.0.1:ADMIN_PORT inside its pod, like `istioctl zc`). */
async function configDump(netns: string): Promise<any> {
  const r = await run('curl', ['-s', '--max-time', '5', `http://127.0.0.1:${ADMIN_PORT}/config_dump`], { netns, reject: false });
  if (r.exitCode !== 0) throw new UserError(`the ztunnel in ${netns} does not answer on 127.0.0.1:${ADMIN_PORT}`, 'check `lab status` and `lab logs ztunnel-NODE`');
  return JSON.parse(r.stdout);
}

export const ztunnelCommand = {
  command: 'ztunnel <what> <node>',
  describe: 'Inspect a node\'s ztunnel: `config` shows its workloads (seed talk format), services and policies',
  builder: (y: Argv) =>
    y
      .positional('what', { choices: ['config'], describe: 'what to show' })
      .positional('node', { type: 'string', describe: 'node name (its ztunnel pod is istio-system/ztunnel-NODE)' })
      .option('lab', { type: 'string' })
      .option('json', { type: 'boolean', describe: 'the full /config_dump' })
      .example('$0 ztunnel config node-a --json', 'workloads as ztunnel sees them'),
  handler: async (argv: { node: string; lab?: string; json?: boolean }) => {
    const { plan } = loadLab(await resolveLab(argv.lab));
    const node = plan.nodes.find((n) => n.name === argv.node);
    if (!node) throw new UserError(`no node "${argv.node}"`, `nodes: ${plan.nodes.map((n) => n.name).join(', ')}`);
    const zt = plan.pods.find((p) => p.key === node.ztunnel)!;
    const dump = await configDump(zt.netns);
    if (argv.json) return printJson(dump);
    const ws = Object.values(dump.workloads ?? {}) as any[];
    const v = dump.config;
    process.stdout.write(`ztunnel ${zt.key} on ${node.name}${v ? ` (config version ${v.version}, ${v.hash}, loaded ${v.loadedAt})` : ''}\n\n`);
    process.stdout.write(table(['workload ip', 'name', 'namespace', 'service account', 'protocol', 'node', 'waypoint', 'policies'],
      ws.map((w) => [w.workloadIp, w.name, w.namespace, w.serviceAccount, w.protocol, w.node, (w.waypointAddresses ?? []).join(','), (w.authorizationPolicies ?? []).join(',')])) + '\n\n');
    const svcs = (dump.services ?? []) as any[];
    if (svcs.length) {
      process.stdout.write(table(['service', 'vips', 'ports', 'endpoints'], svcs.map((s) => [s.hostname ?? s.name, (s.vips ?? []).join(','), JSON.stringify(s.ports), (s.endpoints ?? []).join(',')])) + '\n');
    }
  },
};
