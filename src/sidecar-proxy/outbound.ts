// :15001, the app's outbound connections, REDIRECTed by ISTIO_OUTPUT (reference §4). The
// original destination comes from SO_ORIGINAL_DST; the decision is the proxy core's, made as
// a sidecar (no same-node fast path; with a waypoint, the pod is chosen here). An HTTP port of
// the destination Service goes through the L7 engine client-side (routes, retries with Istio's
// default policy, timeouts, faults, server: envoy); anything else is proxied as TCP over the
// transport the endpoint needs (transport.ts).
import type net from 'node:net';
import { copyBidirectional } from '../mesh/copy.js';
import { HboneError } from '../mesh/hbone-client.js';
import type { Address } from '../mesh/hbone-server.js';
import { principalOf } from '../mesh/identity.js';
import { ConnectionResult, type AccessRecord } from '../proxy/connection.js';
import { fmtAddr, plainIp } from '../proxy/inputs.js';
import { buildOutboundRequest, type OutboundRequest } from '../proxy/outbound-request.js';
import type { DownstreamInfo } from '../l7/engine.js';
import { dialTransport } from './dial.js';
import { isHttpPodPort } from './request-log.js';
import { transportFor } from './transport.js';
import { isSelfAddressed, ownWorkload, type SidecarContext } from './context.js';

/** Whether the decided destination speaks HTTP: the Service port (VIP) or the pod port behind an HTTP Service port. */
export function outboundIsHttp(s: SidecarContext, req: OutboundRequest, origDst: Address): boolean {
  if (req.kind === 'passthrough') return false;
  const cfg = s.z.cfg;
  if (req.service && req.service.vips.includes(origDst.ip)) return (cfg.httpPorts[req.service.hostname] ?? []).includes(origDst.port);
  return isHttpPodPort(cfg, s.z.xds.snapshot.store, req.workload.workloadIp, origDst.port);
}

export async function handleOutbound(s: SidecarContext, down: net.Socket, origDstIn?: Address): Promise<AccessRecord | undefined> {
  const { z } = s;
  down.on('error', () => undefined);
  const { store } = z.xds.snapshot;
  const peer = { ip: plainIp(down.remoteAddress), port: down.remotePort ?? 0 };
  const self = ownWorkload(s);
  const result = new ConnectionResult(z, {
    direction: 'outbound',
    src: { addr: fmtAddr(peer), identity: s.identity, ...(self ? { workload: self } : {}) },
    dst: { addr: '?' },
  });
  const rec = result.rec;
  let origDst: Address;
  try {
    origDst = origDstIn ?? s.origDstOf(down);
  } catch (e) {
    down.destroy();
    return result.failed(`no original destination: ${(e as Error).message}`);
  }
  rec.dst.addr = fmtAddr(origDst);
  if (isSelfAddressed(s, origDst)) {
    down.destroy();
    return result.failed(`${fmtAddr(origDst)} is this proxy's own listener (not a redirected connection): refused, it would loop`);
  }
  let req: OutboundRequest;
  try {
    req = buildOutboundRequest(store, { kind: 'sidecar', node: z.cfg.node, instanceIp: z.cfg.instanceIp }, origDst, z.random);
  } catch (e) {
    down.destroy();
    return result.failed((e as Error).message);
  }

  if (outboundIsHttp(s, req, origDst) && req.kind !== 'passthrough') {
    const viaVip = req.service && req.service.vips.includes(origDst.ip);
    const info: DownstreamInfo = {
      ...(viaVip ? { service: { host: req.service!.hostname, port: origDst.port } } : {}),
      srcIp: z.cfg.instanceIp,
      srcPrincipal: principalOf(s.identity),
      srcNamespace: s.identity.namespace,
      dstIp: origDst.ip,
      dstPort: origDst.port,
    };
    // The engine logs each request; this record is the app's connection that carried them.
    rec.via = 'http';
    if (req.service) rec.dst.service = req.service.hostname;
    result.opened();
    down.once('close', () => result.complete({ aToB: down.bytesRead, bToA: down.bytesWritten, durationMs: 0 }));
    s.outboundHttp.serve(down, info);
    return undefined;
  }

  const t = transportFor(z.cfg, store, req);
  rec.via = t.kind;
  if (t.kind !== 'passthrough') {
    rec.dst = { ...rec.dst, addr: fmtAddr(t.target), workload: t.workload, ...(t.service ? { service: t.service.hostname } : {}) };
    if (t.kind === 'hbone') {
      rec.dst.hboneAddr = fmtAddr(t.hboneAddr);
      if (t.waypoint) rec.dst.identity = t.expected;
    }
  }
  let upstream;
  try {
    upstream = await dialTransport(s, t);
  } catch (e) {
    const status = e instanceof HboneError ? e.status : undefined;
    // Refused by the other side's authorization: the app sees a reset, as from Envoy.
    if (status === 401) down.resetAndDestroy();
    else down.destroy();
    return result.failed((e as Error).message, status ? { status } : {});
  }
  result.opened();
  return result.complete(await copyBidirectional(down, upstream));
}
