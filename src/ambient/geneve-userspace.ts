// Userspace Geneve, for kernels without the geneve module: the lab creates persistent TAP
// devices named like Istio's tunnels (istioin/istioout, pistioin/pistioout) and this daemon,
// one per netns, carries their frames to and from the remote end exactly as kernel Geneve
// would (RFC 8926, UDP 6081, VNI 1000 in / 1001 out), so tcpdump and tshark see Geneve.
//
//   node dist/ambient/geneve-userspace.js --tap istioin:1000 --tap istioout:1001 \
//        --remote 10.244.0.2 [--local 10.244.0.1] [--port 6081] [--ready-file F]
//
// Data path: one worker thread per TAP (read frame -> sendto) and one for the UDP socket
// (recvfrom -> write to the TAP of the VNI). The main thread only starts, logs and stops them.
import { Worker } from 'node:worker_threads';
import { writeFileSync, renameSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { openTap, udpSocketFd, closeFd, SysError } from '../host/sys.js';
import { GENEVE_PORT, parseTapSpec } from './geneve-wire.js';
import { ENCAP_COUNTERS, DECAP_COUNTERS, newCounterBuffer, readCounters, type Counters } from './geneve-stats.js';
import type { EncapWorkerData } from './geneve-encap-worker.js';
import type { DecapWorkerData } from './geneve-decap-worker.js';

export interface GeneveTap {
  name: string;
  vni: number;
}

export interface GeneveDaemonOptions {
  taps: GeneveTap[];
  remote: string;
  local?: string;
  port?: number;
  logger?: Logger;
}

export interface GeneveStats {
  taps: Record<string, Counters<typeof ENCAP_COUNTERS> & { vni: number }>;
  received: Counters<typeof DECAP_COUNTERS>;
}

export interface GeneveDaemon {
  stats(): GeneveStats;
  /** Resolves after every worker has left its loop and the fds are closed. */
  stop(): Promise<void>;
  /** Settles if a worker dies unexpectedly (the daemon is then useless). */
  failed: Promise<Error>;
}

// Workers run the sibling file with this module's extension: .js from dist, .ts under tap.
const workerUrl = (base: string): URL =>
  new URL(`./${base}${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

const UDP_BUF_BYTES = 4 << 20;

export async function startGeneveDaemon(opts: GeneveDaemonOptions): Promise<GeneveDaemon> {
  const log = opts.logger ?? pino({ enabled: false });
  const port = opts.port ?? GENEVE_PORT;
  const local = opts.local ?? '0.0.0.0';
  if (opts.taps.length === 0) throw new Error('no --tap given');
  for (const key of ['name', 'vni'] as const) {
    const seen = new Set(opts.taps.map((t) => t[key]));
    if (seen.size !== opts.taps.length) throw new Error(`each TAP needs its own ${key}`);
  }

  const fds: number[] = [];
  const closeAll = () => fds.splice(0).forEach((fd) => closeFd(fd));
  let udpFd: number;
  const taps: Array<GeneveTap & { fd: number }> = [];
  try {
    udpFd = udpSocketFd({ ip: local, port, bufBytes: UDP_BUF_BYTES });
    fds.push(udpFd);
    for (const t of opts.taps) {
      const fd = openTap(t.name, { nonblock: true });
      fds.push(fd);
      taps.push({ ...t, fd });
      log.info({ tap: t.name, vni: t.vni, fd }, 'attached to TAP');
    }
  } catch (e) {
    closeAll();
    throw e;
  }

  const control = new SharedArrayBuffer(4);
  const stopFlag = new Int32Array(control);
  const workers: Worker[] = [];
  let stopping = false;
  let fail!: (e: Error) => void;
  const failed = new Promise<Error>((res) => (fail = res));

  const watch = (w: Worker, role: string) => {
    w.on('message', (m: { type: string; op: string; errno: number }) => {
      if (m.type === 'error') log.warn({ role, op: m.op, code: new SysError(m.op, m.errno).code }, `${role}: ${m.op} failed`);
    });
    w.on('error', (e) => {
      log.error({ role, err: e }, `${role} worker crashed`);
      fail(e);
    });
    w.on('exit', (code) => {
      if (!stopping) fail(new Error(`${role} worker exited (${code})`));
    });
    workers.push(w);
  };

  const encapCounters = taps.map(() => newCounterBuffer(ENCAP_COUNTERS));
  taps.forEach((t, i) => {
    const workerData: EncapWorkerData = {
      name: t.name, vni: t.vni, tapFd: t.fd, udpFd, remote: opts.remote, port, control, counters: encapCounters[i],
    };
    watch(new Worker(workerUrl('geneve-encap-worker'), { workerData, name: `encap-${t.name}` }), `encap ${t.name}`);
  });
  const decapCounters = newCounterBuffer(DECAP_COUNTERS);
  const decapData: DecapWorkerData = {
    udpFd, remote: opts.remote, taps: taps.map(({ name, vni, fd }) => ({ name, vni, fd })), control, counters: decapCounters,
  };
  watch(new Worker(workerUrl('geneve-decap-worker'), { workerData: decapData, name: 'decap' }), 'decap');

  await Promise.race([
    Promise.all(workers.map((w) => new Promise((res) => w.once('online', res)))),
    failed.then((e) => {
      throw e;
    }),
  ]);

  const stats = (): GeneveStats => ({
    taps: Object.fromEntries(taps.map((t, i) => [t.name, { vni: t.vni, ...readCounters(ENCAP_COUNTERS, encapCounters[i]) }])),
    received: readCounters(DECAP_COUNTERS, decapCounters),
  });

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    Atomics.store(stopFlag, 0, 1);
    // Workers notice the flag within one poll interval (100 ms); terminate() is the fallback.
    await Promise.all(
      workers.map((w) =>
        Promise.race([
          new Promise((res) => w.once('exit', res)),
          new Promise((res) => setTimeout(res, 1000).unref()).then(() => w.terminate()),
        ]),
      ),
    );
    closeAll();
  };

  return { stats, stop, failed };
}

function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      tap: { type: 'string', multiple: true, default: [] },
      remote: { type: 'string' },
      local: { type: 'string', default: '0.0.0.0' },
      port: { type: 'string', default: String(GENEVE_PORT) },
      'ready-file': { type: 'string' },
      'stats-interval': { type: 'string', default: '60' },
    },
    strict: true,
  });
  if (!values.remote) throw new Error('--remote <ip> is required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad --port ${values.port}`);
  return {
    taps: (values.tap ?? []).map(parseTapSpec),
    remote: values.remote,
    local: values.local!,
    port,
    readyFile: values['ready-file'],
    statsIntervalS: Number(values['stats-interval']),
  };
}

async function cli(): Promise<void> {
  const log = pino({ name: 'geneve-userspace', base: { pid: process.pid } });
  let args: ReturnType<typeof parseCli>;
  try {
    args = parseCli(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(
      `${(e as Error).message}\nusage: geneve-userspace --tap <ifname>:<vni> [--tap ...] --remote <ip> [--local <ip>] [--port 6081] [--ready-file F]\n`,
    );
    process.exit(2);
  }
  log.info({ taps: args.taps, remote: args.remote, local: args.local, port: args.port }, 'starting userspace geneve');
  let daemon: GeneveDaemon;
  try {
    daemon = await startGeneveDaemon({ ...args, logger: log });
  } catch (e) {
    log.fatal({ err: e }, 'cannot start');
    process.exit(1);
  }

  let last = '';
  const logStats = (msg: string) => {
    const s = daemon.stats();
    last = JSON.stringify(s);
    log.info({ stats: s }, msg);
  };
  if (args.statsIntervalS > 0) {
    setInterval(() => {
      if (JSON.stringify(daemon.stats()) !== last) logStats('traffic');
    }, args.statsIntervalS * 1000).unref();
  }

  const shutdown = async (why: string, code: number) => {
    await daemon.stop();
    logStats(`stopped (${why})`);
    process.exit(code);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.once('SIGINT', () => void shutdown('SIGINT', 0));
  void daemon.failed.then((e) => {
    log.fatal({ err: e }, 'data path failed');
    void shutdown('worker failure', 1);
  });

  if (args.readyFile) {
    const tmp = `${args.readyFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ pid: process.pid, local: args.local, port: args.port, remote: args.remote, taps: args.taps }) + '\n');
    renameSync(tmp, args.readyFile);
  }
  log.info('ready');
  // Keeps the event loop alive; the workers hold no handles of the main thread.
  setInterval(() => {}, 1 << 30);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void cli();
