// :15001, traffic captured from this node's ambient pods (ztunnel proxy/outbound.rs).
// The original destination is the accepted socket's local address (TPROXY keeps it); the
// decision is the proxy core's buildOutboundRequest, made as a shared node proxy.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { authorize } from '../mesh/authz.js';
import { copyBidirectional } from '../mesh/copy.js';
import { HboneError } from '../mesh/hbone-client.js';
import type { Address } from '../mesh/hbone-server.js';
import { workloadIdentity } from '../mesh/workloads.js';
import { ConnectionResult, type AccessRecord } from '../proxy/connection.js';
import { fmtAddr, plainIp } from '../proxy/inputs.js';
import { baggageOf, buildOutboundRequest, type OutboundRequest } from '../proxy/outbound-request.js';
import type { ZtunnelInputs } from './config.js';

export interface ConnMeta {
  /** Defaults to the socket's local address (the original destination under TPROXY). */
  origDst?: Address;
  /** Defaults to the socket's remote address. */
  peer?: Address;
}

export async function handleOutbound(z: ZtunnelInputs, down: net.Socket, meta: ConnMeta = {}): Promise<AccessRecord> {
  down.on('error', () => undefined);
  const { store } = z.xds.snapshot;
  const origDst = meta.origDst ?? { ip: plainIp(down.localAddress), port: down.localPort ?? 0 };
  const peer = meta.peer ?? { ip: plainIp(down.remoteAddress), port: down.remotePort ?? 0 };
  const src = store.workload(peer.ip);
  const result = new ConnectionResult(z, {
    direction: 'outbound',
    src: { addr: fmtAddr(peer), ...(src ? { workload: src } : {}) },
    dst: { addr: fmtAddr(origDst) },
  });
  const rec = result.rec;
  const fail = (reason: string, extra: { status?: number } = {}): AccessRecord => {
    down.destroy();
    return result.failed(reason, extra);
  };

  if (!src) return fail(`unknown source workload ${peer.ip}`);
  let req: OutboundRequest;
  try {
    req = buildOutboundRequest(store, { kind: z.kind, node: z.cfg.node, instanceIp: z.cfg.instanceIp }, origDst, z.random);
  } catch (e) {
    return fail((e as Error).message);
  }
  rec.via = req.kind;
  if (req.kind !== 'passthrough') {
    rec.dst = { ...rec.dst, addr: fmtAddr(req.target), workload: req.workload, ...(req.service ? { service: req.service.hostname } : {}) };
  }

  let upstream: Duplex;
  try {
    if (req.kind === 'hbone') {
      rec.dst.hboneAddr = fmtAddr(req.hboneAddr);
      if (req.waypoint) rec.dst.identity = req.expected;
      const srcIp = z.dialer.mode === 'off' ? undefined : peer.ip;
      const { stream } = await z.pool.connect(
        { source: workloadIdentity(src), expected: req.expected, address: req.hboneAddr, ...(srcIp ? { srcIp } : {}) },
        req.authority,
        { baggage: baggageOf(src, z.cfg.clusterId), forwardedFor: peer.ip },
      );
      upstream = stream;
    } else {
      if (req.kind === 'direct-local') {
        const d = authorize(
          { srcIdentity: workloadIdentity(src), srcIp: peer.ip, dstIp: req.target.ip, dstPort: req.target.port },
          store.policiesFor(req.workload),
        );
        if (!d.allowed) {
          // As ztunnel: an L4 deny resets the client's connection (curl: exit 56).
          down.resetAndDestroy();
          return result.denied(d.reason, d.policy ? { policy: d.policy } : {});
        }
      }
      const c = await z.dialer.connected(req.target, peer.ip);
      rec.spoofed = c.spoofed;
      upstream = c.socket;
    }
  } catch (e) {
    const status = e instanceof HboneError ? e.status : undefined;
    // 401 = the destination's ztunnel (or waypoint) denied it: reset, as a local deny does.
    if (status === 401) {
      down.resetAndDestroy();
      return result.failed((e as Error).message, { status });
    }
    return fail((e as Error).message, status ? { status } : {});
  }
  result.opened();
  return result.complete(await copyBidirectional(down, upstream));
}
