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
