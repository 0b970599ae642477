// `lab trace` across sidecars (topologies/coexistence.yaml, clients on node-a, servers on
// node-b): each path of the talk's coexistence table, checked hop by hop against the path the
// design says the packets take, with the istio-cni nat rule whose counter moved in the sidecar
// pods (REDIRECT to 15001 on the client side, 15008 RETURNed or REDIRECT to 15006 on the server
// side, 127.0.0.6 RETURNed on lo), the Istio mTLS leg's certificates as tshark decrypts them,
// and the sidecars' own request lines (matched by the trace's x-request-id). One lab, several traces:
// sidecar -> ambient, ambient -> sidecar, sidecar -> waypoint, ambient -> waypoint, sidecar -> sidecar (HBONE and Istio
// mTLS), sidecar -> none, none -> sidecar.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { lab, upJson, podIp } from './helpers.js';

const NAME = 'ts-trace-sc';
const out = mkdtempSync(join(tmpdir(), 'alt-trace-sc-'));
const id = (sa: string): string => `spiffe://cluster.local/ns/default/sa/${sa}`;

interface Hop { index: number; leg: number; role: string; where: string; interface: string; src: string; dst: string; vni?: number; reason?: string; delivered?: boolean }
interface Leg {
  id: number; client: string; server: string; encap: string; reused: boolean; origin: string; delivered: string; alpn?: string[]; istioMtls?: boolean; app?: string;
  tunnel?: { authority?: string; clientIdentity?: string; serverIdentity?: string; source: string[] };
}
interface Decision { where: string; leg: number; afterHop: number; requestLine: string; status: number; direction?: string; upstreamHost?: string; upstreamTransport?: string; sourceIdentity?: string; sourceAddress?: string; requestId?: string }
interface Counter { where: string; rules: { table: string; chain: string; spec: string; delta: number }[] }
interface Report { hops: Hop[]; legs: Leg[]; decisions: Decision[]; counters: Counter[]; request: { ok: boolean; summary: string }; requestId?: string }

const up = upJson('topologies/coexistence.yaml', NAME);
t.teardown(() => {
  lab(['down', NAME]);
  rmSync(out, { recursive: true, force: true });
});

function trace(src: string, args: string[]): Report {
  const r = lab(['trace', '--lab', NAME, src, ...args, '--json'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`lab trace failed (${r.code}): ${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout) as Report;
}
const where = (h: Hop): string => `${h.where} ${h.interface}${h.vni ? ` vni ${h.vni}` : ''}`;
const legHops = (r: Report, leg: number): string[] => r.hops.filter((h) => h.leg === leg).map(where);
const lastOf = (r: Report, leg: number): Hop => r.hops.filter((h) => h.leg === leg).at(-1)!;
/** The moved counter of a nat rule in one place, as the trace read it from iptables-save. */
const moved = (r: Report, at: string, chain: string, spec: RegExp): number =>
  r.counters.find((c) => c.where === at)?.rules.find((x) => x.table === 'nat' && x.chain === chain && spec.test(x.spec))?.delta ?? 0;
/** The sidecar's own request line for this trace's x-request-id (its log, not the trace). */
function sidecarLine(pod: string, requestId: string | undefined): Record<string, unknown> | undefined {
  const text = readFileSync(`/run/ambient-lab/${NAME}/logs/sidecar-default.${pod}.log`, 'utf8');
  return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'request' && l.request_id === requestId);
}
/** The app's connection inside a sidecar client: one hop on lo, to 15001, put there by REDIRECT. */
function checkCapturedTo15001(t: Test, r: Report, vip: string): void {
  t.same(legHops(r, 1), ['pod sleep-sc lo'], 'the app\'s connection never leaves the pod');
  t.equal(r.legs[0].server, '127.0.0.1:15001');
  t.match(r.legs[0], { origin: 'pod sleep-sc (the app)', delivered: 'sidecar sleep-sc', app: 'opened' });
  t.ok(moved(r, 'sidecar sleep-sc', 'ISTIO_REDIRECT', /REDIRECT --to-ports 15001/) >= 1, 'nat ISTIO_REDIRECT REDIRECT 15001 moved');
  t.match(r.hops[0].reason, new RegExp(`ISTIO_OUTPUT #\\d+ -> ISTIO_REDIRECT \\(\\+1\\) -> ISTIO_REDIRECT #1 REDIRECT --to-ports 15001 \\(\\+1\\): the app's connection to ${vip.replace(/\./g, '\\.')}`));
  t.equal(r.legs[1].origin, 'sidecar sleep-sc', 'the next connection is the sidecar\'s');
  t.match(r.hops.find((h) => h.leg === 2)?.reason, /--uid-owner 1337 RETURN \(\+\d+\): the sidecar's own connection is not captured/);
}

t.test('sleep-sc -> httpbin (sidecar -> ambient): REDIRECT 15001, HBONE to the pod\'s 15008, node-b istioin, ztunnel, pod', async (t) => {
  if (!t.ok(up.ok, `lab up\n${up.stderr}`)) return;
  const ip = podIp(up.summary, 'default/httpbin');
  const r = trace('sleep-sc', ['http://httpbin:8000/ip']);
  t.equal(r.request.summary, 'HTTP 200');
  checkCapturedTo15001(t, r, '10.96.0.11:8000');
  t.match(r.legs[1], { encap: 'hbone', server: `${ip}:15008`, delivered: 'ztunnel node-b' });
  t.match(r.legs[1].tunnel, { authority: `${ip}:80`, clientIdentity: id('sleep-sc') }, 'the tunnel carries the sidecar pod\'s identity');
  if (!r.legs[1].reused) {
    t.same(legHops(r, 2), ['sidecar sleep-sc eth0', 'node node-a veth-sleep-sc', 'node node-a eth0', 'underlay underlay-node-a', 'underlay underlay-node-b',
      'node node-b eth0', 'node node-b istioin', 'node node-b veth-ztunnel vni 1000', 'ztunnel node-b eth0 vni 1000', 'ztunnel node-b pistioin'],
    'HBONE to the ambient pod\'s 15008: node-b sends it through istioin to its ztunnel');
    t.match(lastOf(r, 2).reason, /TPROXY -> 127\.0\.0\.1:15008/);
  }
  t.same(legHops(r, 3), ['ztunnel node-b eth0', 'node node-b veth-ztunnel', 'node node-b veth-httpbin', 'pod httpbin eth0']);
  const d = r.decisions.find((x) => x.where === 'sidecar sleep-sc');
  t.match(d, { direction: 'outbound', requestLine: 'GET /ip', status: 200, upstreamHost: `${ip}:80`, upstreamTransport: `hbone ${ip}:15008`, afterHop: 1 });
  t.equal(sidecarLine('sleep-sc', r.requestId)?.upstream_transport, `hbone ${ip}:15008`, 'the sidecar\'s own log says the same transport');
  // A TCP probe to the same HTTP port: the sidecar takes it in and opens nothing; the trace says why.
  const tcpProbe = JSON.parse(lab(['trace', '--lab', NAME, 'sleep-sc', `${ip}:80`, '--json']).stdout) as Report & { notes: string[] };
  t.same(legHops(tcpProbe, 1), ['pod sleep-sc lo']);
  t.equal(tcpProbe.legs.length, 1, 'no connection out of the sidecar');
  t.match(tcpProbe.notes.join('\n'), /sidecar sleep-sc took the connection in and opened none of its own during the trace: .*TCP probe is not an HTTP request/);
});

t.test('sleep -> httpbin-sc (ambient -> sidecar): istioout, client ztunnel, HBONE to httpbin-sc:15008, the sidecar\'s 15008, 127.0.0.6 -> app', async (t) => {
  if (!up.ok) return;
  const ip = podIp(up.summary, 'default/httpbin-sc');
  const r = trace('sleep', ['http://httpbin-sc:8000/ip']);
  t.equal(r.request.summary, 'HTTP 200');
  t.same(legHops(r, 1), ['pod sleep eth0', 'node node-a veth-sleep', 'node node-a istioout', 'node node-a veth-ztunnel vni 1001', 'ztunnel node-a eth0 vni 1001', 'ztunnel node-a pistioout']);
  t.match(r.legs[1], { encap: 'hbone', server: `${ip}:15008`, origin: 'ztunnel node-a', delivered: 'sidecar httpbin-sc' });
  t.same(legHops(r, 2).slice(-3), ['node node-b eth0', 'node node-b veth-httpbin-sc', 'sidecar httpbin-sc eth0'], 'straight to the pod: a sidecar pod is not in ztunnel-pods-ips');
  t.match(lastOf(r, 2).reason, /ISTIO_INBOUND #1 --dport 15008 RETURN \(\+1\): HBONE is not redirected, it reaches the sidecar's own 15008 listener/);
  t.ok(moved(r, 'sidecar httpbin-sc', 'ISTIO_INBOUND', /--dport 15008 -j RETURN/) >= 1, 'nat ISTIO_INBOUND 15008 RETURN moved');
  t.equal(moved(r, 'sidecar httpbin-sc', 'ISTIO_IN_REDIRECT', /REDIRECT/), 0, 'nothing redirected to 15006');
  t.match(r.legs[1].tunnel, { authority: `${ip}:80`, clientIdentity: id('sleep'), serverIdentity: id('httpbin-sc') });
  const loop = r.legs[2];
  t.match(loop, { server: `${ip}:80`, delivered: 'pod httpbin-sc (the app)', app: 'took-in' });
  t.ok(loop.client.startsWith('127.0.0.6:'), `the sidecar reaches the app from 127.0.0.6 (${loop.client})`);
  t.same(legHops(r, 3), ['pod httpbin-sc lo']);
  t.match(lastOf(r, 3).reason, /the sidecar hands the request to the app over lo from 127\.0\.0\.6/);
  if (!loop.reused) t.ok(moved(r, 'sidecar httpbin-sc', 'ISTIO_OUTPUT', /-s 127\.0\.0\.6\/32 -o lo -j RETURN/) >= 1, 'nat ISTIO_OUTPUT 127.0.0.6 RETURN moved');
  t.match(r.decisions.find((x) => x.where === 'sidecar httpbin-sc'), { direction: 'inbound', sourceIdentity: id('sleep'), status: 200, requestId: r.requestId });
});

t.test('sleep-sc -> reviews (sidecar -> waypoint -> ztunnel)', async (t) => {
  if (!up.ok) return;
  const wpIp = podIp(up.summary, 'default/bookinfo-reviews-istio-waypoint');
  const podAddr = podIp(up.summary, 'default/reviews-v1');
  const r = trace('sleep-sc', ['http://reviews:9080/hostname']);
  t.equal(r.request.summary, 'HTTP 200');
  checkCapturedTo15001(t, r, '10.96.0.12:9080');
  t.match(r.legs[1], { encap: 'hbone', server: `${wpIp}:15008`, delivered: 'waypoint bookinfo-reviews' }, 'the sidecar sends it to the waypoint, not to the pod');
  t.match(r.legs[1].tunnel, { clientIdentity: id('sleep-sc'), serverIdentity: id('bookinfo-reviews-istio-waypoint') });
  // The sidecar picked the pod itself (as Envoy's cluster does) and names it in the CONNECT.
  if (!r.legs[1].reused) t.equal(r.legs[1].tunnel?.authority, `${podAddr}:80`, 'CONNECT authority = the reviews pod IP:port the sidecar chose, not the VIP');
  t.equal(r.decisions.find((x) => x.where === 'sidecar sleep-sc')?.upstreamHost, `${podAddr}:80`);
  t.match(r.decisions.find((x) => x.where === 'sidecar sleep-sc'), { upstreamTransport: `hbone ${wpIp}:15008 (waypoint default/bookinfo-reviews-istio-waypoint)` });
  t.match(r.decisions.find((x) => x.where === 'waypoint bookinfo-reviews'), { status: 200, sourceIdentity: id('sleep-sc'), afterHop: lastOf(r, 2).index });
  t.match(r.legs[2], { encap: 'hbone', server: `${podAddr}:15008`, origin: 'waypoint bookinfo-reviews', delivered: 'ztunnel node-b' });
  if (!r.legs[2].reused) {
    t.same(legHops(r, 3).slice(-5), ['node node-b eth0', 'node node-b istioin', 'node node-b veth-ztunnel vni 1000', 'ztunnel node-b eth0 vni 1000', 'ztunnel node-b pistioin'],
      'the waypoint\'s HBONE to the ambient pod goes through node-b\'s istioin/pistioin to its ztunnel');
  }
  t.same(legHops(r, 4), ['ztunnel node-b eth0', 'node node-b veth-ztunnel', 'node node-b veth-reviews-v1', 'pod reviews-v1 eth0']);
});

t.test('sleep -> reviews (ambient -> waypoint -> ztunnel), beside the sidecar\'s: the client ztunnel\'s CONNECT names the VIP', async (t) => {
  if (!up.ok) return;
  const wpIp = podIp(up.summary, 'default/bookinfo-reviews-istio-waypoint');
  const podAddr = podIp(up.summary, 'default/reviews-v1');
  const r = trace('sleep', ['http://reviews:9080/hostname']);
  t.equal(r.request.summary, 'HTTP 200');
  t.same(legHops(r, 1).slice(-3), ['node node-a veth-ztunnel vni 1001', 'ztunnel node-a eth0 vni 1001', 'ztunnel node-a pistioout'], 'istioout to the client ztunnel');
  t.match(r.legs[1], { encap: 'hbone', server: `${wpIp}:15008`, origin: 'ztunnel node-a', delivered: 'waypoint bookinfo-reviews' });
  if (!r.legs[1].reused) t.equal(r.legs[1].tunnel?.authority, '10.96.0.12:9080', 'authority = the Service VIP:port (a sidecar names the pod)');
  t.match(r.legs[2], { encap: 'hbone', server: `${podAddr}:15008`, origin: 'waypoint bookinfo-reviews', delivered: 'ztunnel node-b' });
  if (!r.legs[2].reused) t.same(legHops(r, 3).slice(-2), ['ztunnel node-b eth0 vni 1000', 'ztunnel node-b pistioin']);
  t.match(r.decisions.find((x) => x.where === 'waypoint bookinfo-reviews'), { status: 200, sourceIdentity: id('sleep') });
  t.same(legHops(r, 4), ['ztunnel node-b eth0', 'node node-b veth-ztunnel', 'node node-b veth-reviews-v1', 'pod reviews-v1 eth0']);
});

t.test('sleep-sc -> httpbin-sc (sidecar -> sidecar over HBONE): REDIRECT 15001, HBONE straight to the pod\'s 15008, RETURNed there, 127.0.0.6 -> app', async (t) => {
  if (!up.ok) return;
  const ip = podIp(up.summary, 'default/httpbin-sc');
  const html = join(out, 'sc-sc.html');
  const r = trace('sleep-sc', ['http://httpbin-sc:8000/ip', '--html', html]);
  t.equal(r.request.summary, 'HTTP 200');
  checkCapturedTo15001(t, r, '10.96.0.13:8000');
  const page = readFileSync(html, 'utf8');
  t.match(page, /class="sc"/, '--html: the sidecars have their boxes');
  if (!r.legs[1].reused) t.match(page, /sidecar sleep-sc · eth0: sidecar sleep-sc opens a connection \(TCP SYN\) to 10\.244\.\d+\.\d+:15008: HBONE/, '--html: the client sidecar\'s HBONE');
  if (!r.legs[1].reused) t.match(page, /sidecar httpbin-sc · eth0: httpbin-sc receives it on eth0; port 15008 is RETURNed by its nat rules/, '--html: the server sidecar takes it on 15008');
  t.match(r.legs[1], { encap: 'hbone', server: `${ip}:15008`, origin: 'sidecar sleep-sc', delivered: 'sidecar httpbin-sc' }, 'one sidecar to the other, no ztunnel');
  t.same(legHops(r, 2).slice(-3), ['node node-b eth0', 'node node-b veth-httpbin-sc', 'sidecar httpbin-sc eth0'], 'no istioin: a sidecar pod is not in ztunnel-pods-ips');
  t.notOk(r.hops.some((h) => h.where.startsWith('ztunnel ')), 'no ztunnel on the path');
  if (!r.legs[1].reused) {
    t.match(lastOf(r, 2).reason, /ISTIO_INBOUND #1 --dport 15008 RETURN \(\+1\): HBONE is not redirected/);
    t.match(r.legs[1].tunnel, { authority: `${ip}:80`, clientIdentity: id('sleep-sc'), serverIdentity: id('httpbin-sc') });
  }
  t.match(r.legs[2], { server: `${ip}:80`, delivered: 'pod httpbin-sc (the app)', app: 'took-in' });
  t.ok(r.legs[2].client.startsWith('127.0.0.6:'), `the server sidecar reaches the app from 127.0.0.6 (${r.legs[2].client})`);
  t.match(r.decisions.find((x) => x.where === 'sidecar sleep-sc'), { direction: 'outbound', upstreamTransport: `hbone ${ip}:15008` });
  t.match(r.decisions.find((x) => x.where === 'sidecar httpbin-sc'), { direction: 'inbound', sourceIdentity: id('sleep-sc'), requestId: r.requestId });
});

t.test('sleep-sc -> web (sidecar -> mode none): REDIRECT 15001, then plaintext straight to the pod', async (t) => {
  if (!up.ok) return;
  const ip = podIp(up.summary, 'default/web');
  const r = trace('sleep-sc', ['http://web:8000/ip']);
  t.equal(r.request.summary, 'HTTP 200');
  checkCapturedTo15001(t, r, '10.96.0.15:8000');
  t.equal(r.legs.length, 2, 'the app\'s connection and the sidecar\'s, nothing else');
  t.match(r.legs[1], { encap: 'none', server: `${ip}:80`, origin: 'sidecar sleep-sc', delivered: 'pod web' });
  t.notOk(r.legs[1].istioMtls, 'plaintext: a pod without a mesh proxy gets no TLS');
  t.same(legHops(r, 2).slice(-3), ['node node-b eth0', 'node node-b veth-web', 'pod web eth0']);
  t.notOk(r.hops.some((h) => h.where.startsWith('ztunnel ')), 'no ztunnel on the path');
  t.match(r.decisions.find((x) => x.where === 'sidecar sleep-sc'), { upstreamTransport: 'plaintext', upstreamHost: `${ip}:80` });
});

t.test('sleep-sc -> httpbin-mtls (Istio mTLS to the app port, REDIRECT 15006 at the destination)', async (t) => {
  if (!up.ok) return;
  const ip = podIp(up.summary, 'default/httpbin-mtls');
  const dir = join(out, 'mtls');
  const r = trace('sleep-sc', ['http://httpbin-mtls:8000/ip', '--out', dir]);
  t.equal(r.request.summary, 'HTTP 200');
  checkCapturedTo15001(t, r, '10.96.0.14:8000');
  const mtls = r.legs[1];
  t.match(mtls, { encap: 'none', istioMtls: true, server: `${ip}:80`, delivered: 'sidecar httpbin-mtls' }, 'TLS straight to the app port, no HBONE');
  t.same(mtls.alpn, ['istio-peer-exchange', 'istio'], 'ALPN from the ClientHello');
  t.same(legHops(r, 2).slice(-2), ['node node-b veth-httpbin-mtls', 'sidecar httpbin-mtls eth0']);
  t.match(lastOf(r, 2).reason, /ISTIO_INBOUND #\d+ -> ISTIO_IN_REDIRECT \(\+1\) -> ISTIO_IN_REDIRECT #1 REDIRECT --to-ports 15006 \(\+1\)/);
  t.ok(moved(r, 'sidecar httpbin-mtls', 'ISTIO_IN_REDIRECT', /REDIRECT --to-ports 15006/) >= 1, 'nat ISTIO_IN_REDIRECT REDIRECT 15006 moved');
  if (!mtls.reused) {
    t.match(mtls.tunnel, { clientIdentity: id('sleep-sc'), serverIdentity: id('httpbin-mtls'), source: ['the wire (decrypted with the key log)'] });
    // tshark agrees, with the sidecars' key log the trace kept.
    const certs = spawnSync('tshark', ['-r', join(dir, 'merged.pcapng'), '-o', `tls.keylog_file:${join(dir, 'keys.log')}`, '-d', 'tcp.port==80,tls',
      '-Y', `tls.handshake.type == 11 && ip.src == ${ip} && tcp.srcport == 80`, '-T', 'fields', '-e', 'x509ce.uniformResourceIdentifier'], { encoding: 'utf8' }).stdout;
    t.match(certs, id('httpbin-mtls'), 'tshark: httpbin-mtls\'s certificate on the wire');
  }
  t.match(r.legs[2], { server: `${ip}:80`, delivered: 'pod httpbin-mtls (the app)' });
  t.ok(r.legs[2].client.startsWith('127.0.0.6:'));
  t.match(r.decisions.find((x) => x.where === 'sidecar sleep-sc'), { upstreamTransport: 'istio-mtls', upstreamHost: `${ip}:80` });
  t.match(r.decisions.find((x) => x.where === 'sidecar httpbin-mtls'), { direction: 'inbound', sourceIdentity: id('sleep-sc') });
});

t.test('sleep-plain -> httpbin-sc (plaintext, REDIRECT 15006), and --html draws the sidecar in its pod', async (t) => {
  if (!up.ok) return;
  const ip = podIp(up.summary, 'default/httpbin-sc');
  const html = join(out, 'plain.html');
  const r = trace('sleep-plain', ['http://httpbin-sc:8000/ip', '--html', html]);
  t.equal(r.request.summary, 'HTTP 200');
  t.same(legHops(r, 1), ['pod sleep-plain eth0', 'node node-a veth-sleep-plain', 'node node-a eth0', 'underlay underlay-node-a', 'underlay underlay-node-b', 'node node-b eth0', 'node node-b veth-httpbin-sc', 'sidecar httpbin-sc eth0'],
    'no ztunnel anywhere: kube-proxy DNAT, then the sidecar pod');
  t.equal(r.hops.find((h) => h.where === 'node node-a' && h.interface === 'eth0')?.dst, `${ip}:80`);
  t.match(lastOf(r, 1).reason, /REDIRECT --to-ports 15006 \(\+1\): 10\.244\.\d+\.\d+:80 goes to the sidecar's inbound listener 15006/);
  t.equal(moved(r, 'sidecar httpbin-sc', 'ISTIO_INBOUND', /--dport 15008 -j RETURN/), 0, 'not HBONE');
  t.match(r.legs[1], { server: `${ip}:80`, delivered: 'pod httpbin-sc (the app)' });
  t.ok(r.legs[1].client.startsWith('127.0.0.6:'));
  const d = r.decisions.find((x) => x.where === 'sidecar httpbin-sc');
  t.match(d, { direction: 'inbound', sourceAddress: podIp(up.summary, 'default/sleep-plain') });
  t.notOk(d?.sourceIdentity, 'plaintext: no identity');
  const page = readFileSync(html, 'utf8');
  t.match(page, /class="sc"/, 'the sidecar has a box');
  t.match(page, />sidecar 1337</);
  t.match(page, /the sidecar hands the request to the app in httpbin-sc over lo, from 127\.0\.0\.6/);
  t.match(page, /its nat rules \(ISTIO_INBOUND -&gt; ISTIO_IN_REDIRECT\) send it to the sidecar&#39;s inbound port 15006|its nat rules \(ISTIO_INBOUND -&gt; ISTIO_IN_REDIRECT\) send it to the sidecar's inbound port 15006/);
});
