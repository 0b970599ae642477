// :15006, plaintext to this node's pods from outside the mesh (ztunnel
// proxy/inbound_passthrough.rs): RBAC without an identity, then a spoofed connect.
import type net from 'node:net';
import { authorize } from '../mesh/authz.js';
import { copyBidirectional } from '../mesh/copy.js';
import { fmtAddr, plainIp, type ZtunnelContext } from './context.js';
import { recordConnection, recordOpened, type AccessRecord } from './logs.js';
import { handleOutbound, type ConnMeta } from './outbound.js';

export async function handleInboundPassthrough(z: ZtunnelContext, down: net.Socket, meta: ConnMeta = {}): Promise<AccessRecord> {
  const start = performance.now();
  down.on('error', () => undefined);
  const origDst = meta.origDst ?? { ip: plainIp(down.localAddress), port: down.localPort ?? 0 };
  const peer = meta.peer ?? { ip: plainIp(down.remoteAddress), port: down.remotePort ?? 0 };
  const srcWorkload = z.store.workload(peer.ip);
  const rec: AccessRecord = {
    direction: 'inbound_passthrough',
    src: { addr: fmtAddr(peer), ...(srcWorkload ? { workload: srcWorkload } : {}) },
    dst: { addr: fmtAddr(origDst) },
    outcome: 'failed',
    durationMs: 0,
    via: 'tcp',
  };
  const done = (outcome: AccessRecord['outcome'], extra: Partial<AccessRecord> = {}): AccessRecord => {
    Object.assign(rec, extra, { outcome, durationMs: performance.now() - start });
    recordConnection(z.log, z.metrics, rec);
    return rec;
  };

  const dst = z.store.workload(origDst.ip);
  if (!dst) {
    down.destroy();
    return done('failed', { reason: `unknown destination ${origDst.ip}` });
  }
  rec.dst.workload = dst;
  const svc = z.store.serviceForWorkload(dst);
  if (svc) rec.dst.service = svc.hostname;

  if (dst.waypointAddresses.length > 0) {
    // Hairpin: plaintext callers still go through the waypoint, via the outbound logic.
    if (!srcWorkload) {
      down.destroy();
      return done('failed', { reason: 'destination has a waypoint; hairpin needs a known source workload' });
    }
    return handleOutbound({ ...z, dialer: { ...z.dialer, mode: 'off' } }, down, { origDst, peer });
  }

  // Plaintext has no identity: namespace/principal matches fail, IP/port ones still apply.
  const d = authorize({ srcIp: peer.ip, dstIp: origDst.ip, dstPort: origDst.port }, z.store.policiesFor(dst));
  if (!d.allowed) {
    down.destroy();
    return done('denied', { reason: d.reason, ...(d.policy ? { policy: d.policy } : {}) });
  }
  let upstream;
  try {
    upstream = await z.dialer.connected(origDst, peer.ip);
  } catch (e) {
    down.destroy();
    return done('failed', { reason: `connect ${fmtAddr(origDst)}: ${(e as Error).message}` });
  }
  rec.spoofed = upstream.spoofed;
  recordOpened(z.metrics, rec);
  const r = await copyBidirectional(down, upstream.socket);
  return done('complete', { bytesSent: r.aToB, bytesRecv: r.bToA, ...(r.error ? { reason: r.error.message } : {}) });
}
