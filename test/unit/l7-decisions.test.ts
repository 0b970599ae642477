// Retry, fault, header-operation, rewrite and redirect decisions as tables.
import t from 'tap';
import { applyHeaderOps } from '../../src/l7/header-ops.js';
import { faultDecision, fires } from '../../src/l7/fault.js';
import { DEFAULT_RETRY_POLICY, type HttpMatch, type RetryPolicy } from '../../src/l7/model.js';
import { formatFlags } from '../../src/l7/result.js';
import { backoffMs, isRetriable, retryDecision, type AttemptOutcome } from '../../src/l7/retry.js';
import { applyRewrite, redirectLocation } from '../../src/l7/rewrite.js';

const policy = (retryOn: string[], retriableStatusCodes: number[] = [], attempts = 2): RetryPolicy => ({ attempts, retryOn, retriableStatusCodes });
const resp = (status: number, grpcStatus?: string): AttemptOutcome => ({ kind: 'response', status, grpcStatus });

t.test('retry_on conditions', async (t) => {
  const cases: Array<[string, RetryPolicy, AttemptOutcome, boolean]> = [
    ['5xx: 500', policy(['5xx']), resp(500), true],
    ['5xx: 503', policy(['5xx']), resp(503), true],
    ['5xx: 404 is not', policy(['5xx']), resp(404), false],
    ['5xx: connect failure', policy(['5xx']), { kind: 'connect-failure' }, true],
    ['5xx: reset', policy(['5xx']), { kind: 'reset' }, true],
    ['5xx: per-try timeout', policy(['5xx']), { kind: 'per-try-timeout' }, true],
    ['gateway-error: 502', policy(['gateway-error']), resp(502), true],
    ['gateway-error: 504', policy(['gateway-error']), resp(504), true],
    ['gateway-error: 500 is not', policy(['gateway-error']), resp(500), false],
    ['gateway-error: per-try timeout', policy(['gateway-error']), { kind: 'per-try-timeout' }, true],
    ['connect-failure only: connect failure', policy(['connect-failure']), { kind: 'connect-failure' }, true],
    ['connect-failure only: 503 is not', policy(['connect-failure']), resp(503), false],
    ['connect-failure only: reset is not', policy(['connect-failure']), { kind: 'reset' }, false],
    ['reset: reset', policy(['reset']), { kind: 'reset' }, true],
    ['reset: 503 is not', policy(['reset']), resp(503), false],
    ['refused-stream: refused stream', policy(['refused-stream']), { kind: 'refused-stream' }, true],
    ['refused-stream: plain reset is not', policy(['refused-stream']), { kind: 'reset' }, false],
    ['retriable-status-codes: listed', policy(['retriable-status-codes'], [503, 429]), resp(429), true],
    ['retriable-status-codes: unlisted', policy(['retriable-status-codes'], [503]), resp(500), false],
    ['codes without the condition do nothing', policy([], [503]), resp(503), false],
    ['retriable-4xx: 409', policy(['retriable-4xx']), resp(409), true],
    ['unavailable: grpc-status 14', policy(['unavailable']), resp(200, '14'), true],
    ['cancelled: grpc-status 1', policy(['cancelled']), resp(200, '1'), true],
    ['Istio default: 503', DEFAULT_RETRY_POLICY, resp(503), true],
    ['Istio default: 500 is not', DEFAULT_RETRY_POLICY, resp(500), false],
    ['Istio default: connect failure', DEFAULT_RETRY_POLICY, { kind: 'connect-failure' }, true],
    ['Istio default: reset is not', DEFAULT_RETRY_POLICY, { kind: 'reset' }, false],
  ];
  for (const [name, p, o, want] of cases) t.equal(isRetriable(p, o), want, name);
});

t.test('retry decision: attempts, body, limit', async (t) => {
  const p = policy(['5xx'], [], 2);
  const r = () => 0.5;
  const cases: Array<[string, RetryPolicy | undefined, AttemptOutcome, number, boolean, string]> = [
    ['no policy', undefined, resp(503), 1, true, 'no:no retry policy'],
    ['attempts 0', policy(['5xx'], [], 0), resp(503), 1, true, 'no:no retry policy'],
    ['first failure retried', p, resp(503), 1, true, 'retry'],
    ['second failure retried', p, resp(503), 2, true, 'retry'],
    ['third failure: limit exceeded (URX)', p, resp(503), 3, true, 'no:retry limit exceeded:URX'],
    ['success is not retried', p, resp(200), 1, true, 'no:not retriable'],
    ['body too large', p, resp(503), 1, false, 'no:request body too large to retry'],
  ];
  for (const [name, pol, o, attempt, replayable, want] of cases) {
    const d = retryDecision(pol, o, attempt, replayable, r);
    const got = d.retry ? 'retry' : `no:${d.reason}${d.limitExceeded ? ':URX' : ''}`;
    t.equal(got, want, name);
  }
});

t.test('back-off: jittered, 25 ms base doubling, 250 ms cap', async (t) => {
  const cases: Array<[number, number, number]> = [
    [1, 0.999, 24], [2, 0.999, 49], [3, 0.999, 99], [4, 0.999, 199], [5, 0.999, 249], [9, 0.999, 249], [1, 0, 0], [3, 0.5, 50],
  ];
  for (const [retry, r, want] of cases) t.equal(backoffMs(retry, () => r), want, `retry ${retry} with draw ${r}`);
});

t.test('fault decision', async (t) => {
  t.notOk(fires(0, () => 0), '0% never fires');
  t.ok(fires(100, () => 0.999999), '100% always fires');
  t.ok(fires(50, () => 0.49), '50% fires below the half');
  t.notOk(fires(50, () => 0.5), '50% does not at the half');
  t.ok(fires(0.1, () => 0.000999), '0.1% is 1000 per million');
  const cases: Array<[string, Parameters<typeof faultDecision>[0], number, object]> = [
    ['none', undefined, 0, {}],
    ['abort 100%', { abort: { httpStatus: 503, percentage: 100 } }, 0.3, { abortStatus: 503 }],
    ['abort 0% (percentage unset)', { abort: { httpStatus: 503, percentage: 0 } }, 0, {}],
    ['delay 100%', { delay: { fixedDelayMs: 200, percentage: 100 } }, 0.3, { delayMs: 200 }],
    ['delay and abort', { delay: { fixedDelayMs: 50, percentage: 100 }, abort: { httpStatus: 418, percentage: 100 } }, 0.3, { delayMs: 50, abortStatus: 418 }],
    ['abort 10% missed', { abort: { httpStatus: 503, percentage: 10 } }, 0.5, {}],
  ];
  for (const [name, f, r, want] of cases) t.same(faultDecision(f, () => r), want, name);
});

t.test('header operations: remove, then set, then add', async (t) => {
  const h = { 'x-a': '1', 'x-b': '2', server: 'gunicorn' };
  const cases: Array<[string, Parameters<typeof applyHeaderOps>[1], object]> = [
    ['none', undefined, h],
    ['set overwrites', { set: { 'x-a': 'one' } }, { ...h, 'x-a': 'one' }],
    ['set adds when absent', { set: { 'X-New': 'n' } }, { ...h, 'x-new': 'n' }],
    ['add appends', { add: { 'x-a': 'again' } }, { ...h, 'x-a': ['1', 'again'] }],
    ['add when absent', { add: { 'x-c': '3' } }, { ...h, 'x-c': '3' }],
    ['remove', { remove: ['X-B'] }, { 'x-a': '1', server: 'gunicorn' }],
    ['remove before set', { remove: ['x-a'], set: { 'x-a': 'set' } }, { ...h, 'x-a': 'set' }],
    ['set before add', { set: { 'x-a': 's' }, add: { 'x-a': 'a' } }, { ...h, 'x-a': ['s', 'a'] }],
  ];
  for (const [name, ops, want] of cases) t.same(applyHeaderOps(h, ops), want, name);
  t.same(h, { 'x-a': '1', 'x-b': '2', server: 'gunicorn' }, 'input untouched');
});

t.test('rewrite', async (t) => {
  const prefix = (value: string): HttpMatch => ({ path: { kind: 'Prefix', value } });
  const pathPrefix = (value: string): HttpMatch => ({ path: { kind: 'PathPrefix', value } });
  const cases: Array<[string, Parameters<typeof applyRewrite>[0], HttpMatch | undefined, string, string, string]> = [
    ['none', undefined, undefined, '/a?x=1', 'h', '/a?x=1 h'],
    ['VS prefix rewrite', { prefixPath: '/v1/ratings' }, prefix('/ratings'), '/ratings/7?q=1', 'h', '/v1/ratings/7?q=1 h'],
    ['VS string prefix mid-segment', { prefixPath: '/new' }, prefix('/old'), '/oldish', 'h', '/newish h'],
    ['PathPrefix -> prefix keeps one slash', { prefixPath: '/bar' }, pathPrefix('/foo'), '/foo/x', 'h', '/bar/x h'],
    ['PathPrefix -> "/"', { prefixPath: '/' }, pathPrefix('/foo'), '/foo/x', 'h', '/x h'],
    ['PathPrefix -> "/" on the bare prefix', { prefixPath: '/' }, pathPrefix('/foo'), '/foo', 'h', '/ h'],
    ['no path match: prefix "/"', { prefixPath: '/api/' }, undefined, '/x', 'h', '/api/x h'],
    ['full path replace keeps query', { path: '/replaced' }, prefix('/a'), '/a/b?k=v', 'h', '/replaced?k=v h'],
    ['authority rewrite', { hostname: 'ratings.prod' }, undefined, '/a', 'ratings:9080', '/a ratings.prod'],
  ];
  for (const [name, rw, m, path, auth, want] of cases) {
    const r = applyRewrite(rw, m, path, auth);
    t.equal(`${r.path} ${r.authority}`, want, name);
  }
});

t.test('redirect Location', async (t) => {
  const req = { scheme: 'http', authority: 'reviews:9080', path: '/old/page?x=1' };
  const m: HttpMatch = { path: { kind: 'PathPrefix', value: '/old' } };
  const cases: Array<[string, Parameters<typeof redirectLocation>[0], string]> = [
    ['path replaced, host and query kept', { path: '/new', statusCode: 301 }, 'http://reviews:9080/new?x=1'],
    ['prefix replaced', { prefixPath: '/v2', statusCode: 302 }, 'http://reviews:9080/v2/page?x=1'],
    ['host replaced, port kept', { hostname: 'example.com', statusCode: 301 }, 'http://example.com:9080/old/page?x=1'],
    ['port replaced', { port: 8080, statusCode: 301 }, 'http://reviews:8080/old/page?x=1'],
    ['scheme change drops the port', { scheme: 'https', statusCode: 301 }, 'https://reviews/old/page?x=1'],
    ['default port left out', { port: 80, statusCode: 301 }, 'http://reviews/old/page?x=1'],
    ['https with 443 left out', { scheme: 'https', port: 443, hostname: 'secure', statusCode: 308 }, 'https://secure/old/page?x=1'],
    ['path with its own query', { path: '/n?y=2', statusCode: 301 }, 'http://reviews:9080/n?y=2'],
  ];
  for (const [name, r, want] of cases) t.equal(redirectLocation(r, m, req), want, name);
});

t.test('response flags in Envoy order', async (t) => {
  t.equal(formatFlags([]), '-');
  t.equal(formatFlags(['URX', 'UF']), 'UF,URX');
  t.equal(formatFlags(['URX', 'UT', 'UT']), 'UT,URX');
  t.equal(formatFlags(['DI', 'FI']), 'DI,FI');
});
