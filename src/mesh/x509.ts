// The X.509 certificates of the lab CA, encoded by hand (DER, RFC 5280) and signed with
// node:crypto. Only what the lab issues is covered: an ECDSA P-256 root and workload
// certificates with a SPIFFE URI SAN, the shape istiod issues to ztunnel. A general X.509
// library cost `lab up` ~130 ms of CPU to load and ~12 ms per certificate; this is ~0.2 ms.
import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';

// --- DER writer: tag, length, content --------------------------------------------------------

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len = n < 0x80 ? Buffer.from([n])
    : n < 0x100 ? Buffer.from([0x81, n])
      : n < 0x10000 ? Buffer.from([0x82, n >> 8, n & 0xff])
        : Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
/** [n] EXPLICIT: a constructed context tag around one element. */
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);

/** A non-negative INTEGER from big-endian bytes: leading zeros dropped, one 0x00 if the top bit is set. */
function uint(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const b = bytes.subarray(i);
  return tlv(0x02, b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (const n of rest) {
    const base128 = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) base128.unshift((v & 0x7f) | 0x80);
    out.push(...base128);
  }
  return tlv(0x06, Buffer.from(out));
}

/** BIT STRING of named bits (bit 0 is the top bit of the first byte), trailing zero bits dropped as DER wants. */
function namedBits(bits: number[]): Buffer {
  const top = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(top / 8) + 1);
  for (const bit of bits) bytes[bit >> 3] |= 0x80 >> (bit & 7);
  return tlv(0x03, Buffer.concat([Buffer.from([7 - (top & 7)]), bytes]));
}

/** UTCTime through 2049, GeneralizedTime from 2050 on (RFC 5280 4.1.2.5); whole seconds, UTC. */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-11-27T21:04:05.123Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z'; // 20261127210405Z
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii')) : tlv(0x18, Buffer.from(digits, 'ascii'));
}

// --- what a certificate is made of --------------------------------------------------------------

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

/** KeyUsage bit numbers (RFC 5280 4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

/** A Name of CN and O (either may be left out); no attributes at all is the empty Name workload certificates have. */
export function nameDer(attrs: { cn?: string; o?: string }): Buffer {
  const rdns: Buffer[] = [];
  if (attrs.cn !== undefined) rdns.push(set(seq(oid(OID.commonName), utf8(attrs.cn))));
  if (attrs.o !== undefined) rdns.push(set(seq(oid(OID.organization), utf8(attrs.o))));
  return seq(...rdns);
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (what the earlier X.509 library wrote too). */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const [, bits] = children(spki); // SubjectPublicKeyInfo { algorithm, subjectPublicKey BIT STRING }
  return createHash('sha1').update(bits.content.subarray(1)).digest(); // without the unused-bits byte
}

export type Extension =
  | { kind: 'basicConstraints'; ca: boolean }
  | { kind: 'keyUsage'; bits: number[] }
  | { kind: 'extKeyUsage'; serverAuth: true; clientAuth: true }
  | { kind: 'uriSan'; uri: string }
  | { kind: 'subjectKeyId'; id: Buffer }
  | { kind: 'authorityKeyId'; id: Buffer };

/** Each extension with the criticality Istio's certificates use (basic constraints, key usage and the SAN critical). */
function extensionDer(e: Extension): Buffer {
  const ext = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
  switch (e.kind) {
    case 'basicConstraints': return ext(OID.basicConstraints, true, e.ca ? seq(bool(true)) : seq());
    case 'keyUsage': return ext(OID.keyUsage, true, namedBits(e.bits));
    case 'extKeyUsage': return ext(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth)));
    // GeneralName uniformResourceIdentifier: [6] IMPLICIT IA5String.
    case 'uriSan': return ext(OID.subjectAltName, true, seq(tlv(0x86, Buffer.from(e.uri, 'ascii'))));
    case 'subjectKeyId': return ext(OID.subjectKeyIdentifier, false, octets(e.id));
    // AuthorityKeyIdentifier { keyIdentifier [0] IMPLICIT OCTET STRING }.
    case 'authorityKeyId': return ext(OID.authorityKeyIdentifier, false, seq(tlv(0x80, e.id)));
  }
}

export interface CertificateFields {
  /** DER of the subject Name (nameDer, or the issuer's subject read back with subjectOf). */
  subject: Buffer;
  issuer: Buffer;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  extensions: Extension[];
}

/** A v3 certificate signed ECDSA-with-SHA256 by `signingKey` (a P-256 private key); PEM. */
export function createCertificate(f: CertificateFields, signingKey: KeyObject): string {
  const sigAlg = seq(oid(OID.ecdsaWithSha256));
  // 16 random bytes, top bit clear: positive, unique, at most the 20 octets RFC 5280 allows.
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x01;
  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))), // version v3
    uint(serial),
    sigAlg,
    f.issuer,
    seq(time(f.notBefore), time(f.notAfter)),
    f.subject,
    f.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...f.extensions.map(extensionDer))),
  );
  // node:crypto's ECDSA signature is already the DER Ecdsa-Sig-Value X.509 wants.
  const signature = sign('sha256', tbs, signingKey);
  const der = seq(tbs, sigAlg, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

// --- DER reader: just enough to read a certificate's subject back -----------------------------

interface Element {
  tag: number;
  /** The whole element, tag and length included. */
  raw: Buffer;
  content: Buffer;
}

function element(buf: Buffer, at: number): Element {
  const tag = buf[at];
  let len = buf[at + 1];
  let head = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3) throw new Error('DER: unsupported length');
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | buf[at + 2 + i];
    head += n;
  }
  if (at + head + len > buf.length) throw new Error('DER: element runs past its container');
  return { tag, raw: buf.subarray(at, at + head + len), content: buf.subarray(at + head, at + head + len) };
}

/** The elements inside the constructed element at `at` of `buf`. */
function children(buf: Buffer, at = 0): Element[] {
  const { content } = element(buf, at);
  const out: Element[] = [];
  for (let i = 0; i < content.length;) {
    const e = element(content, i);
    out.push(e);
    i += e.raw.length;
  }
  return out;
}

/** The DER of a certificate's subject Name: the issuer field of what it signs. */
export function subjectOf(certDer: Buffer): Buffer {
  const tbs = children(certDer)[0];
  const fields = children(tbs.raw);
  // version [0] is optional (absent means v1); then serial, signature, issuer, validity, subject.
  const first = fields[0].tag === 0xa0 ? 1 : 0;
  return fields[first + 4].raw;
}
