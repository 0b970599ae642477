// :15008, HBONE to this node's pods (ztunnel proxy/inbound.rs). TLS is terminated as the
// workload the connection was addressed to; each CONNECT is authorized and connected to
// its authority with the client's address as source.
import { authorize } from '../mesh/authz.js';
import { copyBidirectional } from '../mesh/copy.js';
import { createHboneServer, type HboneRequest, type HboneServer } from '../mesh/hbone-server.js';
import { sameIdentity } from '../mesh/identity.js';
import { workloadIdentity, type Workload } from '../mesh/workloads.js';
import { fmtAddr, type ZtunnelContext } from './context.js';
import { recordConnection, recordOpened, type AccessRecord } from './logs.js';

/** Is `peer` one of the destination's waypoints (which already applied policy)? */
function fromWaypoint(z: ZtunnelContext, dst: Workload, req: HboneRequest): boolean {
  return dst.waypointAddresses.some((ip) => {
    const wp = z.store.workload(ip);
    return !!wp && sameIdentity(workloadIdentity(wp), req.peer.identity);
  });
}

export async function handleInboundRequest(z: ZtunnelContext, req: HboneRequest): Promise<AccessRecord> {
  const start = performance.now();
  const rec: AccessRecord = {
    direction: 'inbound',
    src: { addr: fmtAddr(req.peer), identity: req.peer.identity },
    dst: { addr: req.authority, hboneAddr: fmtAddr(req.origDst) },
    outcome: 'failed',
    durationMs: 0,
    via: 'hbone',
  };
  const done = (outcome: AccessRecord['outcome'], extra: Partial<AccessRecord> = {}): AccessRecord => {
    Object.assign(rec, extra, { outcome, durationMs: performance.now() - start });
    recordConnection(z.log, z.metrics, rec);
    return rec;
  };

  const dst = z.store.workload(req.target.ip);
  if (!dst) {
    req.reject(404, 'unknown destination');
    return done('failed', { status: 404, reason: `unknown destination ${req.target.ip}` });
  }
  rec.dst.workload = dst;
  const svc = z.store.serviceForWorkload(dst);
  if (svc) rec.dst.service = svc.hostname;

  let srcIp = req.peer.ip;
  const viaWaypoint = fromWaypoint(z, dst, req);
  // The waypoint enforced policy; the real client is in Forwarded when it sends one.
  if (viaWaypoint && req.forwardedFor) {
    srcIp = req.forwardedFor;
    rec.src.addr = srcIp;
  }
  const srcWorkload = z.store.workload(srcIp);
  if (srcWorkload) rec.src.workload = srcWorkload;
  if (viaWaypoint) {
    rec.reason = 'from a waypoint of the destination: RBAC skipped';
  } else if (dst.waypointAddresses.length > 0) {
    req.reject(401, 'waypoint bypassed');
    return done('denied', { status: 401, reason: 'destination has a waypoint; direct HBONE refused' });
  } else {
    const d = authorize({ srcIdentity: req.peer.identity, srcIp, dstIp: req.target.ip, dstPort: req.target.port }, z.store.policiesFor(dst));
    if (!d.allowed) {
      req.reject(401, d.reason);
      return done('denied', { status: 401, reason: d.reason, ...(d.policy ? { policy: d.policy } : {}) });
    }
  }

  let upstream;
  try {
    upstream = await z.dialer.connected(req.target, srcIp);
  } catch (e) {
    req.reject(503, (e as Error).message);
    return done('failed', { status: 503, reason: `connect ${req.authority}: ${(e as Error).message}` });
  }
  rec.spoofed = upstream.spoofed;
  const down = req.accept();
  recordOpened(z.metrics, rec);
  const r = await copyBidirectional(down, upstream.socket);
  return done('complete', { bytesSent: r.aToB, bytesRecv: r.bToA, ...(r.error ? { reason: r.error.message } : {}) });
}

export function createInbound(z: ZtunnelContext): HboneServer {
  return createHboneServer({
    tls: z.tls,
    identityFor: (ip) => {
      const w = z.store.workload(ip);
      return w ? workloadIdentity(w) : undefined;
    },
    onRequest: (req) => void handleInboundRequest(z, req),
    onRefused: (r) => {
      const rec: AccessRecord = {
        direction: 'inbound',
        src: { addr: r.peerIp ?? 'unknown' },
        dst: { addr: r.authority ?? fmtAddr(r.origDst), hboneAddr: fmtAddr(r.origDst) },
        outcome: 'failed',
        durationMs: 0,
        via: 'hbone',
        reason: r.reason,
        ...(r.status ? { status: r.status } : {}),
      };
      recordConnection(z.log, z.metrics, rec);
    },
  });
}
