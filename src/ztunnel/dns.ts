// :15053 UDP+TCP (ztunnel 1.19+ DNS proxy, on when DNS capture is): A queries for known
// Service hostnames are answered with the VIP; everything else goes to the nameserver in
// resolv.conf. Kept small on purpose: A records only, no search-domain expansion.
import dgram from 'node:dgram';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { Packet, type Resource } from 'dns2';
import { tcpListenFd, udpSocketFd } from '../host/sys.js';
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
function localAnswer(z: ZtunnelInputs, query: Buffer): Buffer | undefined {
  let req;
  try {
    req = Packet.parse(query);
  } catch {
    return undefined;
  }
  const q = req.questions?.[0];
  if (!q || q.type !== Packet.TYPE.A) return undefined;
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

/** reusePort: both sockets SO_REUSEPORT, so a successor ztunnel can bind :15053 before this one lets go. */
export async function startDns(z: ZtunnelInputs, host: string, port: number, upstream = upstreamNameserver(),
  opts: { reusePort?: boolean } = {}): Promise<DnsServer> {
  const answer = async (q: Buffer): Promise<Buffer | undefined> => {
    const local = localAnswer(z, q);
    if (local) return local;
    if (!upstream) return undefined;
    return forwardUdp(upstream, q).catch((e: Error) => {
      z.log.debug({ err: e.message }, 'dns forward failed');
      return undefined;
    });
  };

  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    void answer(msg).then((r) => r && udp.send(r, rinfo.port, rinfo.address));
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    if (opts.reusePort) udp.bind({ fd: udpSocketFd({ ip: host, port, nonblock: true, reusePort: true }) }, () => resolve());
    else udp.bind(port, host, () => resolve());
  });
  const boundPort = udp.address().port;

  // DNS over TCP: 2-byte length prefix per message.
  const tcp = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        void answer(Buffer.from(msg)).then((r) => {
          if (!r || s.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          s.write(Buffer.concat([len, r]));
        });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    if (opts.reusePort) tcp.listen({ fd: tcpListenFd({ host, port: boundPort, reusePort: true }) }, () => resolve());
    else tcp.listen(boundPort, host, () => resolve());
  });

  return {
    port: boundPort,
    close: () => new Promise<void>((resolve) => {
      udp.close();
      tcp.close(() => resolve());
    }),
  };
}
