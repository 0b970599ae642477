// The lab's cluster DNS (the CoreDNS pod behind the kube-dns VIP), on UDP and TCP of one port.
import { readFileSync } from 'node:fs';
import type { RemoteInfo } from 'node:dgram';
import { Packet, UDPServer, type Resource } from 'dns2';
import type { Logger } from 'pino';
import { plainAddress } from './app-cli.js';
import { answerQuestion, formErrReply, queryShapeError } from './dns-answer.js';
import { bindOnOnePort, dnsTcpServer, type DnsTcpServer } from './dns-tcp.js';
import { parseDnsConfig, type DnsConfig } from './dns-records.js';

const RCODE_FORMERR = 1;
const RCODE_NOTIMP = 4;
const RCODE_NAMES: Record<number, string> = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED' };
const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Packet.TYPE).map(([k, v]) => [v, k]));

export interface DnsServerOptions {
  /** 0 picks a free port, the same one for UDP and TCP. */
  port: number;
  host?: string;
  /** Read now and again on reload(). */
  configFile?: string;
  /** Used when there is no configFile. */
  config?: DnsConfig;
  log?: Logger;
}

/** Queries that did not parse: answered FORMERR when they had a header (UDP), else dropped; a TCP connection carrying one is closed. */
export interface DnsServerStats {
  malformed: number;
  formErr: number;
}

export interface RunningDnsServer {
  port: number;
  stats: DnsServerStats;
  /** Re-reads configFile; on a bad file the previous records stay in service and this throws. */
  reload(): DnsConfig;
  close(): Promise<void>;
}

export function loadDnsConfig(file: string): DnsConfig {
  return parseDnsConfig(JSON.parse(readFileSync(file, 'utf8')), file);
}

export async function startDnsServer(opts: DnsServerOptions): Promise<RunningDnsServer> {
  const host = opts.host ?? '0.0.0.0';
  let config = opts.configFile ? loadDnsConfig(opts.configFile) : (opts.config ?? { domain: 'cluster.local', records: {} });
  // The SOA serial changes with each load, as a zone's serial does when its data changes.
  let serial = Math.floor(Date.now() / 1000);
  const log = opts.log;

  const handle = (request: Packet, send: (p: Packet) => Promise<unknown> | void, transport: 'udp' | 'tcp', client: string): void => {
    const response = Packet.createResponseFromRequest(request);
    response.header.ra = 1;
    const q = request.questions[0];
    if (request.header.opcode !== 0) {
      response.header.rcode = RCODE_NOTIMP;
    } else if (!q) {
      response.header.rcode = RCODE_FORMERR;
    } else {
      const a = answerQuestion(config, q.name, q.type, serial);
      response.header.rcode = a.rcode;
      response.header.aa = a.authoritative ? 1 : 0;
      for (const r of a.answers) {
        response.answers.push({ name: q.name, type: r.type, class: Packet.CLASS.IN, ttl: r.ttl, address: r.address } as Resource);
      }
      for (const s of a.authority) {
        response.authorities.push({ ...s, class: Packet.CLASS.IN } as unknown as Resource);
      }
    }
    log?.info(
      {
        // Not `name`/`type`: pino's logger name already uses `name`.
        qname: q?.name,
        qtype: q ? (TYPE_NAMES[q.type] ?? q.type) : undefined,
        rcode: RCODE_NAMES[response.header.rcode] ?? response.header.rcode,
        answers: response.answers.map((r) => r.address),
        client,
        transport,
      },
      'query',
    );
    Promise.resolve(send(response)).catch((err: unknown) => log?.warn({ err, client }, 'could not send reply'));
  };

  const stats: DnsServerStats = { malformed: 0, formErr: 0 };
  /** Counted and logged once; the FORMERR reply when the query had a header to answer. */
  const malformed = (msg: Buffer, why: string, transport: 'udp' | 'tcp', client: string): Buffer | undefined => {
    stats.malformed++;
    const reply = formErrReply(msg);
    if (reply) stats.formErr++;
    log?.warn({ err: why, transport, client, bytes: msg.length, rcode: reply ? 'FORMERR' : 'dropped' }, 'malformed query');
    return reply;
  };
  const clientOf = (address: string | undefined, port: number | undefined): string => `${plainAddress(address)}:${port}`;

  const udp = new UDPServer({ type: host.includes(':') ? 'udp6' : 'udp4' });
  // dns2 parses a datagram before anyone sees it; the shape check must come first (see
  // queryShapeError), so its 'message' listener is replaced by one that checks, then hands
  // the datagram to dns2 (which keeps its EDNS payload size and truncation logic).
  const dns2Handle = (udp as unknown as { handle(data: Buffer, rinfo: RemoteInfo): void }).handle.bind(udp);
  udp.removeAllListeners('message');
  udp.on('message', (data: Buffer, rinfo: RemoteInfo) => {
    const why = queryShapeError(data);
    if (!why) return dns2Handle(data, rinfo);
    const reply = malformed(data, why, 'udp', clientOf(rinfo.address, rinfo.port));
    if (reply) udp.send(reply, rinfo.port, rinfo.address, () => undefined);
  });
  udp.on('request', (req, send, rinfo) => handle(req, send, 'udp', clientOf((rinfo as RemoteInfo).address, (rinfo as RemoteInfo).port)));
  // A datagram of the right shape that dns2 still cannot parse: dropped.
  udp.on('requestError', (err) => {
    stats.malformed++;
    log?.warn({ err: String(err), transport: 'udp', rcode: 'dropped' }, 'malformed query');
  });

  const tcp = dnsTcpServer((msg, s) => {
    const client = clientOf(s.remoteAddress, s.remotePort);
    const why = queryShapeError(msg);
    if (why) return Promise.resolve(malformed(msg, why, 'tcp', client));
    let req: Packet;
    try {
      req = Packet.parse(msg);
    } catch (e) {
      return Promise.resolve(malformed(msg, (e as Error).message, 'tcp', client));
    }
    return new Promise((resolve) => handle(req, (p) => resolve(p.toBuffer()), 'tcp', client));
  });

  const port = await bindBoth(udp, tcp, opts.port, host);
  // After binding, a socket error (e.g. a send to a vanished client) is logged, not fatal.
  udp.on('error', (err) => log?.warn({ err: String(err), transport: 'udp' }, 'socket error'));
  tcp.on('error', (err) => log?.warn({ err: String(err), transport: 'tcp' }, 'socket error'));
  return {
    port,
    stats,
    reload() {
      if (!opts.configFile) return config;
      const next = loadDnsConfig(opts.configFile);
      config = next;
      serial = Math.max(serial + 1, Math.floor(Date.now() / 1000));
      return config;
    },
    close: async () => {
      await Promise.all([
        new Promise<void>((r) => udp.close(() => r())),
        new Promise<void>((r) => {
          tcp.close(() => r());
          tcp.destroyConnections();
        }),
      ]);
    },
  };
}

/**
 * TCP first, then UDP on the port TCP got: with port 0 the two must still agree, because
 * resolvers retry a truncated UDP answer over TCP on the same port.
 */
/** TCP first, then UDP on the port it got (dns-tcp.ts retries a port-0 pick that collides). */
async function bindBoth(udp: UDPServer, tcp: DnsTcpServer, port: number, host: string): Promise<number> {
  const got = await bindOnOnePort(port,
    (want) => new Promise<{ port: number; bound: DnsTcpServer }>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(want, host, () => {
        tcp.off('error', reject);
        resolve({ port: (tcp.address() as { port: number }).port, bound: tcp });
      });
    }),
    (p) => new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(p, host, () => {
        udp.off('error', reject);
        resolve();
      });
    }),
    (bound) => new Promise<void>((r) => bound.close(() => r())));
  return got.port;
}
