import type { Argv } from 'yargs';
import { spawnSync } from 'node:child_process';
import { resolveLab, loadLab, resolveTarget } from './select.js';
import { UserError } from '../util/errors.js';
import { listInterfaces, pointFor, resolveInterface } from '../trace/interfaces.js';
import { tcpdumpArgs } from '../trace/capture.js';

/** `node-a`, `sleep`, `ztunnel-node-a`, `underlay`, or any of those with `:IFACE`. */
export function splitCaptureTarget(s: string): { name: string; iface?: string } {
  const i = s.lastIndexOf(':');
  return i > 0 ? { name: s.slice(0, i), iface: s.slice(i + 1) || undefined } : { name: s };
}

export const captureCommand = {
  command: 'capture <target> [args..]',
  describe: 'Run tcpdump in a pod, node, ztunnel or the underlay, on an interface by its learner name',
  builder: (y: Argv) =>
    y
      .positional('target', { type: 'string', describe: 'pod, node, ztunnel-<node>, underlay, or NAME:IFACE (node-a:istioout, node-a:veth-sleep)', demandOption: true })
      .positional('args', { type: 'string', array: true, describe: 'tcpdump arguments (after --), e.g. -w out.pcap or a filter' })
      .option('lab', { type: 'string' })
      .option('list', { type: 'boolean', describe: 'list the interfaces of the target with their learner and real names' })
      .example('$0 capture node-a:istioout', 'the outbound Geneve tunnel of node-a')
      .example('$0 capture node-a --list', 'interfaces of node-a (veth-sleep = veth564908ee ...)')
      .example('$0 capture underlay -- -w under.pcap udp port 6081', 'write a pcap'),
  handler: async (argv: { target: string; args?: string[]; lab?: string; list?: boolean; '--'?: string[] }) => {
    const { plan } = loadLab(await resolveLab(argv.lab));
    const { name, iface } = splitCaptureTarget(argv.target);
    const t = resolveTarget(plan, name);
    const point = pointFor(plan, t.netns);
    if (!point) throw new UserError(`"${name}" has no network namespace in lab "${plan.lab}"`);
    if (argv.list) {
      const rows = await listInterfaces(point);
      const w = Math.max(9, ...rows.map((r) => r.name.length)) + 2;
      const rw = Math.max(4, ...rows.map((r) => r.real.length)) + 2;
      process.stdout.write(`${'INTERFACE'.padEnd(w)}${'REAL'.padEnd(rw)}${'STATE'.padEnd(9)}WHAT\n`);
      for (const r of rows) process.stdout.write(`${r.name.padEnd(w)}${r.real.padEnd(rw)}${r.state.padEnd(9)}${r.about}\n`);
      return;
    }
    let real = 'any';
    if (iface) {
      const found = await resolveInterface(point, iface);
      if (!found) {
        const names = (await listInterfaces(point)).map((r) => r.name);
        throw new UserError(`${name} has no interface "${iface}"`, `known: ${names.join(', ')} (lab capture ${name} --list)`);
      }
      real = found;
    }
    const extra = [...(argv.args ?? []), ...(argv['--'] ?? [])];
    if (real !== (iface ?? 'any')) process.stderr.write(`lab: ${name}:${iface} is ${real} in ${t.netns}\n`);
    const r = spawnSync('ip', tcpdumpArgs(t.netns, real, ['-n', ...extra]), { stdio: 'inherit' });
    if (r.error) throw r.error;
    process.exitCode = r.status ?? (r.signal === 'SIGINT' ? 0 : 1);
  },
};
