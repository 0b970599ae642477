// Shared by the end-to-end tests: run the real CLI (compiled) as a user would, and
// snapshot what a lab must never touch.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = resolve(REPO, 'dist/cli/main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `env` is added to this process's environment (e.g. AMBIENT_LAB_STATE_DIR for a scratch state root). */
export function lab(args: string[], opts: { timeoutMs?: number; input?: string; env?: Record<string, string> } = {}): CliResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [CLI, ...args], {
    cwd: REPO, encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, input: opts.input,
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
  });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function sh(cmd: string): string {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  return (r.stdout ?? '') + (r.stderr ?? '');
}

/** Everything a lab must leave untouched in the host's root network namespace. */
export function rootSnapshot(): Record<string, string> {
  const volatile = /^net\.netfilter\.nf_conntrack_count|^net\.ipv4\.route\.gc|^net\.core\.netdev_rss_key|random|^net\.ipv6\.conf\..*stable_secret/;
  return {
    link: sh('ip -o link show | sed -E "s/ +link\\/.*//"'),
    addr: sh('ip -o addr show'),
    route: sh('ip route show table all'),
    rule: sh('ip rule show'),
    iptables: sh('iptables-save 2>/dev/null | grep -v "^#" | sed -E "s/\\[[0-9]+:[0-9]+\\]//"'),
    ipset: sh('ipset list 2>/dev/null'),
    sysctl: sh('sysctl -a 2>/dev/null | grep "^net\\."').split('\n').filter((l) => !volatile.test(l)).join('\n'),
  };
}

/** Namespaces, /etc/netns dirs and processes that carry this lab's name. */
export function leftovers(labName: string): string[] {
  const out: string[] = [];
  try { out.push(...readdirSync('/run/netns').filter((n) => n.startsWith(`al-${labName}-`)).map((n) => `netns ${n}`)); } catch { /* none */ }
  try { out.push(...readdirSync('/etc/netns').filter((n) => n.startsWith(`al-${labName}-`)).map((n) => `/etc/netns/${n}`)); } catch { /* none */ }
  // The host probe's scratch namespace of an `up` killed while probing: not named after the lab,
  // yet `lab down` must remove it (its pid is gone; a live one belongs to a running command).
  try {
    out.push(...readdirSync('/run/netns').filter((n) => {
      const m = /^al-(?:probe|doctor)-(\d+)$/.exec(n);
      return m && !existsSync(`/proc/${m[1]}`);
    }).map((n) => `netns ${n}`));
  } catch { /* none */ }
  if (existsSync(`/run/ambient-lab/${labName}`)) out.push(`state /run/ambient-lab/${labName}`);
  const procs = sh(`grep -l "AMBIENT_LAB_OWNER=${labName}:" /proc/[0-9]*/environ 2>/dev/null`).trim();
  if (procs) out.push(...procs.split('\n').map((p) => `process ${p}`));
  return out;
}

/** Packet counters of every rule in `table` of a netns, keyed by the rule as iptables-save prints it. */
export function ruleCounters(netns: string, table: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of sh(`ip netns exec ${netns} iptables-save -c -t ${table}`).split('\n')) {
    const m = /^\[(\d+):\d+\] (-A .*)$/.exec(line);
    if (m) out.set(m[2], Number(m[1]));
  }
  return out;
}

export function counterOf(counters: Map<string, number>, match: RegExp): number {
  for (const [rule, n] of counters) if (match.test(rule)) return n;
  throw new Error(`no rule matches ${match}; rules: ${[...counters.keys()].join('\n')}`);
}

/** tx/rx packet counts of an interface in a netns. */
export function linkStats(netns: string, dev: string): { rx: number; tx: number } {
  const s = sh(`cat /dev/null; ip netns exec ${netns} cat /sys/class/net/${dev}/statistics/rx_packets /sys/class/net/${dev}/statistics/tx_packets`).trim().split('\n');
  return { rx: Number(s[0]), tx: Number(s[1]) };
}

export function curlIn(labName: string, pod: string, url: string, extra: string[] = []): CliResult {
  return lab(['exec', '--lab', labName, pod, '--', 'curl', '-s', '--max-time', '10', ...extra, url]);
}

export function upJson(file: string, name: string, extra: string[] = []): { ok: boolean; summary: any; stderr: string } {
  const r = lab(['up', file, name, '--json', ...extra]);
  let summary: any;
  try { summary = JSON.parse(r.stdout); } catch { summary = undefined; }
  return { ok: r.code === 0, summary, stderr: r.stderr };
}

export const podIp = (summary: any, key: string): string => summary.pods.find((p: { name: string }) => p.name === key).ip;

/** Starts tcpdump in a netns and resolves once it is capturing; stop() flushes and waits for exit. */
export async function startCapture(netns: string, iface: string, file: string, filter: string): Promise<{ stop: () => Promise<void> }> {
  const { spawn } = await import('node:child_process');
  const p = spawn('ip', ['netns', 'exec', netns, 'tcpdump', '-Z', 'root', '--immediate-mode', '-B', '8192', '-i', iface, '-U', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    p.stderr!.on('data', (d) => { err += String(d); if (err.includes('listening on')) resolve(); });
    p.once('exit', () => reject(new Error(`tcpdump exited: ${err}`)));
  });
  // "listening on" is printed once the packet socket is bound and its filter set, as `lab trace`
  // relies on (src/trace/capture.ts); with --immediate-mode and -U every packet is written as it
  // arrives, so a SIGINT loses nothing already captured: no settling time either side.
  return {
    stop: async () => {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGINT');
      await exited;
    },
  };
}

export type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Polls `cond` (every `everyMs`) until it returns something truthy and resolves with it; rejects
 * naming `what` after `timeoutMs`. Tests wait for the condition they need instead of sleeping.
 */
export async function waitFor<T>(cond: () => T | Promise<T>, timeoutMs = 10_000, what = 'the condition', everyMs = 20): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A seeded PRNG (mulberry32): random trials that print their seed can be replayed exactly.
 * Returns floats in [0, 1).
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** A numeric setting from the environment (trial counts, durations, seeds), else `fallback`. */
export function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name}=${v}: expected a number`);
  return n;
}

/** The kinds of thing `leftovers` reports: state, netns, /etc/netns, process. */
export const leftoverKinds = (left: string[]): string[] =>
  [...new Set(left.map((l) => (l.startsWith('/etc/netns/') ? '/etc/netns' : l.split(' ')[0])))].sort();

/** `lab(...)` without blocking the event loop: for tests that drive several labs at once. */
export function labAsync(args: string[], opts: { timeoutMs?: number } = {}): Promise<CliResult> {
  return import('node:child_process').then(({ spawn }) => new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => { stdout += String(d); });
    child.stderr!.on('data', (d) => { stderr += String(d); });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr }); });
  }));
}
