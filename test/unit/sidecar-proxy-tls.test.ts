// The sidecar's inbound sniff (Envoy's tls_inspector: a TLS handshake record starts with
// 0x16) and the x-forwarded-client-cert element it appends, without proxies around them.
import t, { type Test } from 'tap';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceptIstioMtls, connectIstioMtls, formatXfcc, looksLikeTls, peekFirstChunk, TLS_HANDSHAKE_RECORD } from '../../src/sidecar-proxy/istio-mtls.js';
import { createLabCa, issueProxyCerts } from '../../src/mesh/ca.js';
import { meshTlsFromCertDir } from '../../src/mesh/cert-dir.js';
import { formatSpiffe } from '../../src/mesh/identity.js';
import type { MeshTls } from '../../src/mesh/tls.js';

const id = (sa: string, ns = 'default') => ({ trustDomain: 'cluster.local', namespace: ns, serviceAccount: sa });

t.test('looksLikeTls: the first byte of a ClientHello record, nothing else', async (t) => {
  t.equal(TLS_HANDSHAKE_RECORD, 0x16);
  t.ok(looksLikeTls(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])), 'TLS 1.x handshake record');
  t.notOk(looksLikeTls(Buffer.from('GET / HTTP/1.1\r\n')), 'HTTP/1.1');
  t.notOk(looksLikeTls(Buffer.from('PRI * HTTP/2.0\r\n')), 'HTTP/2 preface');
  t.notOk(looksLikeTls(Buffer.from([0x17, 0x03, 0x03])), 'application data record is not a handshake');
  t.notOk(looksLikeTls(Buffer.alloc(0)), 'nothing sent yet');
});

/** A connected pair on loopback: [the accepted side (paused, as the proxy accepts it), the client]. */
async function pair(t: Test): Promise<[net.Socket, net.Socket]> {
  const accepted = new Promise<net.Socket>((resolve) => {
    const srv = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
      srv.close();
      resolve(s);
    });
    srv.listen(0, '127.0.0.1', () => {
      const c = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
      t.teardown(() => c.destroy());
      clientP(c);
    });
  });
  let clientP!: (c: net.Socket) => void;
  const client = new Promise<net.Socket>((r) => (clientP = r));
  const [s, c] = await Promise.all([accepted, client]);
  t.teardown(() => s.destroy());
  return [s, c];
}

t.test('peekFirstChunk: the bytes are put back, the stream reads as if untouched', async (t) => {
  const [s, c] = await pair(t);
  c.write(Buffer.from([0x16, 0x03, 0x01]));
  const first = await peekFirstChunk(s);
  t.ok(first && looksLikeTls(first));
  c.end('rest');
  const all: Buffer[] = [];
  s.on('data', (b: Buffer) => all.push(b));
  // peekFirstChunk leaves the socket paused, as the proxy's next reader (copy, TLS, HTTP) expects.
  s.resume();
  await new Promise((r) => s.once('end', r));
  t.same([...Buffer.concat(all)], [0x16, 0x03, 0x01, ...Buffer.from('rest')], 'the peeked byte comes first, then the rest');
});

t.test('peekFirstChunk: null when the client closes without a byte; empty for a silent (server-first) client', async (t) => {
  const [s, c] = await pair(t);
  c.end();
  t.equal(await peekFirstChunk(s), null);
  const [s2] = await pair(t);
  const silent = await peekFirstChunk(s2, 50);
  t.same(silent, Buffer.alloc(0), 'after the timeout: treated as plaintext');
});

t.test('formatXfcc: By, Hash, Subject, URI as Envoy orders them', async (t) => {
  t.equal(
    formatXfcc(id('productpage'), id('sleep', 'foo'), { hash: 'ab'.repeat(32), subject: '' }),
    `By=spiffe://cluster.local/ns/default/sa/productpage;Hash=${'ab'.repeat(32)};Subject="";URI=spiffe://cluster.local/ns/foo/sa/sleep`,
  );
  t.equal(formatXfcc(id('productpage'), id('sleep')), 'By=spiffe://cluster.local/ns/default/sa/productpage;URI=spiffe://cluster.local/ns/default/sa/sleep',
    'no certificate in hand (an HBONE tunnel): identities only');
  t.equal(formatXfcc(id('a'), id('b'), { hash: '00', subject: 'O="x"' }), 'By=spiffe://cluster.local/ns/default/sa/a;Hash=00;Subject="O=\\"x\\"";URI=spiffe://cluster.local/ns/default/sa/b',
    'quotes in a subject are escaped');
});

t.test('Istio mTLS checks the SAN both ways: the client wants the peer it chose, the server a certificate of the mesh CA', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-mtls-san-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await createLabCa(join(dir, 'ca'), { lab: 'san' });
  await createLabCa(join(dir, 'other-ca'), { lab: 'other' });
  const certs = async (ca: string, sa: string) => {
    await issueProxyCerts(join(dir, ca), join(dir, `${ca}-${sa}`), [id(sa)]);
    return meshTlsFromCertDir(join(dir, `${ca}-${sa}`));
  };
  const server = await certs('ca', 'productpage');
  const accepted: string[] = [];
  const srv = net.createServer((raw) => {
    raw.on('error', () => undefined);
    acceptIstioMtls(server, raw, id('productpage'))
      .then((m) => { accepted.push(formatSpiffe(m.peer)); m.stream.end('ok'); })
      .catch((e: Error) => { accepted.push(`refused: ${e.message}`); raw.destroy(); });
  });
  await new Promise<void>((res) => srv.listen({ host: '127.0.0.1', port: 0 }, res));
  t.teardown(() => srv.close());
  const port = (srv.address() as net.AddressInfo).port;
  const dial = async (mesh: MeshTls, source: string, expected: string): Promise<string> => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.on('error', () => undefined);
    try {
      const s = await connectIstioMtls(mesh, sock, { ip: '127.0.0.1', port }, id(source), id(expected), 5000);
      // The server's answer: it accepted the handshake too.
      const reply = await new Promise<string>((res) => { let b = ''; s.on('data', (d: Buffer) => { b += d; }); s.once('end', () => res(b)); s.once('error', (e) => res(`error ${e.message}`)); });
      s.destroy();
      return `connected, ${reply}`;
    } catch (e) {
      sock.destroy();
      return `failed: ${(e as Error).message}`;
    }
  };
  const sleep = await certs('ca', 'sleep');
  t.equal(await dial(sleep, 'sleep', 'productpage'), 'connected, ok', 'the peer proves the identity the client expects');
  t.equal(accepted[0], 'spiffe://cluster.local/ns/default/sa/sleep', 'the server read the client\'s URI SAN');
  t.match(await dial(sleep, 'sleep', 'reviews'), /^failed: .*spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews/, 'a peer with another SAN than the chosen endpoint\'s is refused by the client');
  // A client of another mesh trusts neither our certificate nor we its: the handshake fails, and
  // the server's accept ends at once rather than at its 10 s handshake timeout.
  const started = Date.now();
  t.match(await dial(await certs('other-ca', 'sleep'), 'sleep', 'productpage'), /^failed: /, 'a client of another CA fails');
  await waitUntil(() => accepted.length === 3, 3000);
  t.match(accepted[2], /^refused: TLS handshake failed/, 'and the server\'s accept fails');
  t.ok(Date.now() - started < 3000, 'promptly');
  // One that trusts our CA but holds a certificate of its own: the server's check refuses it.
  const impostor: MeshTls = { ...(await certs('other-ca', 'sleep')), caPem: sleep.caPem };
  const r = await dial(impostor, 'sleep', 'productpage');
  await waitUntil(() => accepted.length === 4);
  t.match(accepted[3], /^refused: (peer certificate not issued by the mesh CA|TLS handshake failed)/, `the server refuses a client certificate its mesh CA did not sign (client: ${r})`);
  t.notMatch(r, /^connected, ok$/, 'the client never gets the server\'s answer');
});

async function waitUntil(f: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
