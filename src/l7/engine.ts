// The L7 engine: one HTTP/1.1 or HTTP/2 (compat API) request in, one response and one result out, in the order of
// the waypoint's Envoy filter chain (waypoint-and-sidecar.md §1): RBAC -> fault -> router.
// The waypoint and the sidecar proxy both use it unchanged and differ only in what they pass:
// the policies they enforce, how connect() reaches an endpoint, the server name, the retry
// policy of the default route. Every decision is one of the pure functions next to this file;
// this module only sequences them over sockets and timers.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { authorizeRequest } from './authz.js';
import { chooseBackend, LoadBalancerState, subsetEndpoints, endpointKey, type L7Endpoint, type RandomSource } from './backends.js';
import { faultDecision } from './fault.js';
import { applyHeaderOps, type HeaderMap } from './header-ops.js';
import type { Backend, DestinationPolicy, HeaderOps, HttpRequestFacts, L7AuthorizationPolicy, LoadBalancer, RetryPolicy, ServiceRoutes } from './model.js';
import { RequestBody, DEFAULT_RETRY_BUFFER_LIMIT } from './request-body.js';
import { formatFlags, LOCAL_REPLY, type EngineFlag, type L7RequestResult } from './result.js';
import { retryDecision, type AttemptOutcome } from './retry.js';
import { applyRewrite, redirectLocation } from './rewrite.js';
import { selectRoute, splitPath, type RouteSelection } from './route-match.js';
import { UpstreamConnectError, UpstreamPools, type ConnectFn, type EndpointUpstreamStats, type UpstreamLimits } from './upstream.js';

/** The configuration the engine routes by; replaced as a whole on reload. */
export interface L7Config {
  routes: ServiceRoutes[];
  destinationPolicies: DestinationPolicy[];
  /** The AuthorizationPolicies this proxy enforces (the caller selects them by target). */
  authorization: L7AuthorizationPolicy[];
}

/** What the listener knows about a request's connection. */
export interface DownstreamInfo {
  /** The destination Service (FQDN) and port; absent when the client addressed a workload IP directly. */
  service?: { host: string; port: number };
  srcIp: string;
  /** Peer principal without spiffe://; absent for plaintext. */
  srcPrincipal?: string;
  srcNamespace?: string;
  /** The original destination (Service VIP or workload IP) and port. */
  dstIp: string;
  dstPort: number;
  /** For redirects; default http. */
  scheme?: 'http' | 'https';
  /**
   * x-forwarded-client-cert element for this connection's peer (a sidecar's inbound,
   * APPEND_FORWARD): appended to what the client sent. Absent: XFCC is sanitized (removed),
   * as at a waypoint or for a peer without a certificate.
   */
  forwardClientCert?: string;
  /**
   * Policies decided for the whole connection, evaluated with the configured ones: a sidecar's
   * L4-only AuthorizationPolicies, already applied to the connection, in L7 form.
   */
  connectionPolicies?: L7AuthorizationPolicy[];
}

export interface L7EngineOptions {
  config: L7Config;
  /** The endpoints behind a Service port (host FQDN, Service port); port is the target port. */
  endpoints(host: string, port: number): L7Endpoint[];
  /** A byte stream to an endpoint: HBONE CONNECT for the waypoint, TCP for the sidecar. */
  connect: ConnectFn;
  onResult?(result: L7RequestResult): void;
  /** Backend split, load balancing, faults and retry jitter draw from it. Default Math.random. */
  random?: RandomSource;
  /** Overwrites the upstream's `server` header and is set on local replies: istio-envoy (waypoint, sidecar inbound) or envoy (sidecar outbound). */
  serverName?: string;
  /** Retry policy of Istio's default route (no VirtualService/HTTPRoute for the Service): none at a waypoint, DEFAULT_RETRY_POLICY at a sidecar's outbound. */
  defaultRouteRetries?: RetryPolicy;
  /** Request bytes kept for retries; a larger body disables retries for its request. */
  retryBufferLimit?: number;
  connectTimeoutMs?: number;
  /** Bounds on the upstream connections per endpoint; default DEFAULT_UPSTREAM_LIMITS (upstream.ts). */
  upstreamLimits?: Partial<UpstreamLimits>;
  /** Send x-envoy-attempt-count upstream (Istio sets include_request_attempt_count on sidecar outbound vhosts only). */
  includeAttemptCount?: boolean;
  /** Envoy %UPSTREAM_CLUSTER% for a backend; default outbound|<port>|<subset>|<host>. */
  clusterName?(b: { host: string; port: number; subset?: string }): string;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect', 'http2-settings'];

/**
 * Without the hop-by-hop fields and, for an HTTP/2 request, its pseudo-headers (:method,
 * :path, ...): the upstream request is HTTP/1.1 whatever the client spoke, and the HTTP/2
 * response must not carry connection-specific fields (RFC 9113 §8.2.2), all in HOP_BY_HOP.
 */
function stripHopByHop(h: HeaderMap): HeaderMap {
  const out: HeaderMap = { ...h };
  const conn = out.connection;
  const named = (Array.isArray(conn) ? conn.join(',') : conn ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const name of [...HOP_BY_HOP, ...named]) delete out[name];
  for (const name of Object.keys(out)) if (name.startsWith(':')) delete out[name];
  return out;
}

const defaultClusterName = (b: { host: string; port: number; subset?: string }): string => `outbound|${b.port}|${b.subset ?? ''}|${b.host}`;

/** Why an attempt's abort signal fired. */
type AbortCause = 'per-try-timeout' | 'route-timeout' | 'downstream';

class Timer {
  private handle?: NodeJS.Timeout;
  fired = false;
  arm(ms: number, fire: () => void): void {
    this.handle = setTimeout(() => {
      this.fired = true;
      fire();
    }, ms);
  }
  clear(): void {
    if (this.handle) clearTimeout(this.handle);
  }
}

/** Per-request state shared by the steps. */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  info: DownstreamInfo;
  result: L7RequestResult;
  flags: EngineFlag[];
  body: RequestBody;
  /** Set when the client went away before the response was complete. */
  gone: boolean;
  onGone: Set<() => void>;
}

export class L7Engine {
  private config: L7Config;
  private readonly random: RandomSource;
  private readonly serverName: string;
  private readonly lb: LoadBalancerState;
  private readonly pools: UpstreamPools;
  private readonly clusterName: (b: { host: string; port: number; subset?: string }) => string;

  constructor(private readonly opts: L7EngineOptions) {
    this.config = opts.config;
    this.random = opts.random ?? Math.random;
    this.serverName = opts.serverName ?? 'istio-envoy';
    this.lb = new LoadBalancerState(this.random);
    this.pools = new UpstreamPools(opts.connect, opts.connectTimeoutMs, opts.upstreamLimits);
    this.clusterName = opts.clusterName ?? defaultClusterName;
  }

  update(config: L7Config): void {
    this.config = config;
  }

  async close(): Promise<void> {
    await this.pools.close();
  }

  /** The upstream pools' gauges per endpoint, computed now (for /metrics and /config_dump). */
  upstreamStats(): EndpointUpstreamStats[] {
    return this.pools.byEndpoint();
  }

  /** Serve one request; resolves with its result once the response is complete (or abandoned). */
  async handle(req: IncomingMessage, res: ServerResponse, info: DownstreamInfo): Promise<L7RequestResult> {
    const t0 = performance.now();
    const rawUrl = req.url ?? '/';
    const result: L7RequestResult = {
      startTime: Date.now(),
      method: req.method ?? 'GET',
      path: rawUrl,
      // HTTP/2 carries the authority in :authority (RFC 9113 §8.3.1), usually with no host.
      authority: req.headers[':authority'] as string | undefined ?? req.headers.host ?? '',
      requestId: typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : undefined,
      userAgent: req.headers['user-agent'],
      status: 0,
      responseFlags: '-',
      responseCodeDetails: '',
      service: info.service,
      attempts: 0,
      durationMs: 0,
      bytesReceived: 0,
      bytesSent: 0,
    };
    // An HTTP/2 request has a body unless its HEADERS frame ended the stream; content-length is optional there.
    const h2Stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream;
    const hasBody = h2Stream ? !h2Stream.endAfterHeaders : Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    const x: Exchange = { req, res, info, result, flags: [], body: new RequestBody(req, hasBody, 0), gone: false, onGone: new Set() };
    res.on('close', () => {
      if (res.writableFinished) return;
      x.gone = true;
      x.flags.push('DC');
      for (const f of x.onGone) f();
    });
    try {
      await this.serve(x);
    } catch (err) {
      // A bug or an unexpected failure: answer like Envoy's router would rather than hang.
      if (!res.headersSent && !x.gone) this.localReply(x, 503, LOCAL_REPLY.connectionTermination, 'engine_error');
      else res.destroy(err as Error);
      result.responseCodeDetails ||= `engine_error: ${(err as Error).message}`;
    } finally {
      result.bytesReceived = x.body.received;
      result.durationMs = Math.round(performance.now() - t0);
      result.responseFlags = formatFlags(x.flags);
      if (x.gone && !res.headersSent) result.status = 0;
      this.opts.onResult?.(result);
    }
    return result;
  }

  private async serve(x: Exchange): Promise<void> {
    const { req, info, result } = x;
    const { path: pathOnly } = splitPath(absoluteToOrigin(result.path));

    // 1. RBAC: a denied request is answered before faults or routing ever see it.
    const facts: HttpRequestFacts = {
      method: result.method,
      path: pathOnly,
      host: result.authority,
      headers: req.headers,
      srcIp: info.srcIp,
      srcPrincipal: info.srcPrincipal,
      srcNamespace: info.srcNamespace,
      dstIp: info.dstIp,
      dstPort: info.dstPort,
    };
    const authz = authorizeRequest(info.connectionPolicies ? [...this.config.authorization, ...info.connectionPolicies] : this.config.authorization, facts);
    if (authz.policy) result.authzPolicy = authz.policy;
    if (!authz.allowed) return this.localReply(x, 403, LOCAL_REPLY.rbac, 'rbac_access_denied');

    // The route is resolved before the fault filter runs: its fault config is per route.
    const selection: RouteSelection = info.service
      ? selectRoute(this.config.routes, { host: info.service.host, port: info.service.port, method: result.method, path: absoluteToOrigin(result.path), headers: req.headers })
      : { kind: 'default' };
    if (selection.kind === 'rule') result.route = { origin: selection.origin, index: selection.index };
    if (selection.kind === 'default') result.route = { origin: 'default', index: -1 };

    // 2. Fault: delay first, then abort.
    if (selection.kind === 'rule') {
      const fault = faultDecision(selection.rule.fault, this.random);
      if (fault.delayMs !== undefined) {
        x.flags.push('DI');
        result.faultDelayMs = fault.delayMs;
        await this.sleep(x, fault.delayMs);
        if (x.gone) return;
      }
      if (fault.abortStatus !== undefined) {
        x.flags.push('FI');
        return this.localReply(x, fault.abortStatus, LOCAL_REPLY.faultAbort, 'fault_filter_abort');
      }
    }

    // 3. Router.
    if (selection.kind === 'none') {
      x.flags.push('NR');
      return this.localReply(x, 404, '', 'route_not_found');
    }
    const rule = selection.kind === 'rule' ? selection.rule : undefined;
    if (rule?.directResponse) return this.localReply(x, rule.directResponse.status, rule.directResponse.body, 'direct_response', rule.responseHeaders);
    if (rule?.redirect) {
      const location = redirectLocation(rule.redirect, selection.kind === 'rule' ? selection.match : undefined, {
        scheme: info.scheme ?? 'http',
        authority: result.authority,
        path: absoluteToOrigin(result.path),
      });
      return this.localReply(x, rule.redirect.statusCode, '', 'redirect', rule.responseHeaders, { location });
    }
    await this.route(x, selection);
  }

  private async route(x: Exchange, selection: Exclude<RouteSelection, { kind: 'none' }>): Promise<void> {
    const { info, result } = x;
    const rule = selection.kind === 'rule' ? selection.rule : undefined;
    const respOps = rule?.responseHeaders;

    // Weighted backend, then its endpoints.
    let backends: Backend[];
    if (rule) backends = rule.backends;
    else if (info.service) backends = [{ host: info.service.host, port: info.service.port, weight: 100 }];
    else backends = [];
    let endpoints: L7Endpoint[];
    let lbKind: LoadBalancer | undefined;
    let cluster: string;
    if (backends.length > 0) {
      const choice = chooseBackend(backends, this.random)!;
      const b = choice.backend;
      const port = b.port ?? info.service?.port ?? info.dstPort;
      result.backend = { host: b.host, port, subset: b.subset, weightPercent: choice.weightPercent };
      cluster = this.clusterName({ host: b.host, port, subset: b.subset });
      result.upstreamCluster = cluster;
      const subset = subsetEndpoints(b, this.opts.endpoints(b.host, port), this.config.destinationPolicies);
      if (!subset.ok) {
        x.flags.push('NC');
        return this.localReply(x, 503, '', 'cluster_not_found', respOps);
      }
      endpoints = subset.endpoints;
      lbKind = subset.loadBalancer;
    } else if (!rule && !info.service) {
      // A workload addressed directly: the original destination is the only endpoint.
      endpoints = [{ address: info.dstIp, port: info.dstPort, labels: {} }];
      cluster = `inbound-pod|${info.dstPort}||${info.dstIp}`;
      result.upstreamCluster = cluster;
    } else {
      // A rule with neither backends nor a redirect/direct response: nothing to send to.
      x.flags.push('NC');
      return this.localReply(x, 503, '', 'cluster_not_found', respOps);
    }

    // The request as the upstream will see it.
    const rewritten = applyRewrite(rule?.rewrite, selection.kind === 'rule' ? selection.match : undefined, absoluteToOrigin(result.path), result.authority);
    let headers = stripHopByHop(x.req.headers);
    // The waypoint's inner HCM leaves forward_client_cert_details unset: Envoy sanitizes XFCC.
    // A sidecar's inbound appends the peer's element (APPEND_FORWARD) when it had a certificate.
    const xfcc = headers['x-forwarded-client-cert'];
    delete headers['x-forwarded-client-cert'];
    if (info.forwardClientCert) {
      const prev = Array.isArray(xfcc) ? xfcc.join(',') : xfcc;
      headers['x-forwarded-client-cert'] = prev ? `${prev},${info.forwardClientCert}` : info.forwardClientCert;
    }
    if (!headers['x-request-id']) {
      headers['x-request-id'] = randomUUID();
      result.requestId = headers['x-request-id'] as string;
    }
    headers = applyHeaderOps(headers, rule?.requestHeaders);
    headers.host = rewritten.authority;

    const retries = rule ? rule.retries : this.opts.defaultRouteRetries;
    const limit = retries && retries.attempts > 0 ? this.opts.retryBufferLimit ?? DEFAULT_RETRY_BUFFER_LIMIT : 0;
    x.body.setLimit(limit);

    // The route timeout covers every attempt and back-off; Envoy arms it once the client has sent the whole request.
    const routeTimer = new Timer();
    const current = new Set<(cause: AbortCause) => void>();
    const timeoutMs = rule?.timeoutMs ?? 0;
    if (timeoutMs > 0) void x.body.whenEnded().then(() => !routeTimer.fired && !x.gone && routeTimer.arm(timeoutMs, () => current.forEach((f) => f('route-timeout'))));
    const goneHook = (): void => current.forEach((f) => f('downstream'));
    x.onGone.add(goneHook);

    const tried = new Set<string>();
    try {
      for (let attempt = 1; ; attempt++) {
        const ep = this.lb.pick(cluster, lbKind, endpoints, tried);
        if (!ep) {
          x.flags.push('UH');
          return this.localReply(x, 503, LOCAL_REPLY.noHealthyUpstream, 'no_healthy_upstream', respOps);
        }
        tried.add(endpointKey(ep));
        result.attempts = attempt;
        result.upstreamHost = endpointKey(ep);
        const attemptHeaders = this.opts.includeAttemptCount ? { ...headers, 'x-envoy-attempt-count': String(attempt) } : headers;
        const outcome = await this.attempt(x, ep, rewritten.path, attemptHeaders, retries?.perTryTimeoutMs, routeTimer, current, respOps);
        if (outcome === 'done') return;
        if (routeTimer.fired || x.gone) outcome.discard();
        if (x.gone) return;
        if (routeTimer.fired) {
          x.flags.push('UT');
          return this.localReply(x, 504, LOCAL_REPLY.timeout, 'upstream_response_timeout', respOps);
        }
        const decision = retryDecision(retries, outcome.outcome, attempt, x.body.replayable, this.random);
        if (decision.retry) {
          outcome.discard();
          await this.sleep(x, decision.backoffMs, current);
          if (x.gone) return;
          if (routeTimer.fired) {
            x.flags.push('UT');
            return this.localReply(x, 504, LOCAL_REPLY.timeout, 'upstream_response_timeout', respOps);
          }
          continue;
        }
        if (decision.limitExceeded) x.flags.push('URX');
        return this.finish(x, outcome, respOps);
      }
    } finally {
      routeTimer.clear();
      x.onGone.delete(goneHook);
      // An upstream may answer before reading the whole body: drop the rest so the client's connection stays usable.
      x.body.discard();
    }
  }

  /** The final attempt: forward its response, or answer its failure as Envoy's router does. */
  private finish(x: Exchange, o: PendingOutcome, respOps: HeaderOps | undefined): Promise<void> | void {
    switch (o.outcome.kind) {
      case 'response':
        return o.forward();
      case 'connect-failure':
        x.flags.push('UF');
        return this.localReply(x, 503, LOCAL_REPLY.connectFailure, 'upstream_reset_before_response_started{connection_failure}', respOps);
      case 'per-try-timeout':
        x.flags.push('UT');
        return this.localReply(x, 504, LOCAL_REPLY.timeout, 'upstream_per_try_timeout', respOps);
      case 'reset':
      case 'refused-stream':
        x.flags.push('UC');
        return this.localReply(x, 503, LOCAL_REPLY.connectionTermination, 'upstream_reset_before_response_started{connection_termination}', respOps);
    }
  }

  /**
   * One upstream attempt. Resolves 'done' when the response went downstream (or the client
   * left), else the outcome with a way to forward it (a response the retry policy may still
   * retry) or to throw it away.
   */
  private async attempt(
    x: Exchange,
    ep: L7Endpoint,
    path: string,
    headers: HeaderMap,
    perTryTimeoutMs: number | undefined,
    routeTimer: Timer,
    current: Set<(cause: AbortCause) => void>,
    respOps: HeaderOps | undefined,
  ): Promise<'done' | PendingOutcome> {
    const ctl = new AbortController();
    let cause: AbortCause | undefined;
    const abort = (c: AbortCause): void => {
      if (cause) return;
      cause = c;
      ctl.abort(new Error(c));
    };
    current.add(abort);
    if (x.gone) abort('downstream');
    if (routeTimer.fired) abort('route-timeout');
    const perTry = new Timer();
    if (perTryTimeoutMs && perTryTimeoutMs > 0) void x.body.whenEnded().then(() => !cause && perTry.arm(perTryTimeoutMs, () => abort('per-try-timeout')));
    const started = performance.now();
    this.lb.started(ep);
    let finished = false;
    const end = (): void => {
      if (finished) return;
      finished = true;
      perTry.clear();
      current.delete(abort);
      this.lb.finished(ep);
    };

    x.body.detach();
    const body: Readable | undefined = x.body.attach();
    let resp;
    try {
      resp = await this.pools.pool(ep).request({
        method: x.result.method as never,
        path,
        headers: headers as Record<string, string | string[]>,
        body: body ?? null,
        signal: ctl.signal,
      });
    } catch (err) {
      end();
      if (cause === 'downstream') return 'done';
      const kind: AttemptOutcome['kind'] = cause === 'per-try-timeout' ? 'per-try-timeout' : err instanceof UpstreamConnectError || hasCause(err, UpstreamConnectError) ? 'connect-failure' : 'reset';
      return { outcome: { kind } as AttemptOutcome, discard: () => undefined, forward: () => undefined };
    }
    const serviceTime = Math.round(performance.now() - started);
    const grpc = resp.headers['grpc-status'];
    const outcome: AttemptOutcome = { kind: 'response', status: resp.statusCode, grpcStatus: Array.isArray(grpc) ? grpc[0] : grpc };
    const upstream = resp;
    return {
      outcome,
      discard: () => {
        upstream.body.on('error', () => undefined);
        upstream.body.destroy();
        end();
      },
      forward: () =>
        new Promise<void>((resolve) => {
          const { res, result } = x;
          let h = stripHopByHop(upstream.headers as HeaderMap);
          h = applyHeaderOps(h, respOps);
          h['x-envoy-upstream-service-time'] = String(serviceTime);
          h.server = this.serverName;
          result.status = upstream.statusCode;
          result.upstreamServiceTimeMs = serviceTime;
          result.responseCodeDetails = 'via_upstream';
          res.writeHead(upstream.statusCode, h as Record<string, string | string[]>);
          const src = upstream.body;
          src.on('data', (chunk: Buffer) => {
            result.bytesSent += chunk.length;
            if (!res.write(chunk)) {
              src.pause();
              res.once('drain', () => src.resume());
            }
          });
          src.on('end', () => {
            end();
            res.end(() => resolve());
          });
          src.on('error', () => {
            end();
            // Headers are gone already: all Envoy can do is reset the downstream stream.
            if (cause === 'route-timeout' || cause === 'per-try-timeout') x.flags.push('UT');
            else if (cause !== 'downstream') x.flags.push('UC');
            res.destroy();
            resolve();
          });
          res.once('close', () => {
            if (!finished) {
              end();
              src.destroy();
            }
            resolve();
          });
        }),
    };
  }

  /** A local reply, as Envoy's sendLocalReply writes it: text/plain body, content-length, server. */
  private localReply(x: Exchange, status: number, body: string, details: string, respOps?: HeaderOps, extra: Record<string, string> = {}): void {
    const { res, result } = x;
    result.status = status;
    result.responseCodeDetails = details;
    x.body.discard();
    if (x.gone) return;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    let h: HeaderMap = { ...extra };
    if (body) h['content-type'] = 'text/plain';
    h['content-length'] = String(Buffer.byteLength(body));
    if (respOps) h = applyHeaderOps(h, respOps);
    h.server = this.serverName;
    res.writeHead(status, h as Record<string, string | string[]>);
    res.end(body);
    result.bytesSent += Buffer.byteLength(body);
  }

  /** Wait, cut short when the client leaves or (for a back-off, listening on `wakers`) the route timeout fires. */
  private sleep(x: Exchange, ms: number, wakers?: Set<(cause: AbortCause) => void>): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        wakers?.delete(done);
        x.onGone.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      wakers?.add(done);
      x.onGone.add(done);
    });
  }
}

interface PendingOutcome {
  outcome: AttemptOutcome;
  /** Throw the response away before a retry. */
  discard(): void;
  /** Send it downstream; resolves when done. */
  forward(): Promise<void> | void;
}

function hasCause(err: unknown, cls: new (...a: never[]) => Error): boolean {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    if (e instanceof cls) return true;
    e = (e as Error & { cause?: unknown }).cause;
  }
  return false;
}

/** A proxy may get absolute-form targets (http://host/path); routing works on origin-form. */
function absoluteToOrigin(target: string): string {
  if (target.startsWith('/')) return target;
  try {
    const u = new URL(target);
    return `${u.pathname}${u.search}`;
  } catch {
    return target;
  }
}
