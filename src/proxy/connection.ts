// One result per proxied connection (ztunnel's ConnectionResultBuilder): every listener of
// every proxy creates one when it accepts, fills in what it learns, and ends it exactly once
// with complete/denied/failed. Ending it writes the access log line and moves the metrics,
// so no listener formats a log line or touches a counter itself.
//
// Access log lines (pino JSON on stdout) are keyed like ztunnel's "connection complete"
// lines so they read the same: src.addr, src.workload, src.namespace, src.identity,
// dst.addr, dst.hbone_addr, dst.service, dst.workload, dst.namespace, dst.identity,
// direction, bytes_sent (client -> destination), bytes_recv (destination -> client),
// duration_ms.
import type { Logger } from 'pino';
import type { Workload } from '../mesh/workloads.js';
import { workloadIdentity } from '../mesh/workloads.js';
import { formatSpiffe, type SpiffeId } from '../mesh/identity.js';
import type { CopyResult } from '../mesh/copy.js';
import type { Metrics, MetricLabels } from './metrics.js';

export type Direction = 'outbound' | 'inbound' | 'inbound_passthrough';
export type Outcome = 'complete' | 'denied' | 'failed';

export interface Endpoint {
  addr: string;
  workload?: Workload;
  /** Defaults to the workload's identity; set for peers known only by certificate. */
  identity?: SpiffeId;
}

export interface AccessRecord {
  direction: Direction;
  src: Endpoint;
  dst: Endpoint & { hboneAddr?: string; service?: string };
  outcome: Outcome;
  bytesSent?: number;
  bytesRecv?: number;
  durationMs: number;
  /** Why it was denied or failed. */
  reason?: string;
  /** The HBONE status or policy that decided, when there was one. */
  status?: number;
  policy?: string;
  /** How the upstream was reached: hbone, direct-local, tcp, passthrough. */
  via?: string;
  spoofed?: boolean;
}

const idOf = (e: Endpoint): SpiffeId | undefined => e.identity ?? (e.workload && e.workload.protocol === 'HBONE' ? workloadIdentity(e.workload) : e.identity);

export function accessLogFields(r: AccessRecord): Record<string, unknown> {
  const f: Record<string, unknown> = { direction: r.direction, 'src.addr': r.src.addr };
  if (r.src.workload) Object.assign(f, { 'src.workload': r.src.workload.name, 'src.namespace': r.src.workload.namespace });
  const sid = idOf(r.src);
  if (sid) f['src.identity'] = formatSpiffe(sid);
  f['dst.addr'] = r.dst.addr;
  if (r.dst.hboneAddr) f['dst.hbone_addr'] = r.dst.hboneAddr;
  if (r.dst.service) f['dst.service'] = r.dst.service;
  if (r.dst.workload) Object.assign(f, { 'dst.workload': r.dst.workload.name, 'dst.namespace': r.dst.workload.namespace });
  const did = idOf(r.dst);
  if (did) f['dst.identity'] = formatSpiffe(did);
  if (r.via) f.via = r.via;
  if (r.spoofed !== undefined) f.spoofed = r.spoofed;
  if (r.bytesSent !== undefined) f.bytes_sent = r.bytesSent;
  if (r.bytesRecv !== undefined) f.bytes_recv = r.bytesRecv;
  f.duration_ms = Math.round(r.durationMs * 100) / 100;
  if (r.status !== undefined) f.status = r.status;
  if (r.policy) f.policy = r.policy;
  if (r.reason) f.reason = r.reason;
  return f;
}

export function metricLabels(r: AccessRecord, responseFlags: string): MetricLabels {
  const sid = idOf(r.src);
  const did = idOf(r.dst);
  return {
    reporter: r.direction === 'outbound' ? 'source' : 'destination',
    source_workload: r.src.workload?.workloadName ?? 'unknown',
    source_workload_namespace: r.src.workload?.namespace ?? sid?.namespace ?? 'unknown',
    source_principal: sid ? formatSpiffe(sid) : 'unknown',
    destination_workload: r.dst.workload?.workloadName ?? 'unknown',
    destination_workload_namespace: r.dst.workload?.namespace ?? 'unknown',
    destination_principal: did ? formatSpiffe(did) : 'unknown',
    destination_service: r.dst.service ?? 'unknown',
    response_flags: responseFlags,
  };
}

function writeRecord(log: Logger, metrics: Metrics, r: AccessRecord): void {
  const fields = accessLogFields(r);
  if (r.outcome === 'complete') {
    log.info(fields, 'connection complete');
    const labels = metricLabels(r, '-');
    metrics.inc('istio_tcp_connections_closed_total', labels);
    metrics.inc('istio_tcp_received_bytes_total', labels, r.bytesSent ?? 0);
    metrics.inc('istio_tcp_sent_bytes_total', labels, r.bytesRecv ?? 0);
  } else if (r.outcome === 'denied') {
    log.warn(fields, 'connection denied');
    metrics.inc('istio_tcp_connections_denied_total', metricLabels(r, 'DENY'));
  } else {
    log.warn(fields, 'connection failed');
  }
}

/** Where a result goes: the proxy's log and metrics (ProxyInputs has both). */
export interface ResultSink {
  log: Logger;
  metrics: Metrics;
}

export type ResultInit = Omit<AccessRecord, 'outcome' | 'durationMs'>;

export class ConnectionResult {
  /** The record so far; listeners fill in src/dst/via/spoofed as they learn them. */
  readonly rec: AccessRecord;
  private readonly start = performance.now();
  private counted = false;
  private ended = false;

  constructor(private readonly sink: ResultSink, init: ResultInit) {
    this.rec = { ...init, src: { ...init.src }, dst: { ...init.dst }, outcome: 'failed', durationMs: 0 };
  }

  /** The upstream is up and bytes start to flow: counts istio_tcp_connections_opened_total once. */
  opened(): void {
    if (this.counted) return;
    this.counted = true;
    this.sink.metrics.inc('istio_tcp_connections_opened_total', metricLabels(this.rec, '-'));
  }

  /** The copy finished (normally or not: an error mid-copy is still a connection that was served). */
  complete(copy: CopyResult): AccessRecord {
    return this.end('complete', { bytesSent: copy.aToB, bytesRecv: copy.bToA, ...(copy.error ? { reason: copy.error.message } : {}) });
  }

  /** Refused by authorization; `policy` names the deciding policy ("ns/name") when one did. */
  denied(reason: string, extra: { policy?: string; status?: number } = {}): AccessRecord {
    return this.end('denied', { reason, ...(extra.policy ? { policy: extra.policy } : {}), ...(extra.status ? { status: extra.status } : {}) });
  }

  failed(reason: string, extra: { status?: number } = {}): AccessRecord {
    return this.end('failed', { reason, ...(extra.status ? { status: extra.status } : {}) });
  }

  private end(outcome: AccessRecord['outcome'], extra: Partial<AccessRecord>): AccessRecord {
    // A second end would log the connection twice and count it twice: keep the first.
    if (this.ended) return this.rec;
    this.ended = true;
    Object.assign(this.rec, extra, { outcome, durationMs: performance.now() - this.start });
    writeRecord(this.sink.log, this.sink.metrics, this.rec);
    return this.rec;
  }
}
