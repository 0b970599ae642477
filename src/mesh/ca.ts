// The lab CA: what istiod's CA does for the proxies, minus the CSR round trip. One ECDSA
// P-256 root per lab, whose key stays in the lab's state directory (ca/): at `lab up` the lab
// issues each proxy the certificates of the identities it serves (issueProxyCerts) and the
// proxy only ever reads those. Workload certificates carry only the SPIFFE URI SAN, like Istio's.
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { formatSpiffe, type SpiffeId } from './identity.js';
import { identityDir, MANIFEST_FILE, ROOT_CERT_FILE, type CertManifest } from './cert-dir.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC: EcKeyGenParams & EcKeyImportParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const HOUR = 3600_000;
/** Istio's default workload cert TTL. */
export const WORKLOAD_CERT_TTL_MS = 24 * HOUR;

export interface LabCa {
  dir: string;
  certPem: string;
  cert: x509.X509Certificate;
  key: CryptoKey;
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

function pkcs8Pem(der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

function pemToDer(pem: string): ArrayBuffer {
  const b = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
}

const importSigningKey = (pem: string): Promise<CryptoKey> =>
  webcrypto.subtle.importKey('pkcs8', pemToDer(pem), EC, true, ['sign']) as Promise<CryptoKey>;

/**
 * Creates the lab's root CA in `dir` (ca.pem, ca-key.pem 0600). When both files are already
 * there it loads them instead, so re-running `lab up` does not invalidate running proxies' certs.
 */
export async function createLabCa(dir: string, opts: { lab?: string } = {}): Promise<LabCa> {
  if (existsSync(caCertPath(dir)) && existsSync(caKeyPath(dir))) return loadLabCa(dir);
  mkdirSync(dir, { recursive: true });
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=ambient-lab CA ${opts.lab ?? 'lab'}, O=cluster.local`,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 10 * 365 * 24 * HOUR),
    keys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = pkcs8Pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  writeFileSync(caKeyPath(dir), keyPem, { mode: 0o600 });
  chmodSync(caKeyPath(dir), 0o600);
  writeFileSync(caCertPath(dir), cert.toString('pem') + '\n');
  return { dir, certPem: cert.toString('pem') + '\n', cert, key: keys.privateKey, issued: new Map() };
}

export async function loadLabCa(dir: string): Promise<LabCa> {
  const certPem = readFileSync(caCertPath(dir), 'utf8');
  const key = await importSigningKey(readFileSync(caKeyPath(dir), 'utf8'));
  return { dir, certPem, cert: new x509.X509Certificate(certPem), key, issued: new Map() };
}

async function signWorkloadCert(ca: LabCa, spiffe: string, ttlMs = WORKLOAD_CERT_TTL_MS): Promise<WorkloadCert> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const notAfter = new Date(now + ttlMs);
  const cert = await x509.X509CertificateGenerator.create({
    // Istio workload certs have an empty subject; the identity is only in the (critical) SAN.
    subject: '',
    issuer: ca.cert.subject,
    notBefore: new Date(now - 5 * 60_000),
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffe }], true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
    ],
  });
  return {
    spiffe,
    certPem: cert.toString('pem') + '\n',
    keyPem: pkcs8Pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
    notAfter,
  };
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
