// How the cluster DNS answers one question, kept apart from the sockets so the rules can be
// tested directly. Mirrors CoreDNS's kubernetes plugin for what the lab needs: A records for
// Services, NODATA for other types of a known name (so glibc/curl do not wait on AAAA), and
// NXDOMAIN for everything else, since the lab network has no upstream resolver.
import type { DnsConfig } from './dns-records.js';
import { normalizeName } from './dns-records.js';

export const RR_A = 1;
export const RR_SOA = 6;
export const RR_ANY = 255;
export const RCODE_NOERROR = 0;
export const RCODE_NXDOMAIN = 3;

export const RECORD_TTL = 5;

export interface AnswerRecord {
  type: typeof RR_A;
  ttl: number;
  address: string;
}

export interface SoaRecord {
  type: typeof RR_SOA;
  name: string;
  ttl: number;
  primary: string;
  admin: string;
  serial: number;
  refresh: number;
  retry: number;
  expiration: number;
  minimum: number;
}

export interface DnsAnswer {
  rcode: number;
  /** Authoritative: the name is under the cluster domain. */
  authoritative: boolean;
  answers: AnswerRecord[];
  /** The zone's SOA on negative answers, so resolvers may cache the denial (RFC 2308). */
  authority: SoaRecord[];
}

export function answerQuestion(config: DnsConfig, qname: string, qtype: number, serial = 1): DnsAnswer {
  const name = normalizeName(qname);
  const inZone = name === config.domain || name.endsWith(`.${config.domain}`);
  const soa = inZone ? [zoneSoa(config.domain, serial)] : [];
  const ips = config.records[name];
  if (!ips) return { rcode: RCODE_NXDOMAIN, authoritative: inZone, answers: [], authority: soa };
  if (qtype === RR_A || qtype === RR_ANY) {
    return { rcode: RCODE_NOERROR, authoritative: inZone, answers: ips.map((address) => ({ type: RR_A, ttl: RECORD_TTL, address })), authority: [] };
  }
  return { rcode: RCODE_NOERROR, authoritative: inZone, answers: [], authority: soa };
}

/** Same shape as CoreDNS's synthesized SOA for the cluster zone. */
function zoneSoa(domain: string, serial: number): SoaRecord {
  return {
    type: RR_SOA,
    name: domain,
    ttl: RECORD_TTL,
    primary: `ns.dns.${domain}`,
    admin: `hostmaster.${domain}`,
    serial,
    refresh: 7200,
    retry: 1800,
    expiration: 86400,
    minimum: RECORD_TTL,
  };
}

/** A DNS header is 12 bytes; anything shorter cannot even be answered. */
export const DNS_HEADER_LEN = 12;

/**
 * The FORMERR reply to a query that does not parse (RFC 1035 §4.1.1, what CoreDNS sends for
 * an unpackable message whose header it could read): the query's id and opcode, QR set,
 * rcode 1, no sections. Undefined when there is no header to answer, or the message is
 * itself a response (answering responses invites reflection loops): drop those.
 */
export function formErrReply(query: Buffer): Buffer | undefined {
  if (query.length < DNS_HEADER_LEN || (query[2] & 0x80) !== 0) return undefined;
  const r = Buffer.alloc(DNS_HEADER_LEN);
  query.copy(r, 0, 0, 2);
  r[2] = 0x80 | (query[2] & 0x78) | (query[2] & 0x01);
  r[3] = 0x80 | 1;
  return r;
}

/**
 * Why `msg` is not a query worth parsing, or undefined. dns2's parser trusts the header's
 * counts: a 184-byte random datagram announcing 18,000 questions kept it busy for seconds,
 * and the event loop with it. A client's query has one question, no answer or authority
 * records and at most two additional ones (EDNS OPT, TSIG), and its question name, the
 * first name of the message, has nothing to point back to: anything else is refused unparsed.
 */
export function queryShapeError(msg: Buffer): string | undefined {
  if (msg.length < DNS_HEADER_LEN) return `${msg.length} bytes: shorter than a DNS header`;
  if (msg[2] & 0x80) return 'a response, not a query';
  if (msg.readUInt16BE(4) !== 1) return `${msg.readUInt16BE(4)} questions (a query has 1)`;
  if (msg.readUInt16BE(6) || msg.readUInt16BE(8)) return 'answer or authority records in a query';
  if (msg.readUInt16BE(10) > 2) return `${msg.readUInt16BE(10)} additional records (at most 2)`;
  let at = DNS_HEADER_LEN;
  for (;;) {
    if (at >= msg.length) return 'question name runs past the end';
    const len = msg[at];
    if (len === 0) break;
    if (len & 0xc0) return 'compression pointer in the question name';
    at += 1 + len;
    if (at - DNS_HEADER_LEN > 255) return 'question name longer than 255 bytes';
  }
  if (at + 5 > msg.length) return 'question type and class missing';
  return undefined;
}
