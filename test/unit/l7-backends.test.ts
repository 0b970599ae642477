// Weighted backend choice, subsets and load balancing, with injected random numbers.
import t from 'tap';
import { chooseBackend, LoadBalancerState, seededRandom, subsetEndpoints, type L7Endpoint } from '../../src/l7/backends.js';
import type { Backend, DestinationPolicy } from '../../src/l7/model.js';

const H = 'reviews.default.svc.cluster.local';
const b = (subset: string, weight: number): Backend => ({ host: H, subset, weight });
const fixed = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length];
};

t.test('weighted choice: ranges in order over the total weight', async (t) => {
  const split = [b('v1', 90), b('v2', 10)];
  const cases: Array<[string, Backend[], number, string | undefined, number?]> = [
    ['0.0 -> first', split, 0.0, 'v1', 90],
    ['0.899 -> first', split, 0.899, 'v1', 90],
    ['0.9 -> second', split, 0.9, 'v2', 10],
    ['0.999 -> second', split, 0.999, 'v2', 10],
    ['three-way 0.5 of 1:1:2', [b('a', 1), b('b', 1), b('c', 2)], 0.5, 'c', 50],
    ['weight 0 never chosen', [b('a', 0), b('b', 5)], 0.0, 'b', 100],
    ['all weights 0 share equally', [b('a', 0), b('b', 0)], 0.6, 'b', 50],
    ['single backend', [b('only', 100)], 0.42, 'only', 100],
    ['no backends', [], 0.5, undefined],
  ];
  for (const [name, backends, r, want, pct] of cases) {
    const c = chooseBackend(backends, () => r);
    t.equal(c?.backend.subset, want, name);
    if (pct !== undefined) t.equal(c?.weightPercent, pct, `${name}: weight percent`);
  }
  const rnd = seededRandom(42);
  let v2 = 0;
  for (let i = 0; i < 10_000; i++) if (chooseBackend(split, rnd)!.backend.subset === 'v2') v2++;
  t.ok(v2 > 900 && v2 < 1100, `seeded 90/10 over 10000 draws gives ~1000 v2 (${v2})`);
});

const ep = (address: string, labels: Record<string, string>, healthy?: boolean): L7Endpoint => ({ address, port: 9080, labels, healthy });
const eps = [ep('10.0.0.1', { app: 'reviews', version: 'v1' }), ep('10.0.0.2', { app: 'reviews', version: 'v2' }), ep('10.0.0.3', { app: 'reviews', version: 'v2' })];
const dr: DestinationPolicy = {
  host: H,
  origin: 'DestinationRule default/reviews',
  loadBalancer: 'RANDOM',
  subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' }, loadBalancer: 'ROUND_ROBIN' }],
};

t.test('subset -> endpoints by labels', async (t) => {
  const cases: Array<[string, Backend, DestinationPolicy[], string[] | string, string?]> = [
    ['no subset: all endpoints, host LB', { host: H, weight: 1 }, [dr], ['10.0.0.1', '10.0.0.2', '10.0.0.3'], 'RANDOM'],
    ['subset v1', b('v1', 1), [dr], ['10.0.0.1'], 'RANDOM'],
    ['subset v2 with its own LB', b('v2', 1), [dr], ['10.0.0.2', '10.0.0.3'], 'ROUND_ROBIN'],
    ['unknown subset', b('v3', 1), [dr], 'no subset v3'],
    ['subset without any DestinationRule', b('v1', 1), [], 'no subset v1'],
    ['no subset and no DR: default LB', { host: H, weight: 1 }, [], ['10.0.0.1', '10.0.0.2', '10.0.0.3'], undefined],
  ];
  for (const [name, backend, policies, want, lb] of cases) {
    const r = subsetEndpoints(backend, eps, policies);
    if (typeof want === 'string') {
      t.notOk(r.ok, name);
      if (!r.ok) t.match(r.reason, want, `${name}: reason`);
    } else {
      t.same(r.ok && r.endpoints.map((e) => e.address), want, name);
      t.equal(r.ok ? r.loadBalancer : 'x', lb, `${name}: load balancer`);
    }
  }
});

t.test('load balancers', async (t) => {
  const lb = new LoadBalancerState(fixed(0.0, 0.99));
  t.same(['a', 'b', 'c', 'd'].map(() => lb.pick('c1', 'ROUND_ROBIN', eps)!.address), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1'], 'round robin cycles');
  t.equal(new LoadBalancerState(() => 0.5).pick('c', 'RANDOM', eps)!.address, '10.0.0.2', 'random indexes by the draw');
  t.equal(new LoadBalancerState(() => 0.5).pick('c', 'RANDOM', [ep('10.0.0.9', {}, false), ...eps])!.address, '10.0.0.2', 'unhealthy endpoints are skipped');
  t.equal(new LoadBalancerState(() => 0.5).pick('c', 'RANDOM', [ep('10.0.0.9', {}, false)]), undefined, 'no healthy endpoint');
  t.equal(new LoadBalancerState(() => 0.5).pick('c', 'RANDOM', []), undefined, 'no endpoint');

  // LEAST_REQUEST: of two random candidates, the one with fewer requests in flight.
  const least = new LoadBalancerState(fixed(0.0, 0.5));
  least.started(eps[0]);
  t.equal(least.pick('c', 'LEAST_REQUEST', eps)!.address, '10.0.0.2', 'least request avoids the busier of two');
  least.finished(eps[0]);
  t.equal(least.pick('c', 'LEAST_REQUEST', eps)!.address, '10.0.0.1', 'equal load keeps the first draw');
  t.equal(least.pick('c', undefined, [eps[2]])!.address, '10.0.0.3', 'default LB (LEAST_REQUEST) with one endpoint');

  // Retries avoid hosts already tried while others remain (previous_hosts).
  const rr = new LoadBalancerState(() => 0);
  t.equal(rr.pick('c', 'RANDOM', eps, new Set(['10.0.0.1:9080']))!.address, '10.0.0.2', 'previous host avoided');
  t.equal(rr.pick('c', 'RANDOM', [eps[0]], new Set(['10.0.0.1:9080']))!.address, '10.0.0.1', 'the only host is reused');
});
