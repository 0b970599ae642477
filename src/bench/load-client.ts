// The in-pod load generator: `ip netns exec <pod netns> node dist/bench/load-client.js MODE ...`.
// One process makes all the requests of a figure (spawning curl per request would measure
// process start-up, not the data path) and prints one JSON line on stdout.
//
//   latency    --url U --requests N [--warmup W] [--keepalive]   sequential requests, per-request latency
//   bulk       --url U [--max-seconds S]                          one GET of a large body, throughput
//   concurrent --url U --connections C [--seconds S]              C keep-alive connections looping requests
//   short      --url U --requests N --connections C               N requests, each on a new connection, C at a time
import http from 'node:http';
import { parseArgs } from 'node:util';
import { latencySummary } from './stats.js';

interface Args {
  mode: string;
  url: string;
  requests: number;
  warmup: number;
  keepalive: boolean;
  maxSeconds: number;
  connections: number;
  seconds: number;
}

function parse(argv: string[]): Args {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      url: { type: 'string' }, requests: { type: 'string' }, warmup: { type: 'string' },
      keepalive: { type: 'boolean' }, 'max-seconds': { type: 'string' },
      connections: { type: 'string' }, seconds: { type: 'string' },
    },
  });
  const mode = positionals[0];
  if (!mode || !['latency', 'bulk', 'concurrent', 'short'].includes(mode)) throw new Error('mode must be latency | bulk | concurrent | short');
  if (!values.url) throw new Error('--url is required');
  return {
    mode, url: values.url,
    requests: Number(values.requests ?? 200), warmup: Number(values.warmup ?? 10), keepalive: !!values.keepalive,
    maxSeconds: Number(values['max-seconds'] ?? 20), connections: Number(values.connections ?? 50), seconds: Number(values.seconds ?? 3),
  };
}

const firstLine = (e: unknown): string => String((e as Error)?.message ?? e).split('\n')[0];

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/** One GET, body drained; resolves with the status, rejects on any socket or HTTP-level failure. */
function get(url: string, agent: http.Agent | false, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: agent === false ? { connection: 'close' } : {} }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function latency(a: Args) {
  // New connection per request: no agent, `Connection: close`, so every sample pays the
  // TCP handshake (and, in the mesh, the HBONE CONNECT) the way a fresh client does.
  const agent = a.keepalive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
  let errors = 0;
  let firstError: string | undefined;
  const samples: number[] = [];
  for (let i = 0; i < a.warmup + a.requests; i++) {
    const t0 = now();
    try {
      const status = await get(a.url, agent);
      if (status !== 200) throw new Error(`HTTP ${status}`);
      if (i >= a.warmup) samples.push(now() - t0);
    } catch (e) {
      errors++;
      firstError ??= (e as Error).message;
    }
  }
  if (agent) agent.destroy();
  return { mode: 'latency', keepalive: a.keepalive, errors, firstError, latencyMs: latencySummary(samples) };
}

async function bulk(a: Args) {
  return new Promise((resolve) => {
    let bytes = 0;
    let tFirst = 0;
    let expected = NaN;
    let done = false;
    const t0 = now();
    const cpu0 = process.cpuUsage();
    const finish = (complete: boolean, error?: string) => {
      if (done) return;
      done = true;
      const seconds = (now() - (tFirst || t0)) / 1000;
      const cpu = process.cpuUsage(cpu0);
      resolve({ mode: 'bulk', bytes, expected, complete, error, seconds, mbitPerS: (bytes * 8) / 1e6 / seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
    };
    const req = http.get(a.url, { agent: false }, (res) => {
      tFirst = now();
      expected = Number(res.headers['content-length']);
      res.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      res.on('end', () => finish(bytes === expected));
      res.on('error', (e) => finish(false, e.message));
    });
    req.on('error', (e) => finish(false, e.message));
    // A time cap instead of a fixed size, so a slow path still ends in bounded time; the
    // throughput is the bytes that arrived over the time they took.
    setTimeout(() => {
      finish(bytes === expected);
      req.destroy();
    }, a.maxSeconds * 1000).unref();
  });
}

async function concurrent(a: Args) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: a.connections });
  let open = 0;
  let maxOpen = 0;
  let opened = 0;
  let droppedEarly = 0;
  let stopping = false;
  const samples: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const errorKinds: Record<string, number> = {};
  const deadline = now() + a.seconds * 1000;
  const seen = new WeakSet<object>();
  const track = (req: http.ClientRequest) => req.on('socket', (s) => {
    if (seen.has(s)) return;
    seen.add(s);
    opened++;
    open++;
    maxOpen = Math.max(maxOpen, open);
    s.once('close', () => {
      open--;
      if (!stopping) droppedEarly++;
    });
  });
  const worker = async () => {
    while (now() < deadline) {
      const t0 = now();
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const req = http.get(a.url, { agent }, (res) => {
            res.on('data', () => {});
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', reject);
          });
          track(req);
          req.setTimeout(10_000, () => req.destroy(new Error('timeout after 10000 ms')));
          req.on('error', reject);
        });
        if (status !== 200) throw new Error(`HTTP ${status}`);
        samples.push(now() - t0);
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
        errorKinds[firstLine(e)] = (errorKinds[firstLine(e)] ?? 0) + 1;
      }
    }
  };
  const t0 = now();
  await Promise.all(Array.from({ length: a.connections }, worker));
  const seconds = (now() - t0) / 1000;
  stopping = true;
  agent.destroy();
  return {
    mode: 'concurrent', connections: a.connections, opened, maxOpen, droppedEarly, errors, firstError, errorKinds,
    requests: samples.length, rps: samples.length / seconds, latencyMs: latencySummary(samples),
  };
}

/** Many short requests, each paying a new connection (what a fleet of curl-like clients does). */
async function short(a: Args) {
  let next = 0;
  const samples: number[] = [];
  // Every failure by its message, so a report can match them with the proxies' own counts.
  const errorKinds: Record<string, number> = {};
  const worker = async () => {
    while (next < a.requests) {
      next++;
      const t0 = now();
      try {
        const status = await get(a.url, false);
        if (status !== 200) throw new Error(`HTTP ${status}`);
        samples.push(now() - t0);
      } catch (e) {
        errorKinds[firstLine(e)] = (errorKinds[firstLine(e)] ?? 0) + 1;
      }
    }
  };
  const t0 = now();
  await Promise.all(Array.from({ length: a.connections }, worker));
  const seconds = (now() - t0) / 1000;
  const errors = Object.values(errorKinds).reduce((x, y) => x + y, 0);
  return { mode: 'short', connections: a.connections, errors, errorKinds, requests: samples.length, rps: samples.length / seconds, latencyMs: latencySummary(samples) };
}

const args = parse(process.argv.slice(2));
const result = args.mode === 'latency' ? await latency(args) : args.mode === 'bulk' ? await bulk(args) : args.mode === 'short' ? await short(args) : await concurrent(args);
process.stdout.write(JSON.stringify(result) + '\n');
// Keep-alive sockets or a destroyed bulk request must not hold the process open.
process.exit(0);
