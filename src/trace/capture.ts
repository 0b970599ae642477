// One tcpdump per network namespace on `-i any`: the Linux cooked v2 header records the
// interface index and the direction of every packet, which is cheaper than one process per
// interface and catches interfaces that appear mid-trace. Interface indexes are resolved to
// names from `ip -j link` taken when the capture starts.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../host/run.js';

export interface NetnsCapture {
  netns: string;
  file: string;
  /** ifindex -> interface name inside this netns. */
  interfaces: Map<number, string>;
  /** tcpdump's own account, once stopped: packets the kernel dropped before tcpdump read them. */
  droppedByKernel?: number;
  stderr: string;
}

export interface RunningCaptures {
  captures: NetnsCapture[];
  /** Stops every tcpdump (SIGINT, so each flushes its file) and waits for them to exit. */
  stop(): Promise<void>;
}

export async function interfaceIndexes(netns: string): Promise<Map<number, string>> {
  const r = await run('ip', ['-n', netns, '-j', 'link', 'show'], { reject: false });
  const out = new Map<number, string>();
  if (r.exitCode !== 0) return out;
  for (const l of JSON.parse(r.stdout || '[]') as { ifindex: number; ifname: string }[]) out.set(l.ifindex, l.ifname);
  return out;
}

export function tcpdumpArgs(netns: string, iface: string, extra: string[]): string[] {
  return ['netns', 'exec', netns, 'tcpdump', '-i', iface, ...extra];
}

function waitListening(p: ChildProcess, netns: string, timeoutMs: number, sink: { stderr: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = '';
    p.stderr!.on('data', (d: Buffer) => { sink.stderr += d.toString(); });
    const timer = setTimeout(() => reject(new Error(`tcpdump in ${netns} did not start within ${timeoutMs} ms: ${err.trim()}`)), timeoutMs);
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      // tcpdump says so once its packet socket is bound and the filter set.
      if (/listening on/.test(err)) { clearTimeout(timer); resolve(); }
    });
    p.once('exit', (code) => { clearTimeout(timer); reject(new Error(`tcpdump in ${netns} exited (${code}): ${err.trim()}`)); });
  });
}

/** Starts capturing in every namespace; resolves once all of them are capturing. */
export async function startCaptures(netnsList: string[], dir: string, opts: { filter?: string[]; timeoutMs?: number } = {}): Promise<RunningCaptures> {
  const procs: ChildProcess[] = [];
  const captures: NetnsCapture[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      const t = setTimeout(() => { p.kill('SIGKILL'); }, 3000);
      p.once('exit', () => { clearTimeout(t); resolve(); });
      p.kill('SIGINT');
    })));
  };
  try {
    await Promise.all(netnsList.map(async (netns) => {
      const file = join(dir, `${netns}.pcap`);
      // --immediate-mode and -U: each packet is handed over and written as it arrives; with the
      // default TPACKET_V3 buffering a SIGINT within the block timeout loses the whole trace.
      const p = spawn('ip', tcpdumpArgs(netns, 'any', ['-n', '-U', '--immediate-mode', '-B', '8192', '-s', '262144', '--time-stamp-precision=nano', '-w', file, ...(opts.filter ?? [])]), { stdio: ['ignore', 'ignore', 'pipe'] });
      procs.push(p);
      const c: NetnsCapture = { netns, file, interfaces: new Map(), stderr: '' };
      p.once('exit', () => {
        const m = /(\d+) packets? dropped by kernel/.exec(c.stderr);
        if (m) c.droppedByKernel = Number(m[1]);
      });
      await waitListening(p, netns, opts.timeoutMs ?? 10_000, c);
      c.interfaces = await interfaceIndexes(netns);
      captures.push(c);
    }));
  } catch (e) {
    await stop();
    throw e;
  }
  return { captures, stop };
}

export const readCaptureBytes = (c: NetnsCapture): Uint8Array => new Uint8Array(readFileSync(c.file));
