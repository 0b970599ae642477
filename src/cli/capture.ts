import type { Argv } from 'yargs';
import { spawnSync } from 'node:child_process';
import { resolveLab, loadLab, resolveTarget } from './select.js';
import { UserError } from '../util/errors.js';
import { listInterfaces, pointFor, resolveInterface } from '../trace/interfaces.js';
import { tcpdumpArgs } from '../trace/capture.js';
import { lstatSync, statSync } from 'node:fs';
import { dirname, resolve, relative, isAbsolute } from 'node:path';
import { stateRoot } from '../state/store.js';

// tcpdump's short options that take a value (getopt: the value is the rest of the cluster or the next argument).
const TCPDUMP_VALUE_OPTS = new Set([...'bBcCDEFGiIjJmMqQrsTVwWyZz']);

const isInside = (root: string, p: string): boolean => {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/**
 * Finds tcpdump's `-w FILE` (also `-nw FILE`, `-wFILE`) and rewrites FILE to an absolute path
 * the user can see: resolved against their working directory, in a directory that exists, not a
 * symlink (tcpdump runs as root and would follow it), and not in the lab's own files (the state
 * directory, /etc/netns, and /etc/resolv.conf and /etc/hosts, which `ip netns exec` replaces with
 * the pod's copies). `-w -` (stdout) is left alone. Throws UserError before tcpdump starts.
 */
export function checkCaptureArgs(args: string[], cwd = process.cwd(), labRoots = [stateRoot(), '/etc/netns']): string[] {
  const out = [...args];
  const check = (file: string): string => {
    if (file === '-') return file;
    if (!file) throw new UserError('-w needs a file name', 'e.g. lab capture node-a -- -w /tmp/node-a.pcap');
    const abs = resolve(cwd, file);
    const dir = dirname(abs);
    let dirOk = false;
    try { dirOk = statSync(dir).isDirectory(); } catch { /* missing */ }
    if (!dirOk) throw new UserError(`-w ${file}: the directory ${dir} does not exist`, 'write the capture into an existing directory, e.g. -w /tmp/capture.pcap');
    let st;
    try { st = lstatSync(abs); } catch { st = undefined; }
    if (st && !st.isFile()) {
      throw new UserError(`-w ${file}: ${abs} exists and is not a regular file (${st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a directory' : 'special'})`, 'give a new file name or an existing .pcap file');
    }
    if (labRoots.some((r) => isInside(resolve(r), abs)) || abs === '/etc/resolv.conf' || abs === '/etc/hosts') {
      throw new UserError(`-w ${file}: ${abs} is one of the lab's own files`, 'write the capture somewhere else, e.g. -w /tmp/capture.pcap');
    }
    return abs;
  };
  for (let i = 0; i < out.length; i++) {
    const a = out[i];
    if (a === '--') break;
    if (!a.startsWith('-') || a.startsWith('--') || a === '-') continue;
    for (let j = 1; j < a.length; j++) {
      if (!TCPDUMP_VALUE_OPTS.has(a[j])) continue;
      const inline = a.slice(j + 1);
      if (a[j] === 'w') {
        if (inline) out[i] = a.slice(0, j + 1) + check(inline);
        else if (i + 1 < out.length) out[i + 1] = check(out[i + 1]);
        else check('');
      }
      if (!inline) i++;
      break;
    }
  }
  return out;
}

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
    const lab = await resolveLab(argv.lab);
    // yargs hands numeric words after `--` over as numbers (`-c 2`): tcpdump wants them as text.
    const extra = checkCaptureArgs([...(argv.args ?? []), ...(argv['--'] ?? [])].map(String));
    const { plan } = loadLab(lab);
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
    if (real !== (iface ?? 'any')) process.stderr.write(`lab: ${name}:${iface} is ${real} in ${t.netns}\n`);
    const r = spawnSync('ip', tcpdumpArgs(t.netns, real, ['-n', ...extra]), { stdio: 'inherit' });
    if (r.error) throw r.error;
    process.exitCode = r.status ?? (r.signal === 'SIGINT' ? 0 : 1);
  },
};
