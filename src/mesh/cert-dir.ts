// A proxy's issued certificates on disk (istiod's role, done by the lab at `lab up`): the
// proxy gets the trust root and the keys of the identities it serves, never the CA's key.
//
//   <dir>/root-cert.pem                           the lab root (trust anchor), as Istio names it
//   <dir>/<trustDomain>/<ns>/<sa>/cert-chain.pem  one workload certificate per identity
//   <dir>/<trustDomain>/<ns>/<sa>/key.pem         its private key (0600)
//   <dir>/identities.json                         {"spiffe://...": {"cert": rel, "key": rel}}
//
// The manifest is written last (by rename), so a proxy reloading while the lab re-issues
// sees either the old set or the new one.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { formatSpiffe, type SpiffeId } from './identity.js';
import type { WorkloadCert } from './ca.js';
import type { KeyLog } from './keylog.js';
import type { MeshTls } from './tls.js';

export const ROOT_CERT_FILE = 'root-cert.pem';
export const MANIFEST_FILE = 'identities.json';

export type CertManifest = Record<string, { cert: string; key: string }>;

export const identityDir = (id: SpiffeId): string => join(id.trustDomain, id.namespace, id.serviceAccount);

/** A certificate was asked for an identity this proxy holds no key for. */
export class NoCertificateError extends Error {
  override name = 'NoCertificateError';
  readonly code = 'ERR_NO_CERTIFICATE';
}

export interface CertSet {
  caPem: string;
  certs: Map<string, WorkloadCert>;
}

/** Reads a proxy's certificate directory; throws naming the file that is missing or bad. */
export function readCertDir(dir: string): CertSet {
  const caPem = readFileSync(join(dir, ROOT_CERT_FILE), 'utf8');
  const manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as CertManifest;
  const certs = new Map<string, WorkloadCert>();
  for (const [spiffe, files] of Object.entries(manifest)) {
    const certPem = readFileSync(join(dir, files.cert), 'utf8');
    const keyPem = readFileSync(join(dir, files.key), 'utf8');
    certs.set(spiffe, { spiffe, certPem, keyPem, notAfter: new Date(new X509Certificate(certPem).validTo) });
  }
  return { caPem, certs };
}

/** MeshTls over a certificate directory; reload() swaps in the directory's current content. */
export interface CertDirTls extends MeshTls {
  readonly dir: string;
  /** SPIFFE URIs this proxy can present. */
  identities(): string[];
  reload(): void;
}

export function meshTlsFromCertDir(dir: string, keyLog?: KeyLog): CertDirTls {
  let set = readCertDir(dir);
  return {
    dir,
    get caPem() {
      return set.caPem;
    },
    ...(keyLog ? { keyLog } : {}),
    identities: () => [...set.certs.keys()],
    certFor(id) {
      const spiffe = formatSpiffe(id);
      const cert = set.certs.get(spiffe);
      if (cert) return Promise.resolve(cert);
      const held = [...set.certs.keys()];
      return Promise.reject(new NoCertificateError(
        `no certificate for ${spiffe}: this proxy holds keys only for ${held.length ? held.join(', ') : 'no identity'} (${dir})`,
      ));
    },
    reload() {
      set = readCertDir(dir);
    },
  };
}
