// The hand-written X.509 encoder (src/mesh/x509.ts) against the parsers that read its output:
// node:crypto (OpenSSL) for the certificate as a whole, the DER bytes for what OpenSSL accepts
// leniently (lengths, bit strings, times).
import t, { type Test } from 'tap';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificate, keyIdentifier, KEY_USAGE, nameDer, subjectOf } from '../../src/mesh/x509.js';
import { createLabCa } from '../../src/mesh/ca.js';

const der = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
const HOUR = 3600_000;

/** The lab's root as ca.ts makes it (with this encoder), in a directory of its own. */
async function root(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'alt-x509-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await createLabCa(dir, { lab: 't' });
  return { key: ca.key, pem: ca.certPem, cert: ca.cert };
}

function workload(ca: Awaited<ReturnType<typeof root>>, uri: string, notAfter = new Date(Date.now() + 24 * HOUR)) {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = createCertificate({
    subject: nameDer({}), issuer: subjectOf(ca.cert.raw), notBefore: new Date(Date.now() - 60_000), notAfter,
    publicKey: keys.publicKey,
    extensions: [
      { kind: 'basicConstraints', ca: false },
      { kind: 'keyUsage', bits: [KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment] },
      { kind: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { kind: 'uriSan', uri },
      { kind: 'authorityKeyId', id: keyIdentifier(ca.cert.publicKey) },
    ],
  }, ca.key);
  return { pem, cert: new X509Certificate(pem) };
}

t.test('a root: self-signed CA, the subject it was given', async (t) => {
  const ca = await root(t);
  t.equal(ca.cert.subject, 'CN=ambient-lab CA t\nO=cluster.local');
  t.equal(ca.cert.issuer, ca.cert.subject);
  t.ok(ca.cert.ca, 'basic constraints CA:TRUE');
  t.ok(ca.cert.verify(ca.cert.publicKey), 'its signature verifies with its own key');
  t.ok(ca.cert.checkIssued(ca.cert), 'it issued itself');
  t.equal(ca.cert.serialNumber.length, 32, '16 random bytes of serial');
});

t.test('a workload certificate: empty subject, critical URI SAN, server and client auth, signed by the root', async (t) => {
  const ca = await root(t);
  const w = workload(ca, 'spiffe://cluster.local/ns/default/sa/sleep');
  t.same(subjectOf(w.cert.raw), Buffer.from([0x30, 0x00]), 'empty subject (an empty SEQUENCE), as Istio issues');
  t.equal(w.cert.issuer, ca.cert.subject);
  t.equal(w.cert.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/sleep');
  t.same(w.cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'extended key usage serverAuth, clientAuth');
  t.notOk(w.cert.ca);
  t.ok(w.cert.checkIssued(ca.cert) && w.cert.verify(ca.cert.publicKey), 'issued and signed by the root');
  t.notOk(w.cert.verify((await root(t)).cert.publicKey), 'another root\'s key does not verify it');
  // Critical flags and bit strings as DER requires: OpenSSL's text output would accept sloppier ones.
  const raw = der(w.pem);
  const hex = raw.toString('hex');
  t.ok(hex.includes('0603551d130101ff04023000'), 'basicConstraints critical, empty SEQUENCE (cA FALSE is the default, left out)');
  t.ok(hex.includes('0603551d0f0101ff0404030205a0'), 'keyUsage critical, bits 0 and 2, 5 unused bits');
  t.ok(hex.includes('0603551d110101ff'), 'subjectAltName critical');
  t.ok(hex.includes('0603551d25' + '0416'), 'extKeyUsage not critical');
  t.ok(der(ca.pem).toString('hex').includes('0603551d0f0101ff04040302' + '0106'), 'the root\'s keyUsage: bits 5 and 6, 1 unused bit');
});

t.test('lengths in long form, and times: UTCTime until 2049, GeneralizedTime from 2050', async (t) => {
  const ca = await root(t);
  const long = `spiffe://cluster.local/ns/default/sa/${'a'.repeat(300)}`;
  const w = workload(ca, long, new Date(Date.UTC(2050, 0, 2, 3, 4, 5)));
  t.equal(w.cert.subjectAltName, `URI:${long}`, 'a SAN over 255 bytes (two-byte lengths) reads back whole');
  t.ok(w.cert.verify(ca.cert.publicKey));
  t.equal(new Date(w.cert.validTo).toISOString(), '2050-01-02T03:04:05.000Z');
  t.ok(der(w.pem).includes(Buffer.from('\x18\x0f20500102030405Z', 'latin1')), 'GeneralizedTime for 2050');
  const y2049 = workload(ca, 'spiffe://x/ns/a/sa/b', new Date(Date.UTC(2049, 11, 31, 23, 59, 59)));
  t.ok(der(y2049.pem).includes(Buffer.from('\x17\x0d491231235959Z', 'latin1')), 'UTCTime for 2049');
  t.equal(new Date(y2049.cert.validTo).toISOString(), '2049-12-31T23:59:59.000Z');
});

t.test('subjectOf reads a subject back byte for byte; keyIdentifier is SHA-1 of the key bits', async (t) => {
  const ca = await root(t);
  t.same(subjectOf(ca.cert.raw), nameDer({ cn: 'ambient-lab CA t', o: 'cluster.local' }));
  const id = keyIdentifier(ca.cert.publicKey);
  t.equal(id.length, 20);
  t.ok(ca.cert.raw.includes(Buffer.concat([Buffer.from([0x04, 0x14]), id])), 'the root carries it as its subject key identifier');
  t.throws(() => subjectOf(Buffer.from([0x30, 0x05, 0x30, 0x00])), /DER/, 'a truncated certificate is refused, not misread');
});
