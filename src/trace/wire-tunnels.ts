// Who an HBONE tunnel really carried: the SPIFFE URIs in the certificates its two ends sent
// during the TLS 1.3 handshake, and the :authority of its first CONNECT. Both are encrypted,
// so tshark opens them with the key log the proxies write (the lab's deliberate deviation, for
// exactly this). Only tunnels opened during the trace have a handshake to start from; pooled
// ones keep what the logs said.
import { run } from '../host/run.js';
import type { TraceLeg } from './hops.js';

export interface WireFacts {
  /** `sender>receiver` (ip:port each) -> the first SPIFFE URI of the certificate the sender presented. */
  identities: Map<string, string>;
  /** `client>server` -> the :authority of the first CONNECT the client sent. */
  authorities: Map<string, string>;
}

/** tshark's `-T fields -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e x509ce.uniformResourceIdentifier -e http2.headers.authority` lines. */
export function parseWireFields(text: string): WireFacts {
  const out: WireFacts = { identities: new Map(), authorities: new Map() };
  for (const line of text.split('\n')) {
    const [src, sport, dst, dport, uris, authority] = line.split('\t');
    if (!src || !sport || !dst || !dport) continue;
    // The same frame can repeat a line (one per TCP segment of a record); the first one stands.
    const k = `${src}:${sport}>${dst}:${dport}`;
    // tshark joins several values of one field with commas (a chain: leaf first).
    const spiffe = (uris ?? '').split(',').find((u) => u.startsWith('spiffe://'));
    if (spiffe && !out.identities.has(k)) out.identities.set(k, spiffe);
    const a = (authority ?? '').split(',')[0];
    if (a && !out.authorities.has(k)) out.authorities.set(k, a);
  }
  return out;
}

/** Reads certificates and CONNECTs of the HBONE tunnels in `pcap` on TCP `ports`; nothing when tshark is missing or fails. */
export async function tunnelsOnWire(pcap: string, keyLog: string, ports: number[], tlsPorts: number[] = []): Promise<WireFacts> {
  const none: WireFacts = { identities: new Map(), authorities: new Map() };
  if (!ports.length) return none;
  const filter = `(tls.handshake.type == 11 || http2.headers.method == "CONNECT") && (${ports.map((p) => `tcp.port == ${p}`).join(' || ')})`;
  // Istio mTLS runs on the app's port (80 would be read as HTTP): tell tshark it is TLS.
  const decodeAs = [...new Set(tlsPorts)].flatMap((p) => ['-d', `tcp.port==${p},tls`]);
  const r = await run('tshark', ['-n', '-r', pcap, '-o', `tls.keylog_file:${keyLog}`, ...decodeAs, '-Y', filter, '-T', 'fields',
    '-e', 'ip.src', '-e', 'tcp.srcport', '-e', 'ip.dst', '-e', 'tcp.dstport', '-e', 'x509ce.uniformResourceIdentifier', '-e', 'http2.headers.authority'],
  { reject: false, timeoutMs: 20_000 }).catch(() => undefined);
  return r && r.exitCode === 0 ? parseWireFields(r.stdout) : none;
}

/** The wire's word over the logs': the identities each end of a tunnel presented, the authority its client asked for. */
export function applyWireFacts(legs: TraceLeg[], wire: WireFacts): void {
  for (const l of legs) {
    if (l.encap !== 'hbone' && !l.istioMtls) continue;
    const client = wire.identities.get(`${l.client}>${l.server}`);
    const server = wire.identities.get(`${l.server}>${l.client}`);
    const authority = wire.authorities.get(`${l.client}>${l.server}`);
    if (!client && !server && !authority) continue;
    const t = l.tunnel ?? { source: [] };
    // Whatever the logs or the plan said is replaced: what was on the wire is the fact.
    if (client) t.clientIdentity = client;
    if (server) t.serverIdentity = server;
    if (authority) t.authority = authority;
    t.source = ['the wire (decrypted with the key log)', ...t.source.filter((s) => !/own identity|destination workload/.test(s))];
    l.tunnel = t;
  }
}
