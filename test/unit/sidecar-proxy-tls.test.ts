// The sidecar's inbound sniff (Envoy's tls_inspector: a TLS handshake record starts with
// 0x16) and the x-forwarded-client-cert element it appends, without proxies around them.
import t, { type Test } from 'tap';
import net from 'node:net';
import { formatXfcc, looksLikeTls, peekFirstChunk, TLS_HANDSHAKE_RECORD } from '../../src/sidecar-proxy/istio-mtls.js';

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
