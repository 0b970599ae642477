// What the proxies themselves said about the trace's request: the pino lines the ztunnels and
// waypoints wrote while it ran. Packets show where bytes went; only the waypoint knows which
// route rule, backend and weight it chose, or why it refused (RBAC), and only the proxies
// know which identities an HBONE tunnel carried. Pure: log text in, facts out.

/** One pino JSON line, as the proxies write them (dotted keys kept: `src.addr`). */
export type LogLine = Record<string, unknown> & { time: number; msg: string };

/** The lines of a pino log that parse; anything else (a stack trace, a torn last line) is skipped. */
export function parseLogLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      const o = JSON.parse(l) as Record<string, unknown>;
      if (typeof o.time === 'number' && typeof o.msg === 'string') out.push(o as LogLine);
    } catch {
      // a line being written while we read
    }
  }
  return out;
}

/** The waypoint's L7 decision for one request, from its `request` access log line. */
export interface L7Decision {
  /** `waypoint bookinfo-reviews`. */
  where: string;
  netns: string;
  /** Log time (ms since the epoch): when the response was done. */
  time: number;
  method: string;
  path: string;
  authority: string;
  /** `GET /hostname` */
  requestLine: string;
  requestId?: string;
  status: number;
  responseFlags: string;
  responseCodeDetails: string;
  /** The caller as the waypoint saw it: tunnel peer address and its mTLS identity. */
  sourceAddress?: string;
  sourceIdentity?: string;
  /** `reviews.default.svc.cluster.local:9080` */
  service?: string;
  /** The route rule that matched: `VirtualService default/reviews http[1]`, its index in the VirtualService. */
  route?: { origin: string; index: number };
  /** The backend picked from the rule's weighted destinations. */
  backend?: { host: string; port: number; subset?: string; weightPercent: number };
  upstreamCluster?: string;
  /** The endpoint ip:port the waypoint sent the request to (over HBONE, to its :15008). */
  upstreamHost?: string;
  /** The AuthorizationPolicy that decided (ALLOW that let it through, or the one that denied). */
  policy?: string;
  /** Set when the waypoint answered itself (403 RBAC, 503 no healthy upstream, ...): the path ends there. */
  localReply: boolean;
  /** Why, in words, when the waypoint answered itself. */
  denial?: string;
  durationMs?: number;
  /** A sidecar's line: `outbound` (its app's request, reporter source) or `inbound` (reporter destination). */
  direction?: string;
  /** How a sidecar reached the upstream: `hbone`, `istio-mtls`, `plaintext` (its `upstream_transport`). */
  upstreamTransport?: string;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** `VirtualService default/reviews http[1] rule 1` -> origin and index (the log's `route` field). */
export function parseRouteField(s: string): { origin: string; index: number } {
  const m = /^(.*) rule (\d+)$/.exec(s);
  return m ? { origin: m[1], index: Number(m[2]) } : { origin: s, index: -1 };
}

/** `reviews.default.svc.cluster.local:9080 subset v1 (90%)` -> its parts (the log's `backend` field). */
export function parseBackendField(s: string): L7Decision['backend'] | undefined {
  const m = /^(\S+):(\d+)(?: subset (\S+))? \((\d+(?:\.\d+)?)%\)$/.exec(s);
  if (!m) return undefined;
  return { host: m[1], port: Number(m[2]), ...(m[3] ? { subset: m[3] } : {}), weightPercent: Number(m[4]) };
}

/** Envoy's response code details in a learner's words. */
function denialText(details: string, status: number, policy?: string): string {
  if (details === 'rbac_access_denied') return `RBAC: access denied${policy ? ` (${policy})` : ' (no ALLOW policy matched)'}`;
  if (details === 'route_not_found') return 'no route matched';
  if (details === 'fault_filter_abort') return 'fault injection aborted the request';
  if (details === 'no_healthy_upstream') return 'no healthy upstream';
  return `${details || 'local reply'} (${status})`;
}

/** The decision in a waypoint's `request` line; undefined for any other line. */
export function decisionFrom(line: LogLine, where: string, netns: string): L7Decision | undefined {
  if (line.msg !== 'request') return undefined;
  const method = str(line.method);
  const path = str(line.path);
  const status = num(line.status);
  if (!method || path === undefined || status === undefined) return undefined;
  const details = str(line.response_code_details) ?? '';
  const upstreamHost = str(line.upstream_host);
  // Envoy's "via_upstream": the status came from the app; anything else the proxy made up.
  const localReply = details !== 'via_upstream' || !upstreamHost;
  const routeField = str(line.route);
  const backendField = str(line.backend);
  const backend = backendField ? parseBackendField(backendField) : undefined;
  const policy = str(line.policy);
  const requestId = str(line.request_id) ?? str(line['x-request-id']) ?? str(line.requestId);
  const d: L7Decision = {
    where, netns, time: line.time, method, path, authority: str(line.authority) ?? '', requestLine: `${method} ${path}`,
    ...(requestId ? { requestId } : {}),
    status, responseFlags: str(line.response_flags) ?? '-', responseCodeDetails: details,
    ...(str(line['src.addr']) ? { sourceAddress: str(line['src.addr']) } : {}),
    ...(str(line['src.identity']) ? { sourceIdentity: str(line['src.identity']) } : {}),
    ...(str(line['dst.service']) ? { service: str(line['dst.service']) } : {}),
    ...(routeField ? { route: parseRouteField(routeField) } : {}),
    ...(backend ? { backend } : {}),
    ...(str(line.upstream_cluster) ? { upstreamCluster: str(line.upstream_cluster) } : {}),
    ...(upstreamHost ? { upstreamHost } : {}),
    ...(policy ? { policy } : {}),
    localReply,
    ...(localReply ? { denial: denialText(details, status, policy) } : {}),
    ...(num(line.duration_ms) !== undefined ? { durationMs: num(line.duration_ms) } : {}),
    ...(str(line.direction) ? { direction: str(line.direction) } : {}),
    ...(str(line.upstream_transport) ? { upstreamTransport: str(line.upstream_transport) } : {}),
  };
  return d;
}

export interface RequestFingerprint {
  /** The x-request-id the trace sent, when it sent one. */
  requestId?: string;
  method?: string;
  /** Path with query, as the client sent it. */
  path?: string;
  /** The trace's window, ms since the epoch. */
  fromMs: number;
  toMs: number;
}

/**
 * The trace's request among a waypoint's request lines: by x-request-id when the line carries
 * one; otherwise the one line of the time window with the request's method and path (the
 * trace makes exactly one request; two candidates means someone else was calling the same
 * URL, and the first, the closest to the trace's start, is taken).
 */
export function matchDecision(decisions: L7Decision[], fp: RequestFingerprint): L7Decision | undefined {
  if (fp.requestId) {
    const exact = decisions.find((d) => d.requestId === fp.requestId);
    if (exact) return exact;
    // A line with another id is someone else's request; lines without one may be ours.
    decisions = decisions.filter((d) => d.requestId === undefined);
  }
  return decisions
    .filter((d) => d.time >= fp.fromMs && d.time <= fp.toMs)
    .filter((d) => (fp.method === undefined || d.method === fp.method) && (fp.path === undefined || d.path === fp.path))
    .sort((a, b) => a.time - b.time)[0];
}

/** Who an HBONE tunnel carried, as its ends logged it. */
export interface TunnelFacts {
  /** The CONNECT's :authority (the Service VIP:port for a waypoint, the pod ip:port for a ztunnel). */
  authority?: string;
  clientIdentity?: string;
  serverIdentity?: string;
  /** Which log lines said so. */
  source: string[];
}

const ipOf = (ep: string): string => ep.replace(/:\d+$/, '');

/**
 * Facts about one HBONE tunnel (`client` -> `server`, the TCP 4-tuple as captured) from the
 * proxies' connection lines: the receiving side logs the tunnel's peer address (exactly our
 * client), the opening side logs the tunnel's :15008 address and both identities.
 */
export function tunnelFacts(
  logs: { where: string; lines: LogLine[] }[],
  tunnel: { client: string; server: string; originalDst?: string; istioMtls?: boolean },
): TunnelFacts | undefined {
  const f: TunnelFacts = { source: [] };
  for (const { where, lines } of logs) {
    for (const l of lines) {
      if (!/^connection (complete|denied|failed)$/.test(l.msg)) continue;
      if (tunnel.istioMtls) {
        // Istio mTLS goes straight to the app port: the receiving sidecar logs the peer it verified.
        if (l.direction === 'inbound' && str(l['src.addr']) === tunnel.client && str(l['dst.addr']) === tunnel.server) {
          f.clientIdentity ??= str(l['src.identity']);
          f.serverIdentity ??= str(l['dst.identity']);
          f.source.push(`${where} log`);
        }
        continue;
      }
      const hbone = str(l['dst.hbone_addr']);
      if (hbone !== tunnel.server) continue;
      const src = str(l['src.addr']);
      const dst = str(l['dst.addr']);
      if (l.direction === 'inbound' && src === tunnel.client) {
        // The receiver: src.identity is the client certificate it verified.
        f.authority ??= dst;
        f.clientIdentity ??= str(l['src.identity']);
        f.source.push(`${where} log`);
      } else if (l.direction === 'outbound' && src !== undefined && ipOf(src) === ipOf(tunnel.client)
        && (tunnel.originalDst === undefined || dst === tunnel.originalDst)) {
        // The opener (a ztunnel spoofs its client's address, so only the IP compares).
        f.authority ??= dst;
        f.clientIdentity ??= str(l['src.identity']);
        f.serverIdentity ??= str(l['dst.identity']);
        f.source.push(`${where} log`);
      }
    }
  }
  return f.source.length ? f : undefined;
}

/** A waypoint's own identity, from the line it logs when it is ready. */
export function waypointIdentityFrom(lines: LogLine[]): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i].msg === 'waypoint ready' && typeof lines[i].identity === 'string') return lines[i].identity as string;
  }
  return undefined;
}

/**
 * The address the app of a sidecar pod asked for, before nat REDIRECT sent it to 15001: the
 * sidecar's outbound connection line for that client address (`dst.addr`).
 */
export function originalDestination(lines: LogLine[], client: string): string | undefined {
  for (const l of lines) {
    if (l.msg === 'connection complete' && l.direction === 'outbound' && l['src.addr'] === client && typeof l['dst.addr'] === 'string') return l['dst.addr'];
  }
  return undefined;
}
