// The lab CA: what istiod's CA does for the proxies, minus the CSR round trip. One ECDSA
// P-256 root per lab, whose key stays in the lab's state directory (ca/): at `lab up` the lab
// issues each proxy the certificates of the identities it serves (issueProxyCerts) and the
// proxy only ever reads those. Workload certificates carry only the SPIFFE URI SAN, like Istio's.
import { createPrivateKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { formatSpiffe, type SpiffeId } from './identity.js';
import { identityDir, MANIFEST_FILE, ROOT_CERT_FILE, type CertManifest } from './cert-dir.js';
import { createCertificate, keyIdentifier, KEY_USAGE, nameDer, subjectOf } from './x509.js';

const HOUR = 3600_000;
/** Istio's default workload cert TTL. */
export const WORKLOAD_CERT_TTL_MS = 24 * HOUR;

export interface LabCa {
  dir: string;
  certPem: string;
  cert: X509Certificate;
  key: KeyObject;
  /** DER of the root's subject: the issuer of every certificate it signs. */
  subjectDer: Buffer;
  /** The root's key identifier: the authority key identifier of what it signs. */
  keyId: Buffer;
  /** Issued workload certs by SPIFFE URI; promises, so concurrent callers share one signing. */
  issued: Map<string, Promise<WorkloadCert>>;
}

export interface WorkloadCert {
  spiffe: string;
  certPem: string;
  keyPem: string;
  notAfter: Date;
}

export const caCertPath = (dir: string): string => join(dir, 'ca.pem');
export const caKeyPath = (dir: string): string => join(dir, 'ca-key.pem');

/** ECDSA P-256, as ztunnel generates its workload keys (and the lab its root). */
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pkcs8Pem = (key: KeyObject): string => key.export({ type: 'pkcs8', format: 'pem' }).toString();

function labCa(dir: string, certPem: string, key: KeyObject): LabCa {
  const cert = new X509Certificate(certPem);
  return { dir, certPem, cert, key, subjectDer: subjectOf(cert.raw), keyId: keyIdentifier(cert.publicKey), issued: new Map() };
}

/**
 * Creates the lab's root CA in `dir` (ca.pem, ca-key.pem 0600). When both files are already
 * there it loads them instead, so re-running `lab up` does not invalidate running proxies' certs.
 */
export async function createLabCa(dir: string, opts: { lab?: string } = {}): Promise<LabCa> {
  if (existsSync(caCertPath(dir)) && existsSync(caKeyPath(dir))) return loadLabCa(dir);
  mkdirSync(dir, { recursive: true });
  const keys = p256();
  const now = Date.now();
  const name = nameDer({ cn: `ambient-lab CA ${opts.lab ?? 'lab'}`, o: 'cluster.local' });
  const certPem = createCertificate({
    subject: name,
    issuer: name,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 10 * 365 * 24 * HOUR),
    publicKey: keys.publicKey,
    extensions: [
      { kind: 'basicConstraints', ca: true },
      { kind: 'keyUsage', bits: [KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign] },
      { kind: 'subjectKeyId', id: keyIdentifier(keys.publicKey) },
    ],
  }, keys.privateKey);
  writeFileSync(caKeyPath(dir), pkcs8Pem(keys.privateKey), { mode: 0o600 });
  chmodSync(caKeyPath(dir), 0o600);
  writeFileSync(caCertPath(dir), certPem);
  return labCa(dir, certPem, keys.privateKey);
}

export async function loadLabCa(dir: string): Promise<LabCa> {
  return labCa(dir, readFileSync(caCertPath(dir), 'utf8'), createPrivateKey(readFileSync(caKeyPath(dir), 'utf8')));
}

async function signWorkloadCert(ca: LabCa, spiffe: string, ttlMs = WORKLOAD_CERT_TTL_MS): Promise<WorkloadCert> {
  const keys = p256();
  const now = Date.now();
  const notAfter = new Date(now + ttlMs);
  const certPem = createCertificate({
    // Istio workload certs have an empty subject; the identity is only in the (critical) SAN.
    subject: nameDer({}),
    issuer: ca.subjectDer,
    notBefore: new Date(now - 5 * 60_000),
    notAfter,
    publicKey: keys.publicKey,
    extensions: [
      { kind: 'basicConstraints', ca: false },
      { kind: 'keyUsage', bits: [KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment] },
      { kind: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { kind: 'uriSan', uri: spiffe },
      { kind: 'authorityKeyId', id: ca.keyId },
    ],
  }, ca.key);
  // Whole seconds, as the certificate states it.
  return { spiffe, certPem, keyPem: pkcs8Pem(keys.privateKey), notAfter: new Date(Math.floor(notAfter.getTime() / 1000) * 1000) };
}

/** A certificate for `id` (SpiffeId or its URI), cached per identity until close to expiry. */
export function issueWorkloadCert(ca: LabCa, id: SpiffeId | string): Promise<WorkloadCert> {
  const spiffe = typeof id === 'string' ? id : formatSpiffe(id);
  const cached = ca.issued.get(spiffe);
  if (cached) return cached.then((c) => (c.notAfter.getTime() - Date.now() > HOUR ? c : reissue()));
  return reissue();

  function reissue(): Promise<WorkloadCert> {
    const p = signWorkloadCert(ca, spiffe);
    ca.issued.set(spiffe, p);
    p.catch(() => ca.issued.delete(spiffe));
    return p;
  }
}

/**
 * Issues one proxy its certificates (istiod's role): a workload certificate and key per
 * identity in `identities`, plus the root certificate, into `outDir` (layout: cert-dir.ts).
 * The CA key is read from `caDir` (or comes loaded) and never written anywhere else. Replaces what `outDir`
 * held, so a proxy never keeps the key of an identity it no longer serves.
 */
export async function issueProxyCerts(caDir: string | LabCa, outDir: string, identities: SpiffeId[], opts: { ttlMs?: number } = {}): Promise<CertManifest> {
  const ca = typeof caDir === 'string' ? await loadLabCa(caDir) : caDir;
  const unique = [...new Map(identities.map((id) => [formatSpiffe(id), id])).values()];
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(outDir, ROOT_CERT_FILE), ca.certPem);
  const manifest: CertManifest = {};
  for (const id of unique) {
    const c = await signWorkloadCert(ca, formatSpiffe(id), opts.ttlMs);
    const rel = identityDir(id);
    mkdirSync(join(outDir, rel), { recursive: true, mode: 0o700 });
    writeFileSync(join(outDir, rel, 'cert-chain.pem'), c.certPem);
    writeFileSync(join(outDir, rel, 'key.pem'), c.keyPem, { mode: 0o600 });
    manifest[c.spiffe] = { cert: join(rel, 'cert-chain.pem'), key: join(rel, 'key.pem') };
  }
  const tmp = join(dirname(join(outDir, MANIFEST_FILE)), `.${MANIFEST_FILE}.tmp`);
  writeFileSync(tmp, JSON.stringify(manifest, null, 2) + '\n');
  renameSync(tmp, join(outDir, MANIFEST_FILE));
  return manifest;
}
