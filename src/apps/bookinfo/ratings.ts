// bookinfo's ratings service (ratings.js in Istio's sample, v1: in memory): the stars each
// reviewer gave a product; a POST replaces them, as the sample allows for demonstrations.
import { productId, serveBookinfo, type BookinfoServerOptions, type RunningApp } from './common.js';
import type { IncomingMessage } from 'node:http';

const MAX_BODY = 64 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function startRatings(opts: BookinfoServerOptions): Promise<RunningApp> {
  /** Ratings POSTed per product id; the others get the sample's 5 and 4 stars. */
  const added = new Map<number, unknown>();
  const ratingsOf = (id: number): unknown => (added.has(id) ? { id, ratings: added.get(id) } : { id, ratings: { Reviewer1: 5, Reviewer2: 4 } });
  return serveBookinfo('ratings', opts, async (req, url, reply) => {
    const path = url.pathname;
    if (path === '/health' && req.method === 'GET') return reply.json(200, { status: 'Ratings is healthy' });
    const m = /^\/ratings\/(\d*)/.exec(path);
    if (m && (req.method === 'GET' || req.method === 'POST')) {
      // The sample reads the id as parseInt(last path segment).
      const id = productId(path.split('/').pop() ?? '');
      if (id === undefined) return reply.json(400, { error: 'please provide numeric product ID' });
      if (req.method === 'GET') return reply.json(200, ratingsOf(id));
      let ratings: unknown;
      try {
        ratings = JSON.parse(await readBody(req));
      } catch {
        return reply.json(400, { error: 'please provide valid ratings JSON' });
      }
      added.set(id, ratings);
      return reply.json(200, ratingsOf(id));
    }
    reply.text(404, 'Page not found\n');
  });
}
