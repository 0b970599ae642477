// Issued certificates (istiod's role at `lab up`): a proxy's cert dir holds the root and the
// keys of its own identities, never the CA key; asking for any other identity fails clearly.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLabCa, issueProxyCerts, caKeyPath } from '../../src/mesh/ca.js';
import { meshTlsFromCertDir, NoCertificateError } from '../../src/mesh/cert-dir.js';

const id = (sa: string, ns = 'default') => ({ trustDomain: 'cluster.local', namespace: ns, serviceAccount: sa });

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

t.test('issueProxyCerts: root + own identities, no CA key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'alt-certs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await createLabCa(join(dir, 'ca'), { lab: 'certs' });
  const out = join(dir, 'certs', 'ztunnel-node-a');
  const manifest = await issueProxyCerts(join(dir, 'ca'), out, [id('sleep'), id('httpbin'), id('sleep')]);
  t.same(Object.keys(manifest), ['spiffe://cluster.local/ns/default/sa/sleep', 'spiffe://cluster.local/ns/default/sa/httpbin'], 'one cert per identity');

  const caKey = readFileSync(caKeyPath(join(dir, 'ca')), 'utf8');
  for (const f of walk(out)) t.not(readFileSync(f, 'utf8').trim(), caKey.trim(), `${f} is not the CA key`);
  t.ok(walk(out).every((f) => !readFileSync(f, 'utf8').includes(caKey.split('\n')[1])), 'no file holds any of the CA key');
  t.equal(readFileSync(join(out, 'root-cert.pem'), 'utf8'), ca.certPem, 'the trust root is the CA certificate');
  t.equal(statSync(join(out, 'cluster.local/default/sleep/key.pem')).mode & 0o777, 0o600, 'keys are 0600');

  const tls = meshTlsFromCertDir(out);
  const sleep = await tls.certFor(id('sleep'));
  const x = new X509Certificate(sleep.certPem);
  t.equal(x.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/sleep');
  t.ok(x.checkIssued(new X509Certificate(tls.caPem)) && x.verify(new X509Certificate(tls.caPem).publicKey), 'signed by the lab root');
  t.same(tls.identities(), Object.keys(manifest));

  await t.rejects(tls.certFor(id('other', 'legacy')), NoCertificateError);
  await t.rejects(tls.certFor(id('other', 'legacy')), {
    code: 'ERR_NO_CERTIFICATE',
    message: `no certificate for spiffe://cluster.local/ns/legacy/sa/other: this proxy holds keys only for spiffe://cluster.local/ns/default/sa/sleep, spiffe://cluster.local/ns/default/sa/httpbin (${out})`,
  });

  // Re-issuing replaces the set: a proxy never keeps a key it no longer serves; reload() sees it.
  await issueProxyCerts(join(dir, 'ca'), out, [id('httpbin')]);
  t.notOk(walk(out).some((f) => f.includes('/sleep/')), 'the old identity\'s key is gone from disk');
  t.ok(await tls.certFor(id('sleep')), 'before reload the proxy still has what it loaded');
  tls.reload();
  await t.rejects(tls.certFor(id('sleep')), NoCertificateError, 'after reload it does not');
  t.match(new X509Certificate((await tls.certFor(id('httpbin'))).certPem).subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/httpbin',
    'the identity it still serves: its own certificate, reloaded');
});

t.test('a missing cert dir fails naming the file', async (t) => {
  t.throws(() => meshTlsFromCertDir('/nonexistent/certs'), /ENOENT.*\/nonexistent\/certs\/root-cert.pem/);
});
