// The bench's load section: which proxy log lines count as failures, when a client error is
// "unexplained", the proxies' eventloop_delay_seconds gauge, and the load table.
import t from 'tap';
import { logFailures, unexplained, type LoadFigures, type ProxyLoad } from '../../src/bench/load-1k.js';
import { renderLoad } from '../../src/bench/compare-format.js';
import { Metrics, parseMetrics } from '../../src/proxy/metrics.js';

t.test('failures in a proxy log: warnings, failed connections, copies that ended on an error, L7 flags', (t) => {
  const log = [
    '{"level":30,"msg":"connection complete","bytes_sent":10}',
    '{"level":40,"msg":"connection failed","reason":"connect 10.244.1.4:80: ECONNREFUSED"}',
    '{"level":30,"msg":"connection complete","reason":"Stream closed with error code NGHTTP2_INTERNAL_ERROR"}',
    '{"level":30,"msg":"connection complete","reason":"from a waypoint of the destination: RBAC skipped"}',
    '{"level":30,"msg":"request","status":503,"response_flags":"UF"}',
    '{"level":30,"msg":"request","status":200,"response_flags":"-"}',
    '{"level":50,"msg":"uncaught","err":"boom\\n  at x"}',
    'not json', '{"level":30,"msg":"trunc',
  ].join('\n');
  const f = logFailures(log);
  t.equal(f.failed, 3, 'warn/error lines and a request with response flags');
  t.equal(f.endedOnError, 1, 'a completed connection with an error as its reason (not ztunnel\'s note that it skipped RBAC)');
  t.same(f.reasons, {
    'connect 10.244.1.4:80: ECONNREFUSED': 1, 'Stream closed with error code NGHTTP2_INTERNAL_ERROR': 1, 'response_flags UF': 1, boom: 1,
  }, 'each by its first line');
  t.same(logFailures(''), { failed: 0, endedOnError: 0, reasons: {} });
  t.end();
});

t.test('a client error is explained only when a proxy on the path logged a failure', (t) => {
  const p = (failed: number, endedOnError = 0) => ({ failures: { failed, endedOnError, reasons: {} } });
  t.equal(unexplained(0, [p(0)]), 0);
  t.equal(unexplained(5, [p(0), p(0)]), 5, 'nothing in the logs: all five silent');
  t.equal(unexplained(5, [p(2), p(1, 1)]), 1);
  t.equal(unexplained(1, [p(4)]), 0, 'more failures logged than the client saw is not silence');
  t.end();
});

t.test('the proxies export their event-loop delay as a gauge, reset by each scrape', async (t) => {
  const m = new Metrics();
  const busyUntil = Date.now() + 60;
  await new Promise((r) => setTimeout(r, 30));
  while (Date.now() < busyUntil); // block the loop: the next timer tick is late
  await new Promise((r) => setTimeout(r, 40));
  const first = parseMetrics(m.render()).filter((s) => s.name === 'eventloop_delay_seconds');
  t.same(first.map((s) => s.labels.quantile), ['0.5', '0.99', 'max']);
  const max = first.find((s) => s.labels.quantile === 'max')!.value;
  t.ok(max >= 0.02 && max < 5, `the blocked loop shows (max ${max} s)`);
  const again = parseMetrics(m.render()).find((s) => s.name === 'eventloop_delay_seconds' && s.labels.quantile === 'max')!.value;
  t.ok(again < max, `the next scrape starts over (${again} s)`);
  t.match(m.render(), '# TYPE eventloop_delay_seconds gauge');
});

const proxy = (id: string, after: number): ProxyLoad => ({
  id, fds: { idle: 29, peak: 1029, after }, rssKb: { idle: 75_000, peak: 110_000, after: 100_000 },
  loopDelayMs: { p50: 1, p99: 58, max: 93 }, connectionsOpened: 1000, failures: { failed: 0, endedOnError: 0, reasons: {} },
});

t.test('the load table: client, then each proxy of the path', (t) => {
  const l: LoadFigures = {
    lab: 'bench-cmp-load', options: { connections: 1000, seconds: 3, shortRequests: 3000, shortConcurrency: 50, settleMs: 20_000 },
    phases: [{
      path: 'ztunnel pair', kind: 'concurrent', settled: true, settledMs: 120, unexplainedErrors: 0,
      client: { requests: 7293, errors: 2, errorKinds: { 'socket hang up': 2 }, rps: 2279, p50: 300, p99: 2350, maxOpen: 1000, opened: 1000 },
      proxies: [proxy('ztunnel/node-a', 29), { ...proxy('ztunnel/node-b', 30), failures: { failed: 2, endedOnError: 0, reasons: { 'connection reset': 2 } } }],
    }],
  };
  const out = renderLoad(l);
  t.match(out, /ztunnel pair +1000 conns x 3 s +7293 ok, 2 err, 2279 req\/s, 1000 open, p99 2.35 s +ztunnel\/node-a +29 \/ 1029 \/ 29 +73.2 MB \/ 107.4 MB \/ 97.7 MB +58 ms \/ 93 ms +1000 +0/);
  t.match(out, /ztunnel\/node-b .* 2\s*$/m, 'failures logged per proxy');
  t.match(out, 'fds settled: 0.1 s; unexplained errors: 0');
  t.match(out, 'ztunnel pair concurrent: client 2x socket hang up');
  t.match(out, 'ztunnel pair concurrent: ztunnel/node-b 2x connection reset');
  t.match(renderLoad(undefined, 'boom'), 'n/a: load lab not available: boom');
  t.end();
});
