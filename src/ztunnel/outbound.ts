// :15001, traffic captured from this node's ambient pods (ztunnel proxy/outbound.rs).
// The original destination is the accepted socket's local address (TPROXY keeps it).
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { authorize } from '../mesh/authz.js';
import { copyBidirectional } from '../mesh/copy.js';
import { HBONE_PORT, HboneError, formatAuthority } from '../mesh/hbone-client.js';
import type { Address } from '../mesh/hbone-server.js';
import type { SpiffeId } from '../mesh/identity.js';
import type { Service, Workload, WorkloadStore } from '../mesh/workloads.js';
import { workloadIdentity } from '../mesh/workloads.js';
import type { ZtunnelConfig } from './config.js';
import { fmtAddr, plainIp, type ZtunnelContext } from './context.js';
import { recordConnection, recordOpened, type AccessRecord } from './logs.js';

/** How one outbound connection is carried; decided before any socket is opened. */
export type OutboundRequest =
  | { kind: 'passthrough'; target: Address }
  | { kind: 'tcp'; target: Address; workload: Workload; service?: Service }
  /** Same node, destination without its own HBONE: RBAC here, then straight to the pod. */
  | { kind: 'direct-local'; target: Address; workload: Workload; service?: Service }
  | {
    kind: 'hbone';
    /** Where the TCP+TLS goes (pod or waypoint :15008, or the gateway address). */
    hboneAddr: Address;
    authority: string;
    /** The final destination (pod:targetPort, or the original VIP:port via a waypoint). */
    target: Address;
    expected: SpiffeId;
    workload: Workload;
    service?: Service;
    waypoint?: Workload;
  };

export class OutboundError extends Error {
  override name = 'OutboundError';
}

function parseHostPort(s: string): Address | undefined {
  const i = s.lastIndexOf(':');
  if (i < 0) return undefined;
  const port = Number(s.slice(i + 1));
  return Number.isInteger(port) ? { ip: s.slice(0, i).replace(/^\[|\]$/g, ''), port } : undefined;
}

/** ztunnel's build_request: the upstream for origDst, as seen from `src` on node `cfg.node`. */
export function buildOutboundRequest(store: WorkloadStore, cfg: Pick<ZtunnelConfig, 'node' | 'instanceIp'>, origDst: Address, random: () => number = Math.random): OutboundRequest {
  if (origDst.ip === cfg.instanceIp) throw new OutboundError(`call to ztunnel's own address ${origDst.ip} refused (SelfCall)`);
  const up = store.findUpstream(origDst.ip, origDst.port, random);
  if (!up) return { kind: 'passthrough', target: origDst };
  const { workload, service } = up;
  const target = { ip: workload.workloadIp, port: up.port };
  const svc = service ? { service } : {};

  if (workload.waypointAddresses.length > 0) {
    const wpIp = workload.waypointAddresses[Math.floor(random() * workload.waypointAddresses.length)];
    const waypoint = store.workload(wpIp);
    if (!waypoint) throw new OutboundError(`waypoint ${wpIp} of ${workload.namespace}/${workload.name} is not a known workload`);
    return {
      kind: 'hbone', hboneAddr: { ip: wpIp, port: HBONE_PORT }, authority: formatAuthority(origDst), target: origDst,
      expected: workloadIdentity(waypoint), workload, waypoint, ...svc,
    };
  }
  if (workload.protocol === 'HBONE') {
    if (workload.node === cfg.node && !workload.nativeHbone) return { kind: 'direct-local', target, workload, ...svc };
    const hboneAddr = (workload.gatewayAddress && parseHostPort(workload.gatewayAddress)) || { ip: workload.workloadIp, port: HBONE_PORT };
    return { kind: 'hbone', hboneAddr, authority: formatAuthority(target), target, expected: workloadIdentity(workload), workload, ...svc };
  }
  return { kind: 'tcp', target, workload, ...svc };
}

/** `baggage` as ztunnel sends it for the source workload. */
export function baggageOf(w: Workload, clusterId: string): string {
  return [
    `k8s.cluster.name=${w.clusterId || clusterId}`,
    `k8s.namespace.name=${w.namespace}`,
    `k8s.${w.workloadType || 'pod'}.name=${w.workloadName || w.name}`,
    `service.name=${w.canonicalName}`,
    `service.version=${w.canonicalRevision}`,
  ].join(',');
}

export interface ConnMeta {
  /** Defaults to the socket's local address (the original destination under TPROXY). */
  origDst?: Address;
  /** Defaults to the socket's remote address. */
  peer?: Address;
}

export async function handleOutbound(z: ZtunnelContext, down: net.Socket, meta: ConnMeta = {}): Promise<AccessRecord> {
  const start = performance.now();
  down.on('error', () => undefined);
  const origDst = meta.origDst ?? { ip: plainIp(down.localAddress), port: down.localPort ?? 0 };
  const peer = meta.peer ?? { ip: plainIp(down.remoteAddress), port: down.remotePort ?? 0 };
  const src = z.store.workload(peer.ip);
  const rec: AccessRecord = {
    direction: 'outbound',
    src: { addr: fmtAddr(peer), ...(src ? { workload: src } : {}) },
    dst: { addr: fmtAddr(origDst) },
    outcome: 'failed',
    durationMs: 0,
  };
  const done = (outcome: AccessRecord['outcome'], extra: Partial<AccessRecord> = {}): AccessRecord => {
    Object.assign(rec, extra, { outcome, durationMs: performance.now() - start });
    recordConnection(z.log, z.metrics, rec);
    return rec;
  };
  const fail = (reason: string, extra: Partial<AccessRecord> = {}): AccessRecord => {
    down.destroy();
    return done('failed', { reason, ...extra });
  };

  if (!src) return fail(`unknown source workload ${peer.ip}`);
  let req: OutboundRequest;
  try {
    req = buildOutboundRequest(z.store, z.cfg, origDst, z.random);
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
          z.store.policiesFor(req.workload),
        );
        if (!d.allowed) {
          down.destroy();
          return done('denied', { reason: d.reason, ...(d.policy ? { policy: d.policy } : {}) });
        }
      }
      const c = await z.dialer.connected(req.target, peer.ip);
      rec.spoofed = c.spoofed;
      upstream = c.socket;
    }
  } catch (e) {
    const status = e instanceof HboneError ? e.status : undefined;
    return fail((e as Error).message, status ? { status } : {});
  }
  recordOpened(z.metrics, rec);
  const r = await copyBidirectional(down, upstream);
  return done('complete', { bytesSent: r.aToB, bytesRecv: r.bToA, ...(r.error ? { reason: r.error.message } : {}) });
}
