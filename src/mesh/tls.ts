// Mesh mTLS as ztunnel does it (tls/boring.rs): TLS 1.3 only, ALPN h2, a client cert always,
// trust = the lab root, and identity = the SPIFFE URI SAN (no hostnames, no SNI).
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { formatSpiffe, identityFromSubjectAltName, sameIdentity, type SpiffeId } from './identity.js';
import type { LabCa, WorkloadCert } from './ca.js';
import type { KeyLog } from './keylog.js';

export const HBONE_ALPN = 'h2';

/** What a proxy needs to speak mesh mTLS: the trust anchor, certs per identity, optional key log. */
export interface MeshTls {
  caPem: string;
  certFor(id: SpiffeId): Promise<WorkloadCert>;
  keyLog?: KeyLog;
}

/**
 * Signing in-process (tests). ca.js is imported here, not at the top: it loads an X.509 library
 * (~130 ms of CPU) that the proxies, which only read the certificates `lab up` issued, never use.
 */
export function meshTlsFromCa(ca: LabCa, keyLog?: KeyLog): MeshTls {
  return { caPem: ca.certPem, certFor: async (id) => (await import('./ca.js')).issueWorkloadCert(ca, id), ...(keyLog ? { keyLog } : {}) };
}

// The TLS 1.3 suites ztunnel offers (tls/lib.rs: its FIPS-compatible list, in this order), so a
// ztunnel pair negotiates what the Rust one does: AES-256-GCM, which runs on AES-NI (and VAES)
// here. OpenSSL's default would also allow ChaCha20-Poly1305, which ztunnel never offers.
// AES-128-GCM would save little (7% of the pair's CPU per GiB on loopback, within the noise in
// a lab), and a ztunnel pair does not pick it.
export const ZTUNNEL_TLS13_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256';

// One SecureContext per (trust anchor, cert): building one parses PEMs and is not free.
const contexts = new WeakMap<WorkloadCert, tls.SecureContext>();

export async function secureContextFor(mesh: MeshTls, id: SpiffeId): Promise<tls.SecureContext> {
  const cert = await mesh.certFor(id);
  let ctx = contexts.get(cert);
  if (!ctx) {
    ctx = tls.createSecureContext({ cert: cert.certPem, key: cert.keyPem, ca: mesh.caPem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: ZTUNNEL_TLS13_SUITES });
    contexts.set(cert, ctx);
  }
  return ctx;
}

export type PeerCheck = { ok: true; identity: SpiffeId } | { ok: false; reason: string };

/**
 * Verifies a handshake's peer certificate against the lab root ourselves: a server-mode
 * TLSSocket created outside tls.Server asks for the cert but does not reject a bad chain.
 */
export function verifyPeer(sock: tls.TLSSocket, caPem: string, now = new Date()): PeerCheck {
  const peer = sock.getPeerX509Certificate();
  if (!peer) return { ok: false, reason: 'no peer certificate' };
  const root = new X509Certificate(caPem);
  if (!peer.checkIssued(root) || !peer.verify(root.publicKey)) return { ok: false, reason: 'peer certificate not issued by the mesh CA' };
  if (now < new Date(peer.validFrom) || now > new Date(peer.validTo)) return { ok: false, reason: 'peer certificate expired or not yet valid' };
  const identity = identityFromSubjectAltName(peer.subjectAltName);
  if (!identity) return { ok: false, reason: 'peer certificate has no SPIFFE URI SAN' };
  return { ok: true, identity };
}

/** The client-side server check: the URI SAN must be exactly the identity we expect there. */
export function expectIdentity(expected: SpiffeId) {
  return (_host: string, cert: tls.PeerCertificate): Error | undefined => {
    const got = identityFromSubjectAltName(cert.subjectaltname);
    if (got && sameIdentity(got, expected)) return undefined;
    const err = new Error(`server identity ${cert.subjectaltname ?? '(none)'} != expected ${formatSpiffe(expected)}`);
    (err as Error & { code: string }).code = 'ERR_HBONE_IDENTITY';
    return err;
  };
}
