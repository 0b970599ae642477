// :15053 UDP+TCP (ztunnel 1.19+ DNS proxy, on when DNS capture is): A queries for known
// Service hostnames are answered with the VIP; everything else goes to the nameserver in
// resolv.conf. Kept small on purpose: A records only, no search-domain expansion.
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { Packet, type Resource } from 'dns2';
import { tcpListenFd, udpSocketFd } from '../host/sys.js';
import { formErrReply, queryShapeError } from '../apps/dns-answer.js';
import { bindOnOnePort, dnsTcpServer } from '../apps/dns-tcp.js';
import type { ZtunnelInputs } from './config.js';

export interface DnsServer {
  port: number;
  close(): Promise<void>;
}

export function upstreamNameserver(resolvConf = '/etc/resolv.conf'): string | undefined {
  try {
    const m = /^\s*nameserver\s+(\S+)/m.exec(readFileSync(resolvConf, 'utf8'));
    return m?.[1];
  } catch {
    return undefined;
  }
}

/** The VIP of a known Service for an A question, or undefined. */
export function lookupService(z: ZtunnelInputs, name: string): string | undefined {
  const n = name.replace(/\.$/, '').toLowerCase();
  return z.xds.store.state.services.find((s) => s.hostname === n)?.vips[0];
}

/** Answers from the store, or undefined to forward. */
function localAnswer(z: ZtunnelInputs, req: Packet): Buffer | undefined {
  const q = req.questions?.[0];
  if (!q || q.type !== Packet.TYPE.A || typeof q.name !== 'string') return undefined;
  const vip = lookupService(z, q.name);
  if (!vip) return undefined;
  const res = Packet.createResponseFromRequest(req);
  res.header.aa = 1;
  res.answers.push({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 30, address: vip } as Resource);
  return res.toBuffer();
}

function forwardUdp(server: string, query: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error('upstream DNS timeout'));
    }, 5000);
    s.once('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      s.close();
      reject(e);
    });
    s.send(query, 53, server);
  });
}

/** The query, or why it is not one (checked before dns2 parses it: see queryShapeError). */
function parseQuery(q: Buffer): Packet | string {
  const bad = queryShapeError(q);
  if (bad) return bad;
  try {
    return Packet.parse(q);
  } catch (e) {
    return (e as Error).message;
  }
}

/** reusePort: both sockets SO_REUSEPORT, so a successor ztunnel can bind :15053 before this one lets go. */
export async function startDns(z: ZtunnelInputs, host: string, port: number, upstream = upstreamNameserver(),
  opts: { reusePort?: boolean } = {}): Promise<DnsServer> {
  // A query that does not parse is never forwarded: FORMERR when it has a header to answer,
  // else dropped; either way counted and logged once.
  const malformed = (q: Buffer, transport: 'udp' | 'tcp', why: string): Buffer | undefined => {
    const reply = formErrReply(q);
    z.metrics.refusals.inc('dns', 'malformed');
    z.log.warn({ transport, bytes: q.length, err: why, rcode: reply ? 'FORMERR' : 'dropped' }, 'malformed DNS query');
    return reply;
  };
  const answer = async (q: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> => {
    const req = parseQuery(q);
    if (typeof req === 'string') return malformed(q, transport, req);
    const local = localAnswer(z, req);
    if (local) return local;
    if (!upstream) return undefined;
    return forwardUdp(upstream, q).catch((e: Error) => {
      z.log.debug({ err: e.message }, 'dns forward failed');
      return undefined;
    });
  };
  const answerSafely = (q: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> =>
    answer(q, transport).catch((e: Error) => {
      z.log.warn({ err: e.message, transport }, 'DNS query failed');
      return undefined;
    });

  const onMessage = (udp: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    void answerSafely(msg, 'udp').then((r) => {
      // The socket may have closed while an upstream answer was on its way.
      try {
        if (r) udp.send(r, rinfo.port, rinfo.address, () => undefined);
      } catch {
        // closed
      }
    });
  };
  const bindUdp = (want: number): Promise<dgram.Socket> => {
    const udp = dgram.createSocket('udp4');
    return new Promise<dgram.Socket>((resolve, reject) => {
      udp.once('error', (e) => { udp.close(); reject(e); });
      const bound = (): void => {
        udp.removeAllListeners('error');
        udp.on('error', (e) => z.log.warn({ err: e.message }, 'DNS UDP socket error'));
        udp.on('message', onMessage(udp));
        resolve(udp);
      };
      try {
        if (opts.reusePort) udp.bind({ fd: udpSocketFd({ ip: host, port: want, nonblock: true, reusePort: true }) }, bound);
        else udp.bind(want, host, bound);
      } catch (e) {
        udp.close();
        reject(e);
      }
    });
  };
  const tcp = dnsTcpServer((msg) => answerSafely(msg, 'tcp'));
  const listenTcp = (want: number): Promise<void> => new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    try {
      if (opts.reusePort) tcp.listen({ fd: tcpListenFd({ host, port: want, reusePort: true }) }, () => { tcp.off('error', reject); resolve(); });
      else tcp.listen(want, host, () => { tcp.off('error', reject); resolve(); });
    } catch (e) {
      tcp.off('error', reject);
      reject(e);
    }
  });

  // UDP and TCP share one port number (15053 in the lab; port 0 in tests).
  const { port: boundPort, bound: udp } = await bindOnOnePort(port,
    async (want) => { const u = await bindUdp(want); return { port: u.address().port, bound: u }; },
    listenTcp,
    (u) => new Promise<void>((r) => u.close(() => r())));

  return {
    port: boundPort,
    close: () => new Promise<void>((resolve) => {
      udp.close();
      tcp.close(() => resolve());
      tcp.destroyConnections();
    }),
  };
}
