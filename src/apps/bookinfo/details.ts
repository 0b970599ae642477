// bookinfo's details service (details.rb in Istio's sample): the book's metadata for a numeric
// product id. The sample can fetch it from Google Books (ENABLE_EXTERNAL_BOOK_SERVICE); the lab
// has no mesh-external services, so it always answers with the built-in book.
import { productId, serveBookinfo, type BookinfoServerOptions, type RunningApp } from './common.js';

export function bookDetails(id: number): Record<string, unknown> {
  return {
    id,
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  };
}

export function startDetails(opts: BookinfoServerOptions): Promise<RunningApp> {
  return serveBookinfo('details', opts, (req, url, reply) => {
    const path = url.pathname;
    if (path === '/health') return reply.json(200, { status: 'Details is healthy' });
    // The sample mounts /details and takes the last path segment as the id.
    if (path === '/details' || path.startsWith('/details/')) {
      const id = productId(path.split('/').pop() ?? '');
      if (id === undefined) return reply.json(400, { error: 'please provide numeric product id' });
      return reply.json(200, bookDetails(id));
    }
    reply.text(404, 'Not Found\n');
  });
}
