// Envoy's upstream pool gauges as the L7 proxies export them (src/proxy/request-metrics.ts,
// read from the engine's pools at scrape time): with the per-endpoint bound at 2 and 5 slow
// requests through the engine, the scrape must show 2 connections, 2 requests on them and 3
// waiting for one (Envoy counts a request in upstream_rq_active only once it has a connection),
// and once the requests are done and the idle timeout has passed, no connection.
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { Agent, request } from 'undici';
import { L7Engine, type DownstreamInfo } from '../../src/l7/engine.js';
import { renderUpstreamGauges, sumUpstream } from '../../src/proxy/request-metrics.js';
import { seriesValue } from '../../src/proxy/metrics.js';

async function until(what: string, cond: () => boolean, ms: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - t0;
}

t.test('bound 2, 5 slow requests: cx_active 2, rq_active 2, rq_pending_active 3; then cx_active 0', async (t) => {
  // The upstream holds every response until released: "slow" without a timing guess.
  const held: http.ServerResponse[] = [];
  let open = 0;
  const upstream = http.createServer((_req, res) => void held.push(res));
  upstream.keepAliveTimeout = 65_000;
  upstream.on('connection', (s: net.Socket) => {
    open++;
    s.once('close', () => open--);
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const upPort = (upstream.address() as net.AddressInfo).port;
  const host = `127.0.0.1:${upPort}`;

  const engine = new L7Engine({
    config: { routes: [], destinationPolicies: [], authorization: [] },
    endpoints: () => [{ address: '127.0.0.1', port: upPort, labels: {} }],
    connect: (ep) => new Promise((resolve, reject) => {
      const s = net.connect(ep.port, ep.address);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    }),
    upstreamLimits: { maxConnectionsPerEndpoint: 2, idleTimeoutMs: 300 },
  });
  const info: DownstreamInfo = { service: { host: 'ratings.default.svc.cluster.local', port: 9080 }, srcIp: '127.0.0.1', dstIp: '10.96.0.30', dstPort: 9080 };
  const proxy = http.createServer((req, res) => void engine.handle(req, res, info));
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const base = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  const client = new Agent({ connections: 10 });
  t.teardown(async () => {
    await client.close();
    await engine.close();
    proxy.closeAllConnections();
    proxy.close();
    upstream.closeAllConnections();
    upstream.close();
  });

  const scrape = (): string => renderUpstreamGauges([{ stats: engine.upstreamStats() }]);
  const gauge = (text: string, name: string): number => seriesValue(text, name, { upstream_host: host });

  const requests = Array.from({ length: 5 }, (_, i) => request(`${base}/slow/${i}`, { dispatcher: client }).then(async (r) => {
    await r.body.text();
    return r.statusCode;
  }));
  // All 5 reached the engine: 2 at the upstream, 3 queued behind the bound.
  await until('2 requests at the upstream and 3 queued', () => {
    const s = engine.upstreamStats()[0];
    return held.length === 2 && s?.rqPendingActive === 3;
  }, 5000);
  const busy = scrape();
  t.comment(busy.split('\n').filter((l) => !l.startsWith('#')).join('\n'));
  t.equal(gauge(busy, 'envoy_cluster_upstream_cx_active'), 2, 'cx_active 2: the bound');
  t.equal(gauge(busy, 'envoy_cluster_upstream_rq_active'), 2, 'rq_active 2: the requests on a connection');
  t.equal(gauge(busy, 'envoy_cluster_upstream_rq_pending_active'), 3, 'rq_pending_active 3: waiting for a connection');
  t.match(busy, /# TYPE envoy_cluster_upstream_cx_active gauge/, 'typed as a gauge');
  t.equal(open, 2, 'the upstream sees the same 2 connections');
  t.same(sumUpstream(engine.upstreamStats(), [host]), { cxActive: 2, rqActive: 2, rqPendingActive: 3 }, 'the config dump\'s per-cluster sum');

  // Release responses as they arrive until all 5 are answered.
  let answered = 0;
  while (answered < 5) {
    await until('the next request at the upstream', () => held.length > 0, 5000);
    held.shift()!.end('ok');
    answered++;
  }
  t.same(await Promise.all(requests), [200, 200, 200, 200, 200], 'all 5 answered');
  const took = await until('cx_active back to 0', () => gauge(scrape(), 'envoy_cluster_upstream_cx_active') === 0, 5000).catch(() => Infinity);
  const idle = scrape();
  t.equal(gauge(idle, 'envoy_cluster_upstream_cx_active'), 0, `cx_active 0 ${Math.round(took)} ms after the last response (idle timeout 300 ms)`);
  t.equal(gauge(idle, 'envoy_cluster_upstream_rq_active') + gauge(idle, 'envoy_cluster_upstream_rq_pending_active'), 0, 'nothing in flight or waiting');
  await until('the upstream saw its connections close', () => open === 0, 5000);
  t.equal(open, 0, 'and the upstream agrees');
});

t.test('series: per endpoint, cluster_name only where the engine knows it, two engines summed', async (t) => {
  const s = { endpoint: '10.0.0.1:9080', cxActive: 1, rqActive: 1, rqPendingActive: 0 };
  const text = renderUpstreamGauges([
    { stats: [s] },
    { stats: [{ ...s, cxActive: 2 }] },
    { stats: [{ ...s, endpoint: '10.0.0.9:8080' }], cluster: () => 'inbound|8080||' },
  ]);
  t.equal(seriesValue(text, 'envoy_cluster_upstream_cx_active', { upstream_host: '10.0.0.1:9080' }), 3, 'one series per endpoint, summed over engines');
  t.match(text, /^envoy_cluster_upstream_cx_active\{upstream_host="10\.0\.0\.1:9080"\} 3$/m);
  t.match(text, /^envoy_cluster_upstream_rq_pending_active\{cluster_name="inbound\|8080\|\|",upstream_host="10\.0\.0\.9:8080"\} 0$/m);
  t.equal(renderUpstreamGauges([]).split('\n').filter((l) => l && !l.startsWith('#')).length, 0, 'no pool yet: only HELP/TYPE');
});
