// The bookinfo services on loopback, wired to each other (or to a recording stand-in) by URL:
// what each answers, what productpage renders, which headers travel downstream, and how a
// failing or slow upstream shows up (the sample's messages, statuses, retries and timeouts).
import t, { type Test } from 'tap';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDetails } from '../../src/apps/bookinfo/details.js';
import { startRatings } from '../../src/apps/bookinfo/ratings.js';
import { startReviews, type ReviewsVersion } from '../../src/apps/bookinfo/reviews.js';
import { startProductpage } from '../../src/apps/bookinfo/productpage.js';
import type { RunningApp } from '../../src/apps/bookinfo/common.js';

interface Got { status: number; headers: IncomingHttpHeaders; body: string }

function call(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const base = (a: { port: number }): string => `http://127.0.0.1:${a.port}`;

async function started(t: Test, app: Promise<RunningApp>): Promise<RunningApp> {
  const a = await app;
  t.teardown(() => a.close());
  return a;
}

/** A stand-in upstream that records each request's path and headers and answers as told. */
async function recorder(t: Test, answer: (path: string) => { status: number; body: string; delayMs?: number }) {
  const seen: Array<{ path: string; headers: IncomingHttpHeaders }> = [];
  const server: Server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    const a = answer(req.url ?? '');
    const timer = setTimeout(() => {
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.body);
    }, a.delayMs ?? 0);
    res.on('close', () => clearTimeout(timer));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }));
  return { port: (server.address() as AddressInfo).port, seen };
}

const TRACE = {
  'x-request-id': 'e6b1c3a0-7a6f-4b8e-9d1e-0c7f0b5d2a11',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  tracestate: 'congo=t61rcWkgMzE',
  'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
  'x-b3-spanid': 'e457b5a2e4d86bd1',
  'x-b3-parentspanid': '05e3ac9a4f6e3b90',
  'x-b3-sampled': '1',
  'x-ot-span-context': 'abc',
  'user-agent': 'bookinfo-test/1',
};

t.test('details: the sample book for a numeric id, 400 otherwise', async (t) => {
  const d = await started(t, startDetails({ port: 0, host: '127.0.0.1' }));
  const ok = await call(d.port, '/details/0');
  t.equal(ok.status, 200);
  t.match(ok.headers['content-type'], /^application\/json/);
  t.same(JSON.parse(ok.body), {
    id: 0, author: 'William Shakespeare', year: 1595, type: 'paperback', pages: 200, publisher: 'PublisherA',
    language: 'English', 'ISBN-10': '1234567890', 'ISBN-13': '123-1234567890',
  });
  t.equal(JSON.parse((await call(d.port, '/details/7')).body).id, 7);
  const bad = await call(d.port, '/details/abc');
  t.same([bad.status, JSON.parse(bad.body)], [400, { error: 'please provide numeric product id' }]);
  t.same(JSON.parse((await call(d.port, '/health')).body), { status: 'Details is healthy' });
  t.equal((await call(d.port, '/nope')).status, 404);
});

t.test('ratings: 5 and 4 stars, a POST replaces them, 400 for a bad id or body', async (t) => {
  const r = await started(t, startRatings({ port: 0, host: '127.0.0.1' }));
  t.same(JSON.parse((await call(r.port, '/ratings/0')).body), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
  const post = await call(r.port, '/ratings/1', { method: 'POST', body: '{"Reviewer1":1,"Reviewer2":2}' });
  t.same([post.status, JSON.parse(post.body)], [200, { id: 1, ratings: { Reviewer1: 1, Reviewer2: 2 } }]);
  t.same(JSON.parse((await call(r.port, '/ratings/1')).body).ratings, { Reviewer1: 1, Reviewer2: 2 }, 'the POSTed ratings stay');
  t.same(JSON.parse((await call(r.port, '/ratings/0')).body).ratings, { Reviewer1: 5, Reviewer2: 4 }, 'other products keep the defaults');
  const badId = await call(r.port, '/ratings/x');
  t.same([badId.status, JSON.parse(badId.body)], [400, { error: 'please provide numeric product ID' }]);
  const badBody = await call(r.port, '/ratings/2', { method: 'POST', body: '{nope' });
  t.same([badBody.status, JSON.parse(badBody.body)], [400, { error: 'please provide valid ratings JSON' }]);
  t.same(JSON.parse((await call(r.port, '/health')).body), { status: 'Ratings is healthy' });
});

t.test('reviews: v1 without ratings, v2 black stars, v3 red stars; podname says who answered', async (t) => {
  const ratings = await recorder(t, () => ({ status: 200, body: '{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}' }));
  const rev = async (version: ReviewsVersion) =>
    started(t, startReviews({ port: 0, host: '127.0.0.1', version, podname: `reviews-${version}-5b5d6494f4-8vq7m`, ratingsUrl: base(ratings) }));
  const v1 = await rev('v1');
  const body1 = JSON.parse((await call(v1.port, '/reviews/0', { headers: TRACE })).body);
  t.same(body1, {
    id: '0', podname: 'reviews-v1-5b5d6494f4-8vq7m', clustername: 'null',
    reviews: [
      { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
      { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
    ],
  }, 'v1: no rating at all');
  t.equal(ratings.seen.length, 0, 'v1 never calls ratings');

  const v2 = await rev('v2');
  const body2 = JSON.parse((await call(v2.port, '/reviews/0', { headers: { ...TRACE, 'end-user': 'jason', cookie: 'user=jason' } })).body);
  t.same(body2.reviews.map((r: { rating: unknown }) => r.rating), [{ stars: 5, color: 'black' }, { stars: 4, color: 'black' }]);
  t.equal(body2.podname, 'reviews-v2-5b5d6494f4-8vq7m');
  t.equal(ratings.seen.length, 1);
  t.equal(ratings.seen[0].path, '/ratings/0');
  t.match(ratings.seen[0].headers, { ...TRACE, 'end-user': 'jason', cookie: 'user=jason' }, 'v2 propagates the tracing, end-user and cookie headers to ratings');

  const v3 = await rev('v3');
  const body3 = JSON.parse((await call(v3.port, '/reviews/0')).body);
  t.same(body3.reviews.map((r: { rating: unknown }) => r.rating), [{ stars: 5, color: 'red' }, { stars: 4, color: 'red' }]);
  t.equal((await call(v3.port, '/reviews/zero')).status, 404);
  t.same(JSON.parse((await call(v3.port, '/health')).body), { status: 'Reviews is healthy' });
});

t.test('reviews: ratings down or too slow -> "Ratings service is currently unavailable"', async (t) => {
  const slow = await recorder(t, () => ({ status: 200, body: '{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}', delayMs: 4000 }));
  const failing = await recorder(t, () => ({ status: 503, body: 'no healthy upstream' }));
  const v3 = await started(t, startReviews({ port: 0, host: '127.0.0.1', version: 'v3', podname: 'reviews-v3', ratingsUrl: base(slow) }));
  const t0 = Date.now();
  const body = JSON.parse((await call(v3.port, '/reviews/0')).body);
  const ms = Date.now() - t0;
  t.same(body.reviews.map((r: { rating: unknown }) => r.rating), [
    { error: 'Ratings service is currently unavailable' }, { error: 'Ratings service is currently unavailable' },
  ]);
  t.ok(ms >= 2400 && ms < 3900, `v3 gives up on ratings after its 2.5 s timeout (${ms} ms)`);
  const v2 = await started(t, startReviews({ port: 0, host: '127.0.0.1', version: 'v2', podname: 'reviews-v2', ratingsUrl: base(failing) }));
  const body2 = JSON.parse((await call(v2.port, '/reviews/0')).body);
  t.equal(body2.reviews[0].rating.error, 'Ratings service is currently unavailable', 'a 503 from ratings is the same');
});

t.test('productpage: the page shows details and reviews; the API returns them as JSON', async (t) => {
  const details = await started(t, startDetails({ port: 0, host: '127.0.0.1' }));
  const ratings = await started(t, startRatings({ port: 0, host: '127.0.0.1' }));
  const reviews = await started(t, startReviews({ port: 0, host: '127.0.0.1', version: 'v2', podname: 'reviews-v2-5c5d8d7f9b-l7kzs', ratingsUrl: base(ratings) }));
  const pp = await started(t, startProductpage({ port: 0, host: '127.0.0.1', detailsUrl: base(details), reviewsUrl: base(reviews), ratingsUrl: base(ratings) }));

  const index = await call(pp.port, '/');
  t.match(index.body, /<title>Simple Bookstore App<\/title>/, 'the walk-through\'s grep finds the title on /');
  const page = await call(pp.port, '/productpage');
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.body, /<title>Simple Bookstore App<\/title>/);
  t.match(page.body, /<h3>The Comedy of Errors<\/h3>/);
  t.match(page.body, /<h4>Book Details<\/h4>[\s\S]*<dt>Type:<\/dt>paperback[\s\S]*<dt>ISBN-13:<\/dt>123-1234567890/, 'what details returned');
  t.match(page.body, /<h4>Book Reviews<\/h4>[\s\S]*An extremely entertaining play by Shakespeare/, 'what reviews returned');
  t.equal(page.body.match(/<font color="black">/g)?.length, 2, 'black stars for both reviewers');
  t.equal(page.body.match(/glyphicon-star"/g)?.length, 9, '5 + 4 full stars');
  t.equal(page.body.match(/glyphicon-star-empty"/g)?.length, 1, 'and one empty star');
  t.match(page.body, /<u>reviews-v2-5c5d8d7f9b-l7kzs<\/u>/, 'the walk-through\'s `grep reviews-v.-` finds the pod');

  t.same(JSON.parse((await call(pp.port, '/api/v1/products')).body)[0].title, 'The Comedy of Errors');
  t.same(JSON.parse((await call(pp.port, '/api/v1/products/0')).body).publisher, 'PublisherA');
  t.same(JSON.parse((await call(pp.port, '/api/v1/products/0/reviews')).body).podname, 'reviews-v2-5c5d8d7f9b-l7kzs');
  t.same(JSON.parse((await call(pp.port, '/api/v1/products/0/ratings')).body), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
  const bad = await call(pp.port, '/api/v1/products/abc');
  t.same([bad.status, JSON.parse(bad.body)], [400, { error: 'Sorry, product details are currently unavailable for this book.' }], 'details\' 400 passes through');
  t.equal((await call(pp.port, '/health')).body, 'Product page is healthy');
});

t.test('productpage: login cookie -> end-user downstream; tracing headers propagated', async (t) => {
  const reviews = await recorder(t, () => ({ status: 200, body: '{"id":"0","podname":"reviews-v1-x","clustername":"null","reviews":[]}' }));
  const details = await recorder(t, () => ({ status: 200, body: '{"id":0,"type":"paperback"}' }));
  const pp = await started(t, startProductpage({ port: 0, host: '127.0.0.1', detailsUrl: base(details), reviewsUrl: base(reviews) }));

  const login = await call(pp.port, '/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=jason&passwd=x' });
  t.equal(login.status, 302);
  t.equal(login.headers.location, '/productpage', 'back to the product page when there is no referer');
  t.match(login.headers['set-cookie']?.[0], /^user=jason; Path=\//, 'the login sets the user cookie');

  const page = await call(pp.port, '/productpage', { headers: { ...TRACE, cookie: 'user=jason', 'end-user': 'mallory' } });
  t.match(page.body, /jason \( <a href="logout">sign out<\/a> \)/, 'the page names the signed-in user');
  t.equal(reviews.seen.length, 1);
  const h = reviews.seen[0].headers;
  t.equal(h['end-user'], 'jason', 'end-user comes from the login, not from the caller\'s header');
  t.match(h, { ...TRACE, cookie: 'user=jason' }, 'x-request-id, traceparent/tracestate, b3, x-ot-span-context, user-agent and cookie travel to reviews');
  t.match(details.seen[0].headers, { ...TRACE, 'end-user': 'jason' }, 'and to details');

  await call(pp.port, '/productpage', { headers: { 'end-user': 'jason' } });
  t.equal(reviews.seen[1].headers['end-user'], undefined, 'without a login there is no end-user');
  const out = await call(pp.port, '/logout', { headers: { referer: 'http://productpage:9080/productpage' } });
  t.same([out.status, out.headers.location], [302, 'http://productpage:9080/productpage']);
  t.match(out.headers['set-cookie']?.[0], /^user=; .*Max-Age=0/, 'logout clears the cookie');
});

t.test('productpage: failing upstreams show the sample\'s errors; reviews is tried twice', async (t) => {
  const reviews = await recorder(t, () => ({ status: 503, body: 'upstream connect error' }));
  const pp = await started(t, startProductpage({ port: 0, host: '127.0.0.1', detailsUrl: 'http://127.0.0.1:1', reviewsUrl: base(reviews) }));
  const page = await call(pp.port, '/productpage');
  t.equal(page.status, 200, 'the page itself still renders');
  t.match(page.body, /Error fetching product details!<\/h4>\n<p>Sorry, product details are currently unavailable for this book.<\/p>/);
  t.match(page.body, /Error fetching product reviews!<\/h4>\n<p>Sorry, product reviews are currently unavailable for this book.<\/p>/);
  t.equal(reviews.seen.length, 2, 'reviews was tried twice, as the sample does');
  const api = await call(pp.port, '/api/v1/products/0/reviews');
  t.equal(api.status, 503, 'the API passes the upstream status through');
  const det = await call(pp.port, '/api/v1/products/0');
  t.equal(det.status, 500, 'no response at all is a 500');
});

t.test('the pod entries: flags, ready file, podname from --name, bad --version exits 2', async (t) => {
  const { spawn } = await import('node:child_process');
  const { existsSync, mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join, resolve } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'alt-bookinfo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Only the TypeScript loader: the child must not report to this test's tap process.
  const loader = process.execArgv.filter((a) => a.includes('typescript'));
  const entry = (name: string): string => resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../src/apps', `${name}.ts`);
  const run = (name: string, args: string[]) => {
    const proc = spawn(process.execPath, [...loader, entry(name), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d));
    proc.stderr!.on('data', (d: Buffer) => (out += d));
    const exit = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
    return { proc, exit, out: () => out };
  };

  const bad = run('bookinfo-reviews', ['--version', 'v4', '--port', '0']);
  t.equal(await bad.exit, 2, 'an unknown version is a usage error (exit 2)');
  t.match(bad.out(), /reviews: --version must be one of v1, v2, v3, got "v4"/);

  const ready = join(dir, 'ready-reviews');
  const rev = run('bookinfo-reviews', ['--version', 'v1', '--port', '0', '--host', '127.0.0.1', '--name', 'reviews-v1-abc', '--ready-file', ready]);
  const deadline = Date.now() + 20_000;
  while (!existsSync(ready) && Date.now() < deadline && rev.proc.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  const info = JSON.parse(readFileSync(ready, 'utf8'));
  t.match(info, { app: 'reviews', version: 'v1' });
  t.equal(JSON.parse((await call(info.port, '/reviews/0')).body).podname, 'reviews-v1-abc', '--name is the podname');
  rev.proc.kill('SIGTERM');
  t.equal(await rev.exit, 0, 'SIGTERM: exit 0');
});
