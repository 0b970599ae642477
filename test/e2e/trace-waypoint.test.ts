// `lab trace` through a waypoint (test/fixtures/topologies/waypoint.yaml): sleep (node-a) ->
// reviews goes client ztunnel -> HBONE to the waypoint pod -> the waypoint's L7 decision ->
// HBONE from the waypoint's own address and identity to the chosen pod's :15008 on node-b ->
// node-b's ztunnel -> the pod. The hops are checked against the path the design says the
// packets must take, the decision against what the request really got (the pod that
// answered), and the second tunnel's identity against the certificate on the wire (tshark
// decrypting the capture with the key log).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { lab, upJson, podIp } from './helpers.js';

const NAME = 'tw-trace-wp';
const out = mkdtempSync(join(tmpdir(), 'alt-trace-wp-'));
const WP_ID = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews-istio-waypoint';
const SLEEP_ID = 'spiffe://cluster.local/ns/default/sa/sleep';
const WP = 'waypoint bookinfo-reviews';

interface Hop { index: number; leg: number; role: string; where: string; interface: string; src: string; dst: string; vni?: number; reason?: string; delivered?: boolean }
interface Leg { id: number; client: string; server: string; encap: string; reused: boolean; tunnel?: { authority?: string; clientIdentity?: string; serverIdentity?: string; source: string[] } }
interface Decision {
  leg: number; afterHop: number; requestLine: string; status: number; localReply: boolean; responseCodeDetails: string; denial?: string;
  route?: { origin: string; index: number }; backend?: { host: string; port: number; subset?: string; weightPercent: number };
  upstreamHost?: string; sourceIdentity?: string; requestId?: string;
}
interface Report { hops: Hop[]; legs: Leg[]; decisions: Decision[]; request: { ok: boolean; summary: string }; requestId?: string }

const up = upJson('test/fixtures/topologies/waypoint.yaml', NAME);
t.teardown(() => {
  lab(['down', NAME]);
  rmSync(out, { recursive: true, force: true });
});

function trace(args: string[]): Report {
  const r = lab(['trace', '--lab', NAME, 'sleep', ...args, '--json'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`lab trace failed (${r.code}): ${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout) as Report;
}
const where = (h: Hop): string => `${h.where} ${h.interface}${h.vni ? ` vni ${h.vni}` : ''}`;
const legHops = (r: Report, leg: number): string[] => r.hops.filter((h) => h.leg === leg).map(where);
const ipOf = (ep: string): string => ep.replace(/:\d+$/, '');

t.test('GET through the waypoint: every hop in order, the decision between the two tunnels', async (t) => {
  if (!t.ok(up.ok, `lab up\n${up.stderr}`)) return;
  const wpIp = podIp(up.summary, 'default/bookinfo-reviews-istio-waypoint');
  const vip = up.summary.services.find((s: { name: string }) => s.name === 'default/reviews').vip;
  const dir = join(out, 'get');
  const r = trace(['http://reviews:9080/hostname', '--out', dir]);
  t.equal(r.request.summary, 'HTTP 200');
  // sleep -> the client ztunnel: captured on node-a (istioout, Geneve 1001, TPROXY 15001).
  t.same(legHops(r, 1), ['pod sleep eth0', 'node node-a veth-sleep', 'node node-a istioout', 'node node-a veth-ztunnel vni 1001', 'ztunnel node-a eth0 vni 1001', 'ztunnel node-a pistioout']);
  t.match(r.hops.find((h) => h.interface === 'pistioout')?.reason, /TPROXY -> 127\.0\.0\.1:15001/);
  // The client ztunnel -> the waypoint: HBONE to the waypoint pod's :15008, CONNECT to the Service VIP.
  t.equal(r.legs[1].server, `${wpIp}:15008`);
  t.equal(r.legs[1].encap, 'hbone');
  t.same(legHops(r, 2), ['ztunnel node-a eth0', 'node node-a veth-ztunnel', 'node node-a veth-wp-bookinfo-reviews', `${WP} eth0`], 'same node: straight over the waypoint\'s veth');
  t.match(r.legs[1].tunnel, { authority: `${vip}:9080`, clientIdentity: SLEEP_ID, serverIdentity: WP_ID }, 'the first tunnel: sleep\'s identity, authority = the Service VIP:port');
  // The decision sits right after the request reached the waypoint.
  const arrival = r.hops.filter((h) => h.leg === 2).at(-1)!;
  t.equal(r.decisions.length, 1);
  const d = r.decisions[0];
  t.equal(d.afterHop, arrival.index);
  t.equal(d.requestLine, 'GET /hostname');
  t.ok(r.requestId?.startsWith('lab-trace-'), 'the trace sent its own x-request-id');
  t.equal(d.requestId, r.requestId, 'the waypoint\'s log line is matched by that x-request-id');
  t.match(d, { status: 200, localReply: false, sourceIdentity: SLEEP_ID, route: { origin: 'VirtualService default/reviews http[1]', index: 1 } });
  t.ok(d.backend?.subset === 'v1' || d.backend?.subset === 'v2', `backend subset ${d.backend?.subset}`);
  t.equal(d.backend?.weightPercent, d.backend?.subset === 'v1' ? 90 : 10, 'the weight of the subset it picked');
  // The waypoint -> the chosen pod: its own address, to that pod's :15008, on node-b through istioin.
  const pod = `reviews-${d.backend!.subset}`;
  const podAddr = podIp(up.summary, `default/${pod}`);
  t.equal(ipOf(d.upstreamHost!), podAddr, 'upstream_host is the subset\'s pod');
  t.same([ipOf(r.legs[2].client), r.legs[2].server], [wpIp, `${podAddr}:15008`], 'the second tunnel starts at the waypoint\'s own IP');
  const leg3 = legHops(r, 3);
  t.same(leg3.slice(0, 7), [`${WP} eth0`, 'node node-a veth-wp-bookinfo-reviews', 'node node-a eth0', 'underlay underlay-node-a', 'underlay underlay-node-b', 'node node-b eth0', r.legs[2].reused ? 'node node-b veth-ztunnel' : 'node node-b istioin']);
  if (!r.legs[2].reused) t.same(leg3.slice(-3), ['node node-b veth-ztunnel vni 1000', 'ztunnel node-b eth0 vni 1000', 'ztunnel node-b pistioin'], 'a new tunnel: Geneve 1000 to node-b\'s ztunnel, TPROXY 15008');
  t.equal(r.legs[2].tunnel?.clientIdentity, WP_ID, 'the second tunnel carries the waypoint\'s identity');
  if (!r.legs[2].reused) {
    t.match(r.legs[2].tunnel, { authority: `${podAddr}:80`, serverIdentity: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews', source: ['the wire (decrypted with the key log)'] },
      'a new tunnel: identities and CONNECT read from the decrypted handshake');
  }
  // The destination ztunnel -> the pod, from the waypoint's address; the pod that answered is the one the decision named.
  t.same(legHops(r, 4), ['ztunnel node-b eth0', 'node node-b veth-ztunnel', `node node-b veth-${pod}`, `pod ${pod} eth0`]);
  t.equal(ipOf(r.hops.filter((h) => h.leg === 4)[0].src), wpIp);
  // The wire agrees: the certificate the waypoint presented on the second tunnel (decrypted with the key log).
  if (!r.legs[2].reused) {
    const certs = spawnSync('tshark', ['-r', join(dir, 'merged.pcapng'), '-o', `tls.keylog_file:${join(dir, 'keys.log')}`, '-Y', `tls.handshake.type == 11 && ip.src == ${wpIp} && tcp.dstport == 15008`, '-T', 'fields', '-e', 'x509ce.uniformResourceIdentifier'], { encoding: 'utf8' }).stdout;
    t.match(certs, WP_ID, 'tshark: the waypoint\'s client certificate on the second tunnel');
  }
  // The table shows the same.
  const text = lab(['trace', '--lab', NAME, 'sleep', 'http://reviews:9080/hostname', '-H', 'end-user: jason']).stdout;
  t.match(text, /== waypoint bookinfo-reviews decides: GET \/hostname \(Host reviews:9080, x-request-id lab-trace-[0-9a-f-]+\)\n.*\n.*\n\s+route: VirtualService default\/reviews http\[0\] \(rule 0\)\n\s+backend: reviews\.default\.svc\.cluster\.local:9080 subset v2, weight 100%/);
  t.match(text, /pod reviews-v2 +eth0/, 'end-user: jason goes to v2, and the hops end there');
});

t.test('a denied POST: the waypoint is the last hop, 403 with the RBAC reason', async (t) => {
  if (!up.ok) return;
  const r = trace(['http://reviews:9080/hostname', '-X', 'POST']);
  t.equal(r.request.summary, 'HTTP 403');
  t.equal(where(r.hops.at(-1)!), `${WP} eth0`, 'the last hop is the waypoint');
  t.same(r.legs.map((l) => l.encap), ['none', 'hbone'], 'no tunnel out of the waypoint');
  t.match(r.decisions, [{ requestLine: 'POST /hostname', status: 403, localReply: true, responseCodeDetails: 'rbac_access_denied', denial: /^RBAC: access denied/, afterHop: r.hops.at(-1)!.index }]);
  const text = lab(['trace', '--lab', NAME, 'sleep', 'http://reviews:9080/hostname', '-X', 'POST']).stdout;
  t.match(text, /answer: 403 rbac_access_denied.*RBAC: access denied.*the request went no further/);
});

t.test('--html draws the waypoint and its decision; bad --header is refused', async (t) => {
  if (!up.ok) return;
  const html = join(out, 'wp.html');
  const r = lab(['trace', '--lab', NAME, 'sleep', 'http://reviews:9080/hostname', '-H', 'end-user: jason', '--html', html]);
  t.equal(r.code, 0, r.stderr);
  const page = readFileSync(html, 'utf8');
  t.match(page, /class="wp"/, 'the waypoint has its own box');
  t.match(page, /class="verdict">GET -&gt; v2 \(100%\): 200</, 'its decision is written in it');
  t.match(page, /opens the tunnel and reads the HTTP request inside: GET \/hostname/);
  const bad = lab(['trace', '--lab', NAME, 'sleep', 'http://reviews:9080/hostname', '-H', 'no colon']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--header "no colon" is not a header/);
});
