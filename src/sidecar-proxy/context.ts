// What every listener of one sidecar proxy shares: the proxy core's inputs (kind 'sidecar'),
// the pod's identity, the two L7 engines (outbound: client-side routing; inbound: the pod's
// RBAC) with the HTTP servers that feed them, the request metrics, and how to learn a
// redirected connection's original destination.
import type net from 'node:net';
import type { Address } from '../mesh/hbone-server.js';
import type { SpiffeId } from '../mesh/identity.js';
import type { Workload } from '../mesh/workloads.js';
import type { L7Engine } from '../l7/engine.js';
import type { ProxyInputs } from '../proxy/inputs.js';
import type { L7Server } from '../proxy/l7-server.js';
import type { RequestMetrics } from '../proxy/request-metrics.js';
import type { SidecarConfig } from './config.js';

export type SidecarInputs = ProxyInputs<SidecarConfig>;

export interface SidecarContext {
  z: SidecarInputs;
  identity: SpiffeId;
  outboundEngine: L7Engine;
  inboundEngine: L7Engine;
  outboundHttp: L7Server;
  inboundHttp: L7Server;
  requests: RequestMetrics;
  /** SO_ORIGINAL_DST of a REDIRECTed connection (tests inject it). */
  origDstOf(sock: net.Socket): Address;
  /** Where inbound connections to the app come from (Envoy's inbound passthrough bind, 127.0.0.6). */
  appSource: string;
  /** The proxy's own listening ports: a connection whose original destination is one of them is a loop. */
  ownPorts: Set<number>;
}

/** A connection addressed to this proxy's own listener (not REDIRECTed): serving it would call ourselves forever. */
export const isSelfAddressed = (s: SidecarContext, dst: { ip: string; port: number }): boolean =>
  s.ownPorts.has(dst.port) && (dst.ip === s.z.cfg.instanceIp || dst.ip.startsWith('127.') || dst.ip === '0.0.0.0');

/** This pod's workload as the control plane lists it (absent only in a broken config). */
export const ownWorkload = (s: SidecarContext): Workload | undefined => s.z.xds.snapshot.store.workload(s.z.cfg.instanceIp);
