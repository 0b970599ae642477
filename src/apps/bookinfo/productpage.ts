// bookinfo's productpage (productpage.py in Istio's sample): the front end. `/productpage` calls
// details and reviews (by their Service names, so every call crosses the mesh) and renders what
// they returned; the `/api/v1/products...` routes return the same calls as JSON. A user who signs
// in (`POST /login`, form field `username`) gets a `user` cookie, and productpage sends that name
// as `end-user` to details and reviews: what a VirtualService `headers: {end-user: {exact: jason}}`
// match in reviews' waypoint sees. (Istio 1.18-1.20's productpage keeps the name in Flask's signed
// `session` cookie; the lab uses a plain `user` cookie, as older samples did, so that
// `curl -b user=jason` works.)
import type { IncomingMessage } from 'node:http';
import { escapeHtml, forwardHeaders, get, jsonOf, serveBookinfo, BOOKINFO_PORT, type BookinfoServerOptions, type RunningApp, type Upstream } from './common.js';

export interface ProductpageOptions extends BookinfoServerOptions {
  /** Base URLs of the services it calls; the Service names by default (resolved through the pod's resolv.conf). */
  detailsUrl?: string;
  reviewsUrl?: string;
  ratingsUrl?: string;
}

/** The sample's client timeout for every call productpage makes. */
const CALL_TIMEOUT_MS = 3_000;
/** The sample tries reviews twice ("bug introduced explicitly for illustration in fault injection task"). */
const REVIEWS_TRIES = 2;

interface Product { id: number; title: string; descriptionHtml: string }

export const PRODUCTS: readonly Product[] = [{
  id: 0,
  title: 'The Comedy of Errors',
  descriptionHtml: '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare\'s</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.',
}];

/** The `user` cookie's value, if the request has one. */
export function userOf(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === 'user') {
      const v = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(v) || undefined;
      } catch {
        return v || undefined;
      }
    }
  }
  return undefined;
}

/** What productpage sends to details, reviews and ratings: the propagated headers, with end-user from the login. */
export function outboundHeaders(req: IncomingMessage): Record<string, string> {
  const h = forwardHeaders(req);
  // productpage does not relay an incoming end-user: it names the signed-in user, or nobody.
  delete h['end-user'];
  const user = userOf(req);
  if (user) h['end-user'] = user;
  return h;
}

interface Call { status: number; body: Record<string, unknown> }

/** A failed call keeps the upstream's status (else 500) and the sample's apology. */
function callResult(u: Upstream, what: string): Call {
  const body = jsonOf(u);
  if (body && typeof body === 'object') return { status: 200, body: body as Record<string, unknown> };
  return { status: u.status && u.status !== 200 ? u.status : 500, body: { error: `Sorry, product ${what} are currently unavailable for this book.` } };
}

export function startProductpage(opts: ProductpageOptions): Promise<RunningApp> {
  const details = opts.detailsUrl ?? `http://details:${BOOKINFO_PORT}`;
  const reviews = opts.reviewsUrl ?? `http://reviews:${BOOKINFO_PORT}`;
  const ratings = opts.ratingsUrl ?? `http://ratings:${BOOKINFO_PORT}`;
  const log = opts.log;

  const getDetails = async (id: string, headers: Record<string, string>): Promise<Call> =>
    callResult(await get(`${details}/details/${id}`, headers, CALL_TIMEOUT_MS), 'details');
  const getReviews = async (id: string, headers: Record<string, string>): Promise<Call> => {
    let last: Upstream = {};
    for (let i = 0; i < REVIEWS_TRIES; i++) {
      last = await get(`${reviews}/reviews/${id}`, headers, CALL_TIMEOUT_MS);
      if (jsonOf(last)) break;
      log?.warn({ status: last.status, error: last.error, attempt: i + 1 }, 'reviews call failed');
    }
    return callResult(last, 'reviews');
  };
  const getRatings = async (id: string, headers: Record<string, string>): Promise<Call> =>
    callResult(await get(`${ratings}/ratings/${id}`, headers, CALL_TIMEOUT_MS), 'ratings');

  return serveBookinfo('productpage', opts, async (req, url, reply) => {
    const path = url.pathname;
    const headers = outboundHeaders(req);
    if (path === '/' || path === '/index.html') return reply.html(200, indexPage());
    if (path === '/health') return reply.text(200, 'Product page is healthy');
    if (path === '/login' && req.method === 'POST') {
      const form = new URLSearchParams(await readForm(req));
      const user = form.get('username') ?? url.searchParams.get('username') ?? '';
      return reply.redirect(backTo(req), { 'set-cookie': `user=${encodeURIComponent(user)}; Path=/` });
    }
    if (path === '/logout') return reply.redirect(backTo(req), { 'set-cookie': 'user=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/' });
    if (path === '/productpage') {
      const id = 0;
      // Sequential, as the sample: details first, then reviews.
      const d = await getDetails(String(id), headers);
      const r = await getReviews(String(id), headers);
      return reply.html(200, productPage(PRODUCTS[id], d, r, userOf(req)));
    }
    if (path === '/api/v1/products') return reply.json(200, PRODUCTS);
    const m = /^\/api\/v1\/products\/([^/]+)(\/reviews|\/ratings)?$/.exec(path);
    if (m) {
      const id = encodeURIComponent(decodeURIComponent(m[1]));
      const call = m[2] === '/reviews' ? getReviews : m[2] === '/ratings' ? getRatings : getDetails;
      const res = await call(id, headers);
      return reply.json(res.status, res.body);
    }
    reply.text(404, 'Not Found\n');
  });
}

function backTo(req: IncomingMessage): string {
  const ref = req.headers.referer;
  return typeof ref === 'string' && ref !== '' ? ref : '/productpage';
}

function readForm(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
      if (body.length > 16 * 1024) req.destroy(new Error('form too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

const head = (): string => '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>Simple Bookstore App</title>\n</head>\n<body>\n';

function indexPage(): string {
  return `${head()}<h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
<table>
<tr><th>name</th><td>http://details:${BOOKINFO_PORT}</td></tr>
<tr><th>endpoint</th><td>details</td></tr>
<tr><th>children</th><td>details, reviews (which calls ratings)</td></tr>
</table>
<p><h4>Click on one of the links below to auto generate a request to the backend as a real user or a tester</h4></p>
<p><a href="/productpage?u=normal">Normal user</a></p>
<p><a href="/productpage?u=test">Test user</a></p>
</body>
</html>
`;
}

interface ReviewJson { reviewer?: string; text?: string; rating?: { stars?: number; color?: string; error?: string } }

export function productPage(product: Product, details: Call, reviews: Call, user?: string): string {
  const e = (v: unknown): string => escapeHtml(String(v ?? ''));
  const out: string[] = [head()];
  out.push('<nav>\n<a href="#">BookInfo Sample</a>\n');
  out.push(user
    ? `<p>${e(user)} ( <a href="logout">sign out</a> )</p>\n`
    : '<form method="post" action="login"><input type="text" name="username" placeholder="User Name"><input type="password" name="passwd" placeholder="Password"><button type="submit">Sign in</button></form>\n');
  out.push('</nav>\n');
  // descriptionHtml is the sample's own markup, rendered as HTML on purpose.
  out.push(`<h3>${e(product.title)}</h3>\n<p>Summary: ${product.descriptionHtml}</p>\n`);

  out.push('<div id="details">\n');
  if (details.status === 200) {
    const d = details.body;
    out.push('<h4>Book Details</h4>\n<dl>\n');
    for (const [label, key] of [['Type', 'type'], ['Pages', 'pages'], ['Publisher', 'publisher'], ['Language', 'language'], ['ISBN-10', 'ISBN-10'], ['ISBN-13', 'ISBN-13']]) {
      out.push(`<dt>${label}:</dt>${e(d[key])}\n`);
    }
    out.push('</dl>\n');
  } else {
    out.push(`<h4>Error fetching product details!</h4>\n<p>${e(details.body.error)}</p>\n`);
  }
  out.push('</div>\n');

  out.push('<div id="reviews">\n');
  if (reviews.status === 200) {
    const r = reviews.body;
    out.push('<h4>Book Reviews</h4>\n');
    for (const review of (Array.isArray(r.reviews) ? r.reviews : []) as ReviewJson[]) {
      out.push(`<blockquote>\n<p>${e(review.text)}</p>\n<small>${e(review.reviewer)}</small>\n`);
      const rating = review.rating;
      if (rating && typeof rating.stars === 'number') {
        const full = Math.max(0, Math.min(5, Math.trunc(rating.stars)));
        out.push(`<font color="${e(rating.color)}">\n`);
        for (let i = 0; i < full; i++) out.push('<span class="glyphicon glyphicon-star"></span>\n');
        for (let i = full; i < 5; i++) out.push('<span class="glyphicon glyphicon-star-empty"></span>\n');
        out.push('</font>\n');
      } else if (rating?.error) {
        out.push(`<p><i>${e(rating.error)}</i></p>\n`);
      }
      out.push('</blockquote>\n');
    }
    out.push(`<dl>\n<dt>Reviews served by:</dt>\n<u>${e(r.podname)}</u>\n`);
    if (r.clustername !== undefined && r.clustername !== 'null') out.push(`on cluster <u>${e(r.clustername)}</u>\n`);
    out.push('</dl>\n');
  } else {
    out.push(`<h4>Error fetching product reviews!</h4>\n<p>${e(reviews.body.error)}</p>\n`);
  }
  out.push('</div>\n</body>\n</html>\n');
  return out.join('');
}
