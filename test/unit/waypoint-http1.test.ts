// The waypoint's HTTP/1.1 side (proxy/l7-server.ts) against hostile requests, fed as the
// waypoint feeds it: each connection through the duplex adapter an HBONE tunnel goes through.
// Each hostile request gets its status (400/408/431) and a closed connection, is counted under
// lab_refused_total{listener="http"} and logged once, and a valid request is served after it.
import t, { type Test } from 'tap';
import net from 'node:net';
import { captureLogger } from './capture-logger.js';
import { createL7Server, HTTP1_LIMITS, type Http1Limits } from '../../src/proxy/l7-server.js';
import { Refusals } from '../../src/proxy/refusals.js';
import { plainDuplex } from '../../src/mesh/duplex-adapter.js';
import type { L7Engine } from '../../src/l7/engine.js';
import { seededRng } from './hbone-hostile-random.js';

const TEST_LIMITS: Partial<Http1Limits> = { headersTimeoutMs: 300, requestTimeoutMs: 600, timeoutCheckMs: 50 };

interface Rig {
  port: number;
  refusals: Refusals;
  lines: Array<Record<string, unknown>>;
  served: () => number;
}

async function rig(t: Test, opts: { direct?: boolean } = {}): Promise<Rig> {
  let served = 0;
  // The engine's place: answers every request it is given with 200 and the body length.
  const engine = {
    handle: async (req: NodeJS.ReadableStream & { url?: string }, res: import('node:http').ServerResponse) => {
      let n = 0;
      for await (const c of req) n += (c as Buffer).length;
      served++;
      res.end(`ok ${n}\n`);
      return {};
    },
  } as unknown as L7Engine;
  const { log, lines } = captureLogger();
  const refusals = new Refusals();
  const l7 = createL7Server(engine, log, () => undefined, { refusals, limits: TEST_LIMITS });
  const front = net.createServer({ allowHalfOpen: true }, (s) => l7.serve(opts.direct ? s : plainDuplex(s), { srcIp: '10.244.0.9', dstIp: '10.96.0.11', dstPort: 8000 } as never));
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
  t.teardown(async () => { await l7.close(); front.close(); });
  return { port: (front.address() as net.AddressInfo).port, refusals, lines, served: () => served };
}

/** Writes `chunks` (a function drips them), then reads until the server closes. */
function exchange(port: number, send: string | Buffer | ((s: net.Socket) => void)): Promise<{ text: string; ms: number }> {
  return new Promise((res) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const t0 = Date.now();
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => res({ text, ms: Date.now() - t0 }));
    if (typeof send === 'function') send(s);
    else s.write(send);
  });
}

const status = (text: string): number | undefined => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]) || undefined;
const VALID = 'GET /get HTTP/1.1\r\nHost: httpbin\r\nConnection: close\r\n\r\n';

async function stillServes(t: Test, r: Rig): Promise<void> {
  const { text } = await exchange(r.port, VALID);
  t.equal(status(text), 200, 'a valid request is served afterwards');
}

t.test('the limits carry Envoy\'s and Node\'s values', async (t) => {
  t.equal(HTTP1_LIMITS.maxHeaderSize, 60 * 1024, 'Envoy max_request_headers_kb 60');
  t.equal(HTTP1_LIMITS.maxHeadersCount, 100, 'Envoy max_headers_count 100');
  t.equal(HTTP1_LIMITS.headersTimeoutMs, 60_000);
  t.equal(HTTP1_LIMITS.requestTimeoutMs, 300_000);
});

t.test('request smuggling: conflicting Content-Length / Transfer-Encoding -> 400 and close', async (t) => {
  const r = await rig(t);
  const cases: Array<[string, string]> = [
    ['Content-Length and Transfer-Encoding', 'POST /post HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n'],
    ['two different Content-Lengths', 'POST /post HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['Transfer-Encoding not ending in chunked', 'POST /post HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
    ['an obfuscated Transfer-Encoding', 'POST /post HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc'],
    ['a bare LF inside a header value', 'GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nTransfer-Encoding: chunked\r\n\r\n'],
  ];
  for (const [what, req] of cases) {
    const before = r.refusals.value('http');
    const { text } = await exchange(r.port, req);
    t.equal(status(text), 400, `${what}: 400`);
    t.match(text, /connection: close/i, `${what}: the connection is closed`);
    t.notMatch(text, /smuggled|HTTP\/1\.1 200/, `${what}: nothing behind it was served`);
    t.equal(r.refusals.value('http') - before, 1, `${what}: counted once`);
  }
  t.equal(r.served(), 0, 'the engine saw none of them');
  t.ok(r.refusals.value('http', 'smuggling') >= 3, 'labelled smuggling');
  t.equal(r.lines.filter((l) => l.msg === 'request refused').length, cases.length, 'one log line per refusal');
  await stillServes(t, r);
});

t.test('oversized request line, headers and header count -> 431 and close', async (t) => {
  const r = await rig(t);
  const longLine = await exchange(r.port, `GET /${'a'.repeat(70 * 1024)} HTTP/1.1\r\nHost: h\r\n\r\n`);
  t.equal(status(longLine.text), 431, '70 KiB request line');
  const bigHeaders = await exchange(r.port, `GET / HTTP/1.1\r\nHost: h\r\n${Array.from({ length: 7 }, (_, i) => `X-${i}: ${'b'.repeat(10_000)}\r\n`).join('')}\r\n`);
  t.equal(status(bigHeaders.text), 431, '70 KB of headers');
  const many = await exchange(r.port, `GET / HTTP/1.1\r\nHost: h\r\n${Array.from({ length: 150 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`);
  t.equal(status(many.text), 431, '150 header fields');
  t.equal(r.refusals.value('http', 'header_size'), 2, 'each counted once');
  t.equal(r.refusals.value('http', 'header_count'), 1);
  t.equal(r.served(), 0);
  // Just under the limits passes.
  const fine = await exchange(r.port, `GET /${'a'.repeat(20 * 1024)} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n${Array.from({ length: 90 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`);
  t.equal(status(fine.text), 200, 'a 20 KiB path with 90 headers is served');
});

t.test('slowloris: headers trickled past headersTimeout -> 408 and close', async (t) => {
  const r = await rig(t);
  const { text, ms } = await exchange(r.port, (s) => {
    s.write('GET / HTTP/1.1\r\nHost: h\r\n');
    const drip = setInterval(() => (s.destroyed ? clearInterval(drip) : s.write('X-Slow: 1\r\n')), 50);
    s.on('close', () => clearInterval(drip));
  });
  t.equal(status(text), 408);
  t.ok(ms >= 250 && ms < 3000, `closed after the headers timeout (${ms} ms)`);
  t.equal(r.refusals.value('http', 'request_timeout'), 1);
  await stillServes(t, r);
});

t.test('a body trickled past requestTimeout -> 408; a plain TCP connection (sidecar) too', async (t) => {
  for (const direct of [false, true]) {
    const r = await rig(t, { direct });
    const { text, ms } = await exchange(r.port, 'POST /post HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123456789');
    t.equal(status(text), 408, `${direct ? 'socket' : 'tunnel'}: 408`);
    t.ok(ms >= 500, `${direct ? 'socket' : 'tunnel'}: after the request timeout (${ms} ms)`);
    t.equal(r.refusals.value('http', 'request_timeout'), 1);
  }
});

t.test('an idle keep-alive connection between requests is not cut by those timeouts', async (t) => {
  const r = await rig(t);
  const s = net.connect({ host: '127.0.0.1', port: r.port });
  let text = '';
  s.on('data', (d: Buffer) => (text += d));
  s.write('GET /1 HTTP/1.1\r\nHost: h\r\n\r\n');
  const until = async (n: number): Promise<void> => {
    const end = Date.now() + 5000;
    while ((text.match(/HTTP\/1\.1 200/g) ?? []).length < n) {
      if (Date.now() > end) throw new Error(`no response ${n}: ${text}`);
      await new Promise((res) => setTimeout(res, 10));
    }
  };
  await until(1);
  // Idle for longer than both timeouts (Envoy's idle timeout between requests is off in Istio).
  await new Promise((res) => setTimeout(res, 900));
  t.notOk(s.destroyed, 'still open');
  s.write('GET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
  await until(2);
  t.equal((text.match(/HTTP\/1\.1 200/g) ?? []).length, 2, 'second request served on the same connection');
  s.destroy();
  t.equal(r.refusals.value('http'), 0);
});

t.test('fuzz: mutated requests get a status or a close, never a crash', async (t) => {
  const rng = seededRng();
  const seedNote = `FUZZ_SEED=${rng.seed}`;
  t.comment(seedNote);
  const r = await rig(t, { direct: false });
  // A valid chunked request: mutations turn it into smuggling attempts, bad framing or still-valid requests.
  const base = Buffer.from('POST /post?x=1 HTTP/1.1\r\nHost: httpbin\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n4\r\nbody\r\n0\r\n\r\n');
  const tokens = ['\r\n', '\n', '\r', ' ', ':', '\0', 'Content-Length: 99999999999999999999', 'Transfer-Encoding: chunked', '0\r\n\r\n', '\t', 'ü', 'HTTP/1.1', '-1'];
  for (let i = 0; i < 60; i++) {
    let b = Buffer.from(base);
    for (let m = 0; m < 1 + rng.int(4); m++) {
      const at = rng.int(b.length);
      const op = rng.int(3);
      if (op === 0) b = Buffer.concat([b.subarray(0, at), Buffer.from(rng.pick(tokens)), b.subarray(at)]);
      else if (op === 1) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(8))]);
      else b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(16)), b.subarray(at)]);
    }
    const { text } = await exchange(r.port, (s) => s.end(b));
    const st = status(text);
    t.ok(st === undefined || (st >= 200 && st < 500), `mutation ${i}: ${st ?? 'closed'} (${seedNote})`);
  }
  const { text } = await exchange(r.port, VALID);
  t.equal(status(text), 200, `still serving after the fuzz (${seedNote})`);
  t.ok(r.refusals.value('http') > 0 && r.served() > 0, `some mutations refused (${r.refusals.value('http')}), some served (${r.served()}) (${seedNote})`);
});
