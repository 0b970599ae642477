// Userspace Geneve, for kernels without the geneve module: the lab creates persistent TAP
// devices named like Istio's tunnels (istioin/istioout on the node, pistioin/pistioout in the
// ztunnel pod) and this daemon carries their frames to and from the other end exactly as kernel
// Geneve would (RFC 8926, UDP 6081, VNI 1000 in / 1001 out), so tcpdump and tshark see Geneve.
//
//   node dist/ambient/geneve-userspace.js \
//     --end netns=<node netns>,local=10.244.0.1,remote=10.244.0.2,tap=istioin:1000,tap=istioout:1001 \
//     --end netns=<ztunnel pod netns>,local=10.244.0.2,remote=10.244.0.1,tap=pistioin:1000,tap=pistioout:1001 \
//     [--end ... for every other node] [--port 6081] [--ready-file F] [--stats-interval 60]
//
// The lab runs one such process for all its nodes, in the underlay's netns: every end's UDP
// socket and TAP fds are created inside that end's namespace (setns on this thread, synchronous
// koffi calls only), and fds keep their namespace wherever they are used from. One process
// because a Node process with koffi costs ~47 MB RSS however small its heap (34 MB of it the
// node binary's own pages): per node that was the largest share of an idle lab's memory.
//
// One thread, no workers: the bulk direction of a proxied connection never enters the tunnels
// (table 102 takes it over the ztunnel veth), only SYNs, requests and ACKs do, so a single
// poll(2) loop over every fd of every node keeps up (the bench measured the old four-thread
// daemons at 0.01-0.02 CPU-s per GiB delivered). The loop blocks in poll() for at most
// POLL_MS, then yields to the event loop so signals and timers run.
//
// Every end must open at start, or the process exits 1 naming the end: the supervisor's
// back-off then shows in `lab status` (BACKOFF, UNHEALTHY). At run time a TAP that fails is
// reported once in the log and no longer watched; the other ends go on.
import { writeSync, writeFileSync, renameSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  openTap, udpSocketFd, closeFd, withNetns, sockaddrIn, sysRead, sysWrite, sysSendTo, sysRecvFrom, sysPoll, SysError,
  POLLIN, EAGAIN, EINTR, MSG_DONTWAIT,
} from '../host/sys.js';
import { GENEVE_PORT, GENEVE_HLEN, writeGeneveHeader, decodeGeneve } from './geneve-wire.js';
import { checkEnds, parseEndSpec, type GeneveEndSpec } from './geneve-config.js';

export type { GeneveEndSpec } from './geneve-config.js';

/** Longest wait in poll() before the event loop gets a turn (SIGTERM is handled within it). */
const POLL_MS = 200;
/** Frames taken from one fd per wake-up, so a busy fd cannot starve the others. */
const BATCH = 64;
const MAX_FRAME = 65535;
const UDP_BUF_BYTES = 4 << 20;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;

export interface TapCounters {
  vni: number;
  frames: number;
  bytes: number;
  sendErrors: number;
  readErrors: number;
}

export interface ReceiveCounters {
  packets: number;
  bytes: number;
  unknownVni: number;
  wrongRemote: number;
  malformed: number;
  writeErrors: number;
  recvErrors: number;
}

export interface GeneveEndStats {
  netns?: string;
  local: string;
  remote: string;
  /** Frames read from each TAP and sent encapsulated. */
  taps: Record<string, TapCounters>;
  /** Packets received on the end's UDP socket. */
  received: ReceiveCounters;
}

export interface GeneveStats {
  ends: GeneveEndStats[];
}

/** pino's JSON line shape (level, time, pid, name, msg), without loading pino: `lab logs` pretty-prints it. */
export interface LineLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

const LEVELS = { info: 30, warn: 40, error: 50, fatal: 60 } as const;

export function jsonLineLogger(name: string, fd = 1): LineLogger & { fatal(fields: object, msg: string): void } {
  const line = (level: number, fields: object, msg: string) => {
    const f = fields as Record<string, unknown>;
    const err = f.err instanceof Error ? { err: { type: f.err.name, message: f.err.message, stack: f.err.stack } } : {};
    writeSync(fd, JSON.stringify({ level, time: Date.now(), pid: process.pid, name, ...fields, ...err, msg }) + '\n');
  };
  return {
    info: (f, m) => line(LEVELS.info, f, m),
    warn: (f, m) => line(LEVELS.warn, f, m),
    error: (f, m) => line(LEVELS.error, f, m),
    fatal: (f, m) => line(LEVELS.fatal, f, m),
  };
}

const quiet: LineLogger = { info() {}, warn() {}, error() {} };

export interface GeneveDaemonOptions {
  ends: GeneveEndSpec[];
  port?: number;
  logger?: LineLogger;
}

export interface GeneveDaemon {
  stats(): GeneveStats;
  /** Leaves the loop and closes every fd. */
  stop(): void;
}

interface Tap extends TapCounters {
  name: string;
  fd: number;
  end: End;
}

interface End {
  spec: GeneveEndSpec;
  udpFd: number;
  dest: Buffer;
  /** The remote's address as the 32-bit number recvfrom() reports. */
  remoteIp: number;
  tapByVni: Map<number, Tap>;
  taps: Tap[];
  received: ReceiveCounters;
}

/** Opens every end's fds in its namespace; closes what it opened if one fails. */
function openEnds(ends: GeneveEndSpec[], port: number, log: LineLogger): { ends: End[]; fds: number[] } {
  const fds: number[] = [];
  const opened: End[] = [];
  try {
    for (const spec of ends) {
      const open = () => {
        const udpFd = udpSocketFd({ ip: spec.local, port, bufBytes: UDP_BUF_BYTES });
        fds.push(udpFd);
        const dest = sockaddrIn(spec.remote, port);
        const end: End = {
          spec, udpFd, dest, remoteIp: dest.readUInt32BE(4), tapByVni: new Map(), taps: [],
          received: { packets: 0, bytes: 0, unknownVni: 0, wrongRemote: 0, malformed: 0, writeErrors: 0, recvErrors: 0 },
        };
        for (const t of spec.taps) {
          const fd = openTap(t.name, { nonblock: true });
          fds.push(fd);
          const tap: Tap = { ...t, fd, end, frames: 0, bytes: 0, sendErrors: 0, readErrors: 0 };
          end.taps.push(tap);
          end.tapByVni.set(t.vni, tap);
          log.info({ netns: spec.netns, tap: t.name, vni: t.vni, fd }, 'attached to TAP');
        }
        return end;
      };
      try {
        opened.push(spec.netns ? withNetns(spec.netns, open) : open());
      } catch (e) {
        // One daemon serves every node: say which end (namespace, address) could not open.
        throw new Error(`cannot open the end in ${spec.netns ?? 'the daemon\'s own netns'} (local ${spec.local}): ${(e as Error).message}`, { cause: e });
      }
    }
  } catch (e) {
    fds.forEach(closeFd);
    throw e;
  }
  return { ends: opened, fds };
}

export function startGeneveDaemon(opts: GeneveDaemonOptions): GeneveDaemon {
  const log = opts.logger ?? quiet;
  const port = opts.port ?? GENEVE_PORT;
  checkEnds(opts.ends);
  const { ends, fds } = openEnds(opts.ends, port, log);

  // Every report names the end, the operation and the errno, once per combination: a TAP that is
  // down (EIO) or an unrouted underlay (ENETUNREACH) must not write a line per packet.
  const reported = new Set<string>();
  const reportOnce = (end: End, op: string, errno: number) => {
    const key = `${end.spec.local}/${op}/${errno}`;
    if (reported.has(key)) return;
    reported.add(key);
    log.warn({ netns: end.spec.netns, local: end.spec.local, op, code: new SysError(op, errno).code }, `${op} failed`);
  };

  // One buffer each way: frames are handled one at a time, start to finish.
  const tx = Buffer.alloc(GENEVE_HLEN + MAX_FRAME);
  const txFrame = tx.subarray(GENEVE_HLEN);
  const rx = Buffer.alloc(GENEVE_HLEN + MAX_FRAME + 256);
  const from = Buffer.alloc(16);
  const fromLen = Buffer.alloc(4);

  /** TAP -> Geneve -> UDP to the remote end. Returns -errno of a failed read, else 0. */
  const encap = (t: Tap): number => {
    writeGeneveHeader(tx, t.vni);
    for (let i = 0; i < BATCH; i++) {
      const len = sysRead(t.fd, txFrame, MAX_FRAME);
      if (len === -EAGAIN || len === -EINTR || len === 0) return 0;
      if (len < 0) {
        t.readErrors++;
        reportOnce(t.end, `read ${t.name}`, -len);
        return len;
      }
      const sent = sysSendTo(t.end.udpFd, tx, GENEVE_HLEN + len, t.end.dest);
      if (sent < 0) {
        t.sendErrors++;
        reportOnce(t.end, 'sendto', -sent);
      } else {
        t.frames++;
        t.bytes += len;
      }
    }
    return 0;
  };

  /** UDP from the remote end -> checked -> the inner frame written to the TAP of its VNI. */
  const decap = (e: End): number => {
    const r = e.received;
    for (let i = 0; i < BATCH; i++) {
      const len = sysRecvFrom(e.udpFd, rx, rx.length, from, fromLen, MSG_DONTWAIT);
      if (len === -EAGAIN || len === -EINTR) return 0;
      if (len < 0) {
        r.recvErrors++;
        reportOnce(e, 'recvfrom', -len);
        return len;
      }
      // Like a kernel geneve link with `remote`: only the configured peer is accepted.
      if (from.readUInt32BE(4) !== e.remoteIp) {
        r.wrongRemote++;
        continue;
      }
      const g = decodeGeneve(rx, len);
      if (!g.ok) {
        r.malformed++;
        continue;
      }
      const tap = e.tapByVni.get(g.vni);
      if (!tap) {
        r.unknownVni++;
        continue;
      }
      // Writes to a TAP never block: the kernel queues the frame or drops it (EIO while down).
      const w = sysWrite(tap.fd, g.frame, g.frame.length);
      if (w < 0) {
        r.writeErrors++;
        reportOnce(e, `write ${tap.name}`, -w);
      } else {
        r.packets++;
        r.bytes += g.frame.length;
      }
    }
    return 0;
  };

  // struct pollfd[]: int fd, short events, short revents.
  const handlers: Array<() => number> = [];
  const watched: number[] = [];
  for (const e of ends) {
    watched.push(e.udpFd);
    handlers.push(() => decap(e));
    for (const t of e.taps) {
      watched.push(t.fd);
      handlers.push(() => encap(t));
    }
  }
  const pfds = Buffer.alloc(8 * watched.length);
  watched.forEach((fd, i) => {
    pfds.writeInt32LE(fd, 8 * i);
    pfds.writeInt16LE(POLLIN, 8 * i + 4);
  });

  let stopped = false;
  const turn = () => {
    if (stopped) return;
    const n = sysPoll(pfds, watched.length, POLL_MS);
    for (let i = 0; n > 0 && i < watched.length; i++) {
      const revents = pfds.readInt16LE(8 * i + 6);
      if (!revents) continue;
      const err = handlers[i]();
      // A device that is gone keeps poll() returning at once: stop watching it rather than spin.
      if (err < 0 && revents & (POLLERR | POLLHUP | POLLNVAL)) pfds.writeInt32LE(-1, 8 * i);
    }
    setImmediate(turn);
  };
  setImmediate(turn);

  const counters = ({ vni, frames, bytes, sendErrors, readErrors }: Tap): TapCounters => ({ vni, frames, bytes, sendErrors, readErrors });
  return {
    stats: () => ({
      ends: ends.map((e) => ({
        ...(e.spec.netns ? { netns: e.spec.netns } : {}), local: e.spec.local, remote: e.spec.remote,
        taps: Object.fromEntries(e.taps.map((t) => [t.name, counters(t)])),
        received: { ...e.received },
      })),
    }),
    stop: () => {
      if (stopped) return;
      stopped = true;
      fds.splice(0).forEach(closeFd);
    },
  };
}

const USAGE = 'usage: geneve-userspace --end [netns=NAME,]local=IP,remote=IP,tap=IFNAME:VNI[,tap=...] [--end ...] [--port 6081] [--ready-file F] [--stats-interval S]';

function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      end: { type: 'string', multiple: true, default: [] },
      port: { type: 'string', default: String(GENEVE_PORT) },
      'ready-file': { type: 'string' },
      'stats-interval': { type: 'string', default: '60' },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad --port ${values.port}`);
  const ends = (values.end ?? []).map(parseEndSpec);
  checkEnds(ends);
  return { ends, port, readyFile: values['ready-file'], statsIntervalS: Number(values['stats-interval']) };
}

function cli(): void {
  const log = jsonLineLogger('geneve-userspace');
  let args: ReturnType<typeof parseCli>;
  try {
    args = parseCli(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  log.info({ ends: args.ends, port: args.port }, 'starting userspace geneve');
  let daemon: GeneveDaemon;
  try {
    daemon = startGeneveDaemon({ ends: args.ends, port: args.port, logger: log });
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
  const shutdown = (why: string) => {
    daemon.stop();
    logStats(`stopped (${why})`);
    process.exit(0);
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));

  if (args.readyFile) {
    const tmp = `${args.readyFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ pid: process.pid, port: args.port, ends: args.ends }) + '\n');
    renameSync(tmp, args.readyFile);
  }
  log.info({}, 'ready');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) cli();
