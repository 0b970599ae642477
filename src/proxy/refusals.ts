// Input a listener refused before it became a connection or request the access log would
// describe: hostile or broken peers (a TLS handshake that never completes, a stream past the
// per-connection limit, oversized headers, frame floods, smuggled HTTP/1.1, malformed DNS).
// Istio's proxies have no single metric for these (Envoy spreads them over per-listener
// stats), so this is a lab extension: one counter, labelled by listener and reason.
export interface RefusalCounter {
  inc(listener: string, reason: string): void;
}

export class Refusals implements RefusalCounter {
  private readonly counts = new Map<string, { listener: string; reason: string; value: number }>();

  inc(listener: string, reason: string): void {
    const key = `${listener}\u0000${reason}`;
    const s = this.counts.get(key);
    if (s) s.value++;
    else this.counts.set(key, { listener, reason, value: 1 });
  }

  value(listener?: string, reason?: string): number {
    let n = 0;
    for (const s of this.counts.values()) {
      if ((listener === undefined || s.listener === listener) && (reason === undefined || s.reason === reason)) n += s.value;
    }
    return n;
  }

  render(): string {
    const out = ['# HELP lab_refused_total Connections, streams, requests and queries refused as malformed or over a limit (lab extension).', '# TYPE lab_refused_total counter'];
    for (const s of this.counts.values()) out.push(`lab_refused_total{listener="${s.listener}",reason="${s.reason}"} ${s.value}`);
    return out.join('\n') + '\n';
  }
}
