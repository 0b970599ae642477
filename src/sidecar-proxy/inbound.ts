// The sidecar's inbound side: connections the pod's iptables REDIRECTed to 15006 (plaintext,
// or Istio mTLS told apart by the first byte), and HBONE tunnels terminated on 15008. Both end
// in the same chain, as Envoy's inbound listener and its connect_terminate -> main_internal
// do: HTTP ports of the pod go through the L7 engine with the pod's AuthorizationPolicies (403
// `RBAC: access denied`, server: istio-envoy) and get x-forwarded-client-cert for a peer with
// a certificate; other ports get L4 authorization. The app is reached from 127.0.0.6, Envoy's
// inbound passthrough source, which ISTIO_OUTPUT lets through (`-o lo -s 127.0.0.6 -j RETURN`).
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { authorize, policyMatches, type Authorization, type RbacConnection } from '../mesh/authz.js';
import type { L7AuthorizationPolicy } from '../l7/model.js';
import { copyBidirectional } from '../mesh/copy.js';
import { plainDuplex } from '../mesh/duplex-adapter.js';
import { createHboneServer, type Address, type HboneRequest, type HboneServer } from '../mesh/hbone-server.js';
import { principalOf, type SpiffeId } from '../mesh/identity.js';
import { STRICT_POLICY_NAME } from '../mesh/peer-authn.js';
import { resetWrapped } from '../mesh/tcp-reset.js';
import { ConnectionResult, type AccessRecord } from '../proxy/connection.js';
import { fmtAddr, plainIp } from '../proxy/inputs.js';
import type { DownstreamInfo } from '../l7/engine.js';
import { acceptIstioMtls, formatXfcc, looksLikeTls, peekFirstChunk } from './istio-mtls.js';
import { isHttpPodPort, serviceOfPodPort } from './request-log.js';
import { isSelfAddressed, ownWorkload, type SidecarContext } from './context.js';

/** Who is calling, as the inbound chain knows it. */
export interface InboundPeer {
  ip: string;
  port: number;
  /** From the mTLS or HBONE certificate; absent for plaintext. */
  identity?: SpiffeId;
  /** The peer certificate's hash and subject (Istio mTLS only: HBONE tunnels do not expose it). */
  cert?: { hash: string; subject: string };
}

export type InboundVerdict =
  /** `policies`: the L4 policies' verdict on this connection, for the HTTP RBAC filter to combine with the L7 ones. */
  | { kind: 'http'; service?: string; policies: L7AuthorizationPolicy[] }
  | { kind: 'tcp'; service?: string; reason: string; policy?: string }
  | { kind: 'denied'; reason: string; policy?: string };

const keyOf = (p: { namespace: string; name: string }): string => `${p.namespace}/${p.name}`;

/**
 * The L4 policies' part in an HTTP port's RBAC, as policies the engine evaluates with the L7
 * ones (Envoy's HTTP RBAC filter sees every policy at once): a matching DENY denies every
 * request; a matching ALLOW allows every request (L7 DENYs still apply); ALLOW policies none of
 * which matched leave the decision to the L7 ALLOWs, and deny if there are none.
 */
export function connectionPolicies(policies: Authorization[], c: RbacConnection): L7AuthorizationPolicy[] {
  const synth = (p: Authorization, action: 'ALLOW' | 'DENY', all: boolean): L7AuthorizationPolicy => ({
    name: p.name, namespace: p.namespace, origin: `AuthorizationPolicy ${keyOf(p)} (L4)`, action,
    target: { namespace: true }, rules: all ? [{}] : [],
  });
  const deny = policies.find((p) => p.action === 'Deny' && policyMatches(p, c));
  if (deny) return [synth(deny, 'DENY', true)];
  const allows = policies.filter((p) => p.action === 'Allow');
  if (!allows.length) return [];
  const allow = allows.find((p) => policyMatches(p, c));
  return allow ? [synth(allow, 'ALLOW', true)] : [synth(allows[0], 'ALLOW', false)];
}

/** What the chain does with a connection to `target` (this pod's IP:port) from `peer`, before any byte goes to the app. */
export function inboundVerdict(s: SidecarContext, peer: InboundPeer, target: Address): InboundVerdict {
  const { store } = s.z.xds.snapshot;
  const cfg = s.z.cfg;
  const svc = serviceOfPodPort(store, cfg.instanceIp, target.port)?.service.hostname;
  const self = ownWorkload(s);
  const all = self ? store.policiesFor(self) : [];
  const conn: RbacConnection = { ...(peer.identity ? { srcIdentity: peer.identity } : {}), srcIp: peer.ip, dstIp: target.ip, dstPort: target.port };
  if (isHttpPodPort(cfg, store, cfg.instanceIp, target.port)) {
    // A policy with L7 rules also comes in its L7 form (cfg.l7Policies): on an HTTP port that
    // one applies, not istiod's L4 conversion of it.
    const l7 = new Set(cfg.l7Policies.map(keyOf));
    return { kind: 'http', ...(svc ? { service: svc } : {}), policies: connectionPolicies(all.filter((p) => !l7.has(keyOf(p))), conn) };
  }
  const d = authorize(conn, all);
  if (!d.allowed) return { kind: 'denied', reason: d.reason, ...(d.policy ? { policy: d.policy } : {}) };
  return { kind: 'tcp', reason: d.reason, ...(svc ? { service: svc } : {}), ...(d.policy ? { policy: d.policy } : {}) };
}

/** A connection to the app, from Envoy's inbound passthrough address. */
export function connectApp(s: SidecarContext, target: Address, timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: target.ip, port: target.port, localAddress: s.appSource, allowHalfOpen: true });
    const timer = setTimeout(() => sock.destroy(new Error(`connect ${fmtAddr(target)} timed out`)), timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
  });
}

/** What the L7 engine is told about an inbound HTTP connection. */
export function inboundInfo(s: SidecarContext, peer: InboundPeer, target: Address): DownstreamInfo {
  return {
    srcIp: peer.ip,
    ...(peer.identity ? {
      srcPrincipal: principalOf(peer.identity),
      srcNamespace: peer.identity.namespace,
      forwardClientCert: formatXfcc(s.identity, peer.identity, peer.cert),
    } : {}),
    dstIp: target.ip,
    dstPort: target.port,
  };
}

/** Bytes of a connection so far: from the client, to the client. */
type Counters = () => { aToB: number; bToA: number };

/** Counts what passes through a stream the HTTP server reads and writes through an adapter. */
export function countStream(stream: Duplex): Counters {
  let up = 0;
  let down = 0;
  stream.on('data', (b: Buffer) => { up += b.length; });
  const write = stream.write.bind(stream) as (...a: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    down += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).length;
    return write(chunk, ...rest);
  }) as typeof stream.write;
  return () => ({ aToB: up, bToA: down });
}

/** Serves HTTP on an accepted inbound connection; the engine logs each request, `result` is the connection. */
function serveHttp(s: SidecarContext, conn: Duplex, peer: InboundPeer, target: Address, result: ConnectionResult, bytes: Counters, policies: L7AuthorizationPolicy[]): void {
  result.rec.via = `${result.rec.via ?? 'tcp'}+http`;
  result.opened();
  const t0 = performance.now();
  conn.once('close', () => result.complete({ ...bytes(), durationMs: performance.now() - t0 }));
  s.inboundHttp.serve(conn, { ...inboundInfo(s, peer, target), ...(policies.length ? { connectionPolicies: policies } : {}) });
}

function newResult(s: SidecarContext, peer: InboundPeer, target: Address, via: string, hboneAddr?: string): ConnectionResult {
  const { store } = s.z.xds.snapshot;
  const src = store.workload(peer.ip);
  const self = ownWorkload(s);
  return new ConnectionResult(s.z, {
    direction: 'inbound',
    src: { addr: fmtAddr(peer), ...(src ? { workload: src } : {}), ...(peer.identity ? { identity: peer.identity } : {}) },
    dst: { addr: fmtAddr(target), identity: s.identity, ...(self ? { workload: self } : {}), ...(hboneAddr ? { hboneAddr } : {}) },
    via,
  });
}

/** :15006: a REDIRECTed connection to one of the app's ports. */
export async function handleInboundCapture(s: SidecarContext, raw: net.Socket, origDstIn?: Address): Promise<AccessRecord | undefined> {
  raw.on('error', () => undefined);
  const peer: InboundPeer = { ip: plainIp(raw.remoteAddress), port: raw.remotePort ?? 0 };
  let target: Address;
  try {
    target = origDstIn ?? s.origDstOf(raw);
  } catch (e) {
    raw.destroy();
    return newResult(s, peer, { ip: plainIp(raw.localAddress), port: raw.localPort ?? 0 }, 'tcp').failed(`no original destination: ${(e as Error).message}`);
  }
  if (isSelfAddressed(s, target)) {
    raw.destroy();
    return newResult(s, peer, target, 'tcp').failed(`${fmtAddr(target)} is this proxy's own listener (not a redirected connection): refused, it would loop`);
  }
  const cfg = s.z.cfg;
  const mode = cfg.mtls.ports[target.port] ?? cfg.mtls.mode;
  // DISABLE: Envoy's inbound chain has no TLS at all; whatever comes is the app's business.
  const first = mode === 'DISABLE' ? Buffer.alloc(0) : await peekFirstChunk(raw);
  if (first === null) {
    raw.destroy();
    return undefined;
  }
  let conn: Duplex = raw;
  let reset = (): void => void raw.resetAndDestroy();
  let via = 'tcp';
  if (looksLikeTls(first)) {
    via = 'mtls';
    try {
      const m = await acceptIstioMtls(s.z.tls, raw, s.identity);
      conn = m.stream;
      peer.identity = m.peer;
      peer.cert = { hash: m.certHash, subject: m.certSubject };
      reset = () => resetWrapped(raw, m.stream);
    } catch (e) {
      resetWrapped(raw, raw);
      return newResult(s, peer, target, via).failed((e as Error).message);
    }
  } else if (mode === 'STRICT') {
    raw.resetAndDestroy();
    return newResult(s, peer, target, via).denied(`plaintext refused: PeerAuthentication STRICT on port ${target.port}`, { policy: `${cfg.pod.namespace}/${STRICT_POLICY_NAME}` });
  } else {
    // The peeked bytes were put back into the socket's JS buffer: read them through a JS stream.
    conn = plainDuplex(raw);
  }
  const result = newResult(s, peer, target, via);
  const v = inboundVerdict(s, peer, target);
  if (v.kind === 'denied') {
    reset();
    return result.denied(v.reason, v.policy ? { policy: v.policy } : {});
  }
  if (v.service) result.rec.dst.service = v.service;
  if (v.kind === 'http') {
    serveHttp(s, conn, peer, target, result, () => ({ aToB: raw.bytesRead, bToA: raw.bytesWritten }), v.policies);
    return undefined;
  }
  let app: net.Socket;
  try {
    app = await connectApp(s, target);
  } catch (e) {
    reset();
    return result.failed(`connect ${fmtAddr(target)}: ${(e as Error).message}`);
  }
  result.opened();
  return result.complete(await copyBidirectional(conn, app));
}

/** :15008: HBONE to this pod only (authority <podIP>:<port>), then the same chain. */
export function createSidecarHbone(s: SidecarContext): HboneServer {
  // Refusals this handler already logged with the whole story; the server reports every
  // refusal again (onRefused), which is only news for the ones it decided itself.
  const logged = new Set<string>();
  const reject = (req: HboneRequest, status: 400 | 401 | 503, reason: string): void => {
    logged.add(reason);
    req.reject(status, reason);
    logged.delete(reason);
  };
  const onRequest = async (req: HboneRequest): Promise<void> => {
    const peer: InboundPeer = { ip: req.peer.ip, port: req.peer.port, identity: req.peer.identity };
    const result = newResult(s, peer, req.target, 'hbone', fmtAddr(req.origDst));
    if (req.target.ip !== s.z.cfg.instanceIp) {
      reject(req, 400, `authority ${req.authority} is not this pod (${s.z.cfg.instanceIp})`);
      result.failed(`authority ${req.authority} is not this pod`, { status: 400 });
      return;
    }
    const v = inboundVerdict(s, peer, req.target);
    if (v.kind === 'denied') {
      reject(req, 401, v.reason);
      result.denied(v.reason, { status: 401, ...(v.policy ? { policy: v.policy } : {}) });
      return;
    }
    if (v.service) result.rec.dst.service = v.service;
    if (v.kind === 'http') {
      const tunnel = req.accept();
      const bytes = countStream(tunnel);
      serveHttp(s, plainDuplex(tunnel), peer, req.target, result, bytes, v.policies);
      return;
    }
    let app: net.Socket;
    try {
      app = await connectApp(s, req.target);
    } catch (e) {
      reject(req, 503, (e as Error).message);
      result.failed(`connect ${req.authority}: ${(e as Error).message}`, { status: 503 });
      return;
    }
    const tunnel = req.accept();
    result.opened();
    result.complete(await copyBidirectional(tunnel, app));
  };
  return createHboneServer({
    tls: s.z.tls,
    refusals: s.z.metrics.refusals,
    // Only connections addressed to this pod; the authority must name it too (else 400).
    identityFor: (ip) => (ip === s.z.cfg.instanceIp ? s.identity : undefined),
    requireAuthorityOnOrigDst: true,
    onRequest: (req) => void onRequest(req),
    onRefused: (r) => {
      if (logged.has(r.reason)) return;
      new ConnectionResult(s.z, {
        direction: 'inbound', src: { addr: r.peerIp ?? 'unknown' },
        dst: { addr: r.authority ?? fmtAddr(r.origDst), hboneAddr: fmtAddr(r.origDst) }, via: 'hbone',
      }).failed(r.reason, r.status ? { status: r.status } : {});
    },
  });
}
