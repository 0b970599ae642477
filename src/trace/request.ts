// The one request a trace makes, from inside the source pod: curl for a URL, or a TCP
// connect plus a short write for IP:PORT (run with `ip netns exec`, so the socket is made
// in the pod's namespace).
import { run } from '../host/run.js';

export interface RequestTarget {
  kind: 'url' | 'tcp';
  text: string;
  host: string;
  port: number;
  /** A URL's path and query, as curl sends it. */
  path?: string;
  /** HTTP method (curl -X); GET when absent. */
  method?: string;
  /** Extra request headers (curl -H). */
  headers?: Record<string, string>;
}

export function parseRequestTarget(s: string): RequestTarget | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    try {
      const u = new URL(s);
      const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
      return { kind: 'url', text: s, host: u.hostname, port, path: `${u.pathname || '/'}${u.search}` };
    } catch {
      return undefined;
    }
  }
  const m = /^([^:\s]+):(\d{1,5})$/.exec(s);
  if (m && Number(m[2]) > 0 && Number(m[2]) < 65536) return { kind: 'tcp', text: s, host: m[1], port: Number(m[2]) };
  return undefined;
}

export interface RequestOutcome {
  ok: boolean;
  /** HTTP status for URLs; bytes received for TCP. */
  summary: string;
  durationMs: number;
}

const TCP_PROBE = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
let got = 0;
s.setTimeout(3000, () => { console.log('timeout after connect, ' + got + ' bytes'); s.destroy(); process.exit(1); });
s.on('connect', () => s.write('hello from lab trace\\n'));
s.on('data', (d) => { got += d.length; setTimeout(() => s.end(), 100); });
s.on('close', () => { console.log('connected, ' + got + ' bytes back'); process.exit(0); });
s.on('error', (e) => { console.log(e.code || e.message); process.exit(1); });
`;

/** `Name: value` (curl's -H form) -> [name, value], or undefined when it is not a header. */
export function parseHeader(s: string): [string, string] | undefined {
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):\s*(.*)$/.exec(s);
  return m ? [m[1], m[2]] : undefined;
}

export async function makeRequest(netns: string, t: RequestTarget, opts: { headers?: Record<string, string>; timeoutS?: number } = {}): Promise<RequestOutcome> {
  const timeoutS = opts.timeoutS ?? 5;
  const start = Date.now();
  if (t.kind === 'url') {
    const headers = { ...t.headers, ...opts.headers };
    const args = [
      ...(t.method && t.method !== 'GET' ? ['-X', t.method] : []),
      ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    ];
    const r = await run('ip', ['netns', 'exec', netns, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', String(timeoutS), ...args, t.text], { reject: false, timeoutMs: (timeoutS + 5) * 1000 });
    const code = r.stdout.trim();
    return { ok: r.exitCode === 0 && /^[23]/.test(code), summary: r.exitCode === 0 ? `HTTP ${code}` : `curl failed (exit ${r.exitCode})`, durationMs: Date.now() - start };
  }
  const r = await run('ip', ['netns', 'exec', netns, process.execPath, '-e', TCP_PROBE, t.host, String(t.port)], { reject: false, timeoutMs: (timeoutS + 5) * 1000 });
  return { ok: r.exitCode === 0, summary: r.stdout.trim() || r.stderr.trim(), durationMs: Date.now() - start };
}
