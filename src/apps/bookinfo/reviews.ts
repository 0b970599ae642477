// bookinfo's reviews service (LibertyRestEndpoint.java in Istio's sample). One program, three
// versions, as the sample builds three images from one source:
//   v1: no ratings (never calls ratings);
//   v2: calls ratings and shows black stars, waiting up to 10 s;
//   v3: calls ratings and shows red stars, waiting up to 2.5 s.
// The JSON names the pod that answered (`podname`), which is how the walk-through tells the
// versions apart (`grep reviews-v.-` on the product page).
import { forwardHeaders, get, jsonOf, productId, serveBookinfo, BOOKINFO_PORT, type BookinfoServerOptions, type RunningApp } from './common.js';

export const REVIEWS_VERSIONS = ['v1', 'v2', 'v3'] as const;
export type ReviewsVersion = (typeof REVIEWS_VERSIONS)[number];

export interface ReviewsOptions extends BookinfoServerOptions {
  version: ReviewsVersion;
  /** The pod name, reported as `podname` (the sample reads $HOSTNAME). */
  podname: string;
  /** Reported as `clustername`; the sample prints "null" when CLUSTER_NAME is unset. */
  clustername?: string;
  /** Base URL of the ratings service; the Service name by default, resolved through the pod's resolv.conf. */
  ratingsUrl?: string;
}

interface Rating {
  stars?: number;
  color?: string;
  error?: string;
}

const REVIEWS = [
  { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
  { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
];

export function startReviews(opts: ReviewsOptions): Promise<RunningApp> {
  const ratingsEnabled = opts.version !== 'v1';
  const color = opts.version === 'v3' ? 'red' : 'black';
  // The sample's client timeouts: 10 s for black stars, 2.5 s for red (what the fault-injection
  // tasks of Istio's docs rely on).
  const ratingsTimeoutMs = color === 'black' ? 10_000 : 2_500;
  const ratingsUrl = opts.ratingsUrl ?? `http://ratings:${BOOKINFO_PORT}`;
  return serveBookinfo('reviews', opts, async (req, url, reply) => {
    const path = url.pathname;
    if (path === '/health') return reply.json(200, { status: 'Reviews is healthy' });
    const m = /^\/reviews\/([^/]+)$/.exec(path);
    const id = m ? productId(m[1]) : undefined;
    if (id === undefined) return reply.text(404, 'Not Found\n');
    let stars: Record<string, number> = {};
    if (ratingsEnabled) {
      const res = await get(`${ratingsUrl}/ratings/${id}`, forwardHeaders(req), ratingsTimeoutMs);
      const body = jsonOf(res) as { ratings?: Record<string, unknown> } | undefined;
      if (!body) opts.log?.warn({ status: res.status, error: res.error }, `unable to contact ${ratingsUrl}`);
      for (const [k, v] of Object.entries(body?.ratings ?? {})) if (typeof v === 'number') stars[k] = v;
    }
    const reviews = REVIEWS.map((r) => {
      if (!ratingsEnabled) return { ...r };
      const rating: Rating = r.reviewer in stars ? { stars: stars[r.reviewer], color } : { error: 'Ratings service is currently unavailable' };
      return { ...r, rating };
    });
    reply.json(200, { id: String(id), podname: opts.podname, clustername: opts.clustername ?? 'null', reviews });
  });
}
