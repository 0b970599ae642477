// What a check can look at in a live lab: commands in its namespaces (the same `ip netns exec`
// that `lab exec` uses), rule counters, the lab's own CLI for the views it already renders
// (trace, ztunnel config), and the state file the supervisor keeps (restarts).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { distDir } from '../lab/paths.js';
import { readState, labStateFile, type LabState } from '../state/store.js';
import type { LabPlan, PlannedPod, PlannedNode } from '../topology/address-plan.js';

export interface Ran { code: number; out: string; err: string }

export function run(argv: string[], timeoutMs = 15_000): Ran {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status ?? -1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

export class LiveLab {
  constructor(readonly name: string, readonly plan: LabPlan) {}

  static load(name: string): LiveLab | undefined {
    const st = readState(name);
    if (!st || st.phase !== 'up') return undefined;
    try {
      return new LiveLab(name, JSON.parse(readFileSync(labStateFile(name, 'plan.json'), 'utf8')) as LabPlan);
    } catch {
      return undefined;
    }
  }

  state(): LabState {
    const s = readState(this.name);
    if (!s) throw new Error(`lab ${this.name} lost its state`);
    return s;
  }

  pod(name: string): PlannedPod {
    const p = this.plan.pods.find((x) => x.name === name);
    if (!p) throw new Error(`the exercise's lab has no pod ${name}`);
    return p;
  }

  node(name: string): PlannedNode {
    const n = this.plan.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`the exercise's lab has no node ${name}`);
    return n;
  }

  ztunnelPod(node: string): PlannedPod { return this.pod(`ztunnel-${node}`); }

  /** A command inside a namespace; `ip netns exec` also binds the pod's resolv.conf, as `lab exec` does. */
  inNs(netns: string, argv: string[], timeoutMs = 15_000): Ran {
    return run(['ip', 'netns', 'exec', netns, ...argv], timeoutMs);
  }

  /** curl from a pod: exit code, HTTP status and body. */
  curl(pod: string, url: string, maxTimeS = 5, curlArgs: string[] = []): { exit: number; status: string; body: string } {
    const r = this.inNs(this.pod(pod).netns, ['curl', '-s', '--max-time', String(maxTimeS), ...curlArgs, '-w', '\n%{http_code}', url], (maxTimeS + 5) * 1000);
    const i = r.out.lastIndexOf('\n');
    return { exit: r.code, status: r.out.slice(i + 1).trim(), body: r.out.slice(0, Math.max(0, i)) };
  }

  /** Several requests from a pod in one namespace entry (one `ip netns exec`, not one per request):
   * the HTTP status and body of each, for probes that count (a 90/10 split needs ~100 requests). */
  curlMany(pod: string, url: string, n: number, curlArgs: string[] = []): Array<{ status: string; body: string }> {
    const q = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;
    const one = ['curl', '-s', '--max-time', '5', ...curlArgs.map(q), '-w', '"\\n%{http_code}\\n--\\n"', q(url)].join(' ');
    const r = this.inNs(this.pod(pod).netns, ['bash', '-c', `for i in $(seq ${n}); do ${one}; done`], (n * 5 + 10) * 1000);
    return r.out.split('\n--\n').filter((x) => x.trim()).map((x) => {
      const i = x.lastIndexOf('\n');
      return { status: x.slice(i + 1).trim(), body: x.slice(0, Math.max(0, i)) };
    });
  }

  /** Packet counters of every rule of an iptables table, keyed by the rule as iptables-save prints it. */
  counters(netns: string, table: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const line of this.inNs(netns, ['iptables-save', '-c', '-t', table]).out.split('\n')) {
      const m = /^\[(\d+):\d+\] (-A .*)$/.exec(line);
      if (m) out.set(m[2], Number(m[1]));
    }
    return out;
  }

  /** The lab's own CLI (this build), for views it already computes. */
  cli(args: string[], timeoutMs = 60_000): Ran {
    return run([process.execPath, resolve(distDir(), 'cli/main.js'), ...args, '--lab', this.name], timeoutMs);
  }

  logText(file: string): string {
    try { return readFileSync(file, 'utf8'); } catch { return ''; }
  }
}

/** Sum of a counter's packets over the rules that match. */
export function counterSum(c: Map<string, number>, match: RegExp): number {
  let n = 0;
  for (const [rule, v] of c) if (match.test(rule)) n += v;
  return n;
}
