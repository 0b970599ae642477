// The course's registry: one entry per exercise (its Markdown page, the lab it runs on, and its
// checks). Checks are data (a title, a hint, how long to retry) plus a function over the live lab;
// answer checks compare ~/answers/NN.yaml with what the lab really has.
import type { LiveLab } from './probe.js';
import { counterSum } from './probe.js';
import { labStateFile } from '../state/store.js';
import { readEnrolmentLog } from '../lab/enrol.js';
import { findFaults, readFaults } from '../lab/break.js';
import { HBONE_PORT } from '../mesh/ports.js';
import type { SupervisedRecord } from '../lab/supervisor.js';

export interface Outcome {
  ok: boolean; detail: string; hint?: string;
  /** Not worth retrying: what the check needs is not there yet (an earlier step of the exercise). */
  final?: boolean;
}

export interface Check {
  title: string;
  /** What to try when it fails (an outcome may give a sharper one). */
  hint: string;
  /** Retried until it passes or this many ms have gone by (traffic and restarts take a moment). */
  retryMs: number;
  run: (lab: LiveLab) => Outcome | Promise<Outcome>;
}

export interface Answer {
  key: string;
  /** What it is about, for the check's title. */
  about: string;
  /** Where in the lab to look, for the hint (never the answer). */
  lookAt: string;
  expected: (lab: LiveLab) => unknown;
}

export interface Exercise {
  id: string;
  slug: string;
  title: string;
  /** Whether its page and checks exist yet. */
  written: boolean;
  /** Lab name: fixed by the course, so `lab check NN` knows where to look. */
  lab: string;
  /** Topology file, relative to the repository. */
  topology: string;
  upArgs: string[];
  checks: Check[];
  answers: Answer[];
}

const pass = (detail: string): Outcome => ({ ok: true, detail });
const fail = (detail: string, hint?: string): Outcome => ({ ok: false, detail, ...(hint ? { hint } : {}) });
/** A failure that retrying cannot fix: an earlier step is missing, so say which. */
const missingStep = (detail: string, hint: string): Outcome => ({ ok: false, detail, hint, final: true });

const spiffe = (lab: LiveLab, pod: string): string => {
  const p = lab.pod(pod);
  return `spiffe://cluster.local/ns/${p.namespace}/sa/${p.serviceAccount ?? p.name}`;
};

function curlOk(from: string, url: string): Check {
  return {
    title: `${from} reaches ${url} (HTTP 200)`, hint: `try it: lab exec ${from} -- curl -sv ${url}`, retryMs: 8000,
    run: (lab) => {
      const r = lab.curl(from, url);
      return r.exit === 0 && r.status === '200' ? pass(`HTTP 200`) : fail(`curl exit ${r.exit}, HTTP ${r.status || '-'}`);
    },
  };
}

/** A probe: send one request and require a rule's packet counter to move. */
function counterMoves(title: string, node: string, table: string, rule: (lab: LiveLab) => RegExp, from: string, url: string, hint: string): Check {
  return {
    title, hint, retryMs: 8000,
    run: (lab) => {
      // A node, or a pod (a ztunnel pod, a sidecar pod's own nat rules).
      const ns = lab.plan.nodes.some((n) => n.name === node) ? lab.node(node).netns : lab.pod(node).netns;
      const re = rule(lab);
      const before = counterSum(lab.counters(ns, table), re);
      const r = lab.curl(from, url);
      const after = counterSum(lab.counters(ns, table), re);
      if (r.exit !== 0) return fail(`the probe request failed (curl exit ${r.exit})`);
      return after > before ? pass(`+${after - before} packets on ${re.source}`) : fail(`no packet counted by ${re.source} in ${node}'s ${table} table`);
    },
  };
}

function lines(r: { out: string }): string[] { return r.out.split('\n'); }

/** The fields of a ztunnel's workload (its /config_dump, keyed by IP) that the checks read. */
type ZtunnelWorkloads = Record<string, { name: string; protocol?: string; waypointAddresses?: string[]; authorizationPolicies?: string[] }>;

/** A node's ztunnel's workloads (its /config_dump), through the lab's own CLI. */
function ztunnelWorkloads(lab: LiveLab, node: string): ZtunnelWorkloads {
  const r = lab.cli(['ztunnel', 'config', node, '--json']);
  if (r.code !== 0) throw new Error(`lab ztunnel config ${node} failed (exit ${r.code}: ${r.err.trim().split('\n')[0]})`);
  return (JSON.parse(r.out) as { workloads: ZtunnelWorkloads }).workloads;
}

const HTTPBIN = 'http://httpbin:8000/ip';

const ex01: Exercise = {
  id: '01', slug: 'pods-and-nodes', title: 'Pods and nodes without a mesh', written: true,
  lab: 'ex01', topology: 'topologies/plain.yaml', upArgs: ['--no-mesh'],
  checks: [
    {
      title: 'no pod is enrolled (no ztunnel-pods-ips ipset on node-a)', hint: 'this exercise runs without the mesh: lab course start 01', retryMs: 0,
      run: (lab) => {
        const r = lab.inNs(lab.node('node-a').netns, ['ipset', 'list', '-n']);
        return r.out.includes('ztunnel-pods-ips') ? fail('node-a has the ambient ipset') : pass('no ambient ipset on node-a');
      },
    },
    curlOk('sleep', HTTPBIN),
    counterMoves("kube-proxy's DNAT to httpbin's endpoint counts the probe's SYN on node-a", 'node-a', 'nat',
      (lab) => new RegExp(`DNAT --to-destination ${lab.pod('httpbin').ip.replace(/\./g, '\\.')}:80`), 'sleep', HTTPBIN,
      'lab exec node-a -- iptables -t nat -L KUBE-SERVICES -v -n, then follow the KUBE-SVC-* chain'),
  ],
  answers: [
    { key: 'sleep_ip', about: "sleep's pod IP", lookAt: 'lab status, or lab exec sleep -- ip -4 addr', expected: (l) => l.pod('sleep').ip },
    { key: 'sleep_gateway', about: "sleep's default gateway", lookAt: 'lab exec sleep -- ip route', expected: (l) => l.node('node-a').hostIp },
    { key: 'httpbin_cluster_ip', about: "httpbin's ClusterIP", lookAt: 'lab status (SERVICE table)', expected: (l) => l.plan.services.find((s) => s.name === 'httpbin')!.vip },
    { key: 'dnat_to', about: 'where kube-proxy DNATs httpbin:8000 to (ip:port)', lookAt: 'lab exec node-a -- iptables -t nat -S | grep DNAT', expected: (l) => `${l.pod('httpbin').ip}:80` },
    { key: 'route_to_node_b_pods', about: "node-a's next hop for node-b's pod CIDR", lookAt: 'lab exec node-a -- ip route', expected: (l) => l.node('node-b').ip },
    // The client's node: kube-proxy's DNAT runs as the SYN enters node-a (nat PREROUTING).
    { key: 'dnat_node', about: "the node whose kube-proxy rule rewrites the VIP for sleep's request", lookAt: 'lab exec node-a -- iptables -t nat -L KUBE-SERVICES -v -n, and the same on node-b', expected: (l) => l.pod('sleep').node },
  ],
};

const ex02: Exercise = {
  id: '02', slug: 'enrolling', title: 'Enrolling a pod in ambient', written: true,
  lab: 'ex02', topology: 'topologies/demo.yaml', upArgs: [],
  checks: [
    {
      title: "node-a's ipset ztunnel-pods-ips holds sleep's IP", hint: 'lab exec node-a -- ipset list ztunnel-pods-ips', retryMs: 2000,
      run: (lab) => {
        const r = lab.inNs(lab.node('node-a').netns, ['ipset', 'list', 'ztunnel-pods-ips']);
        return r.out.split('\n').some((l) => l.startsWith(`${lab.pod('sleep').ip} `) || l === lab.pod('sleep').ip) ? pass('enrolled') : fail(`sleep (${lab.pod('sleep').ip}) is not in the set`);
      },
    },
    {
      title: 'node-a has ip rules 100-103', hint: 'lab exec node-a -- ip rule', retryMs: 2000,
      run: (lab) => {
        const have = lines(lab.inNs(lab.node('node-a').netns, ['ip', 'rule'])).map((l) => l.split(':')[0].trim());
        const missing = ['100', '101', '102', '103'].filter((p) => !have.includes(p));
        return missing.length ? fail(`missing rule(s) ${missing.join(', ')}`) : pass('rules 100, 101, 102, 103');
      },
    },
    {
      title: "node-a's table 101 sends everything to the ztunnel over istioout", hint: 'lab exec node-a -- ip route show table 101', retryMs: 2000,
      run: (lab) => {
        const r = lab.inNs(lab.node('node-a').netns, ['ip', 'route', 'show', 'table', '101']);
        return /default via 192\.168\.127\.2 dev istioout/.test(r.out) ? pass('default via 192.168.127.2 dev istioout') : fail(`table 101: ${r.out.trim() || 'empty'}`);
      },
    },
    counterMoves("the probe's SYN is marked 0x100 in node-a's mangle ztunnel-PREROUTING", 'node-a', 'mangle',
      () => /-A ztunnel-PREROUTING .*ztunnel-pods-ips src .*0x100/, 'sleep', HTTPBIN, 'lab exec node-a -- iptables -t mangle -L ztunnel-PREROUTING -v -n'),
    {
      title: 'you unenrolled sleep live and enrolled it again, and the ztunnels know it as HBONE', retryMs: 2000,
      hint: 'lab unenrol sleep, look at it, then lab label namespace default istio.io/dataplane-mode=ambient',
      run: (lab) => {
        const log = readEnrolmentLog(lab.name).filter((e) => e.pod === lab.pod('sleep').key).map((e) => e.to);
        const out = log.indexOf('none');
        if (out < 0) return missingStep('sleep was never unenrolled', 'lab unenrol sleep (the section "Enrolling and unenrolling live")');
        if (!log.slice(out + 1).includes('ambient')) return missingStep('sleep was unenrolled and not enrolled again', 'lab label namespace default istio.io/dataplane-mode=ambient');
        const w = ztunnelWorkloads(lab, 'node-a')[lab.pod('sleep').ip];
        return w?.protocol === 'HBONE' ? pass(`${log.join(' -> ')}; sleep: HBONE`) : fail(`sleep: ${w?.protocol ?? 'unknown to the ztunnel'}`);
      },
    },
  ],
  answers: [
    { key: 'ipset_node_b', about: "the IPs in node-b's ztunnel-pods-ips", lookAt: 'lab exec node-b -- ipset list ztunnel-pods-ips', expected: (l) => l.plan.pods.filter((p) => p.node === 'node-b' && p.mode === 'ambient' && p.role === 'workload').map((p) => p.ip) },
    { key: 'outbound_mark', about: "the mark of an enrolled pod's outbound packet", lookAt: 'lab exec node-a -- iptables -t mangle -S ztunnel-PREROUTING', expected: () => '0x100' },
    { key: 'outbound_table', about: 'the routing table that marked packets use', lookAt: 'lab exec node-a -- ip rule', expected: () => 101 },
    { key: 'istioout_peer', about: 'the far end of istioout (the ztunnel pod side)', lookAt: 'lab exec node-a -- ip route show table 101; lab exec ztunnel-node-a -- ip -4 addr show pistioout', expected: () => '192.168.127.2' },
    { key: 'geneve_remote', about: "the address istioout's Geneve packets go to", lookAt: 'lab status (ztunnel pod IPs); lab capture node-a:veth-ztunnel -- -nn -c 2 udp port 6081', expected: (l) => l.ztunnelPod('node-a').ip },
  ],
};

const ex03: Exercise = {
  id: '03', slug: 'l4-path', title: 'The L4 path in ten steps', written: true,
  lab: 'ex03', topology: 'topologies/demo.yaml', upArgs: [],
  checks: [
    {
      title: 'lab trace sleep -> httpbin: istioout, ztunnel node-a, HBONE to 15008, ztunnel node-b, httpbin, HTTP 200', hint: 'lab trace sleep http://httpbin:8000/ip', retryMs: 8000,
      run: (lab) => {
        // A tunnel opened within the last minute is reused from the pool, so the trace may
        // show no new SYN through istioin: require what every request shows.
        const r = lab.cli(['trace', 'sleep', HTTPBIN]);
        const need = [/HTTP 200/, /node node-a +istioout/, /TPROXY -> 127\.0\.0\.1:15001/, /HBONE [\d.:]+ -> [\d.]+:15008/, /opened by ztunnel node-b, taken in by pod httpbin/, /pod httpbin +eth0 +delivered/];
        const missing = need.filter((re) => !re.test(r.out));
        return missing.length ? fail(`the trace lacks ${missing.map((m) => m.source).join(', ')}${r.code ? ` (exit ${r.code}: ${r.err.trim().split('\n')[0]})` : ''}`) : pass('every step seen');
      },
    },
    counterMoves("the probe's SYN is handed to ztunnel node-a's 15001 by TPROXY on pistioout", 'ztunnel-node-a', 'mangle',
      () => /-i pistioout .*TPROXY/, 'sleep', HTTPBIN, 'lab exec ztunnel-node-a -- iptables -t mangle -L PREROUTING -v -n'),
  ],
  answers: [
    { key: 'outbound_vni', about: 'the Geneve VNI of istioout', lookAt: 'lab trace sleep http://httpbin:8000/ip (step 4)', expected: () => 1001 },
    { key: 'inbound_vni', about: 'the Geneve VNI of istioin', lookAt: 'the trace, step 14', expected: () => 1000 },
    { key: 'hbone_port', about: 'the port the HBONE tunnel connects to', lookAt: 'the trace, connection 2', expected: () => HBONE_PORT },
    { key: 'node_b_ip_rule', about: 'the ip rule on node-b that sends the tunnel to istioin', lookAt: 'the trace, step 13; lab exec node-b -- ip rule', expected: () => 103 },
    { key: 'source_ip_seen_by_httpbin', about: 'the source address httpbin sees', lookAt: 'lab exec sleep -- curl -s http://httpbin:8000/ip', expected: (l) => l.pod('sleep').ip },
  ],
};

function metricSum(text: string, name: string): number {
  let n = 0;
  for (const l of text.split('\n')) if (l.startsWith(name)) n += Number(l.trim().split(/\s+/).pop()) || 0;
  return n;
}

const ex04: Exercise = {
  id: '04', slug: 'inside-ztunnel', title: 'Inside ztunnel', written: true,
  lab: 'ex04', topology: 'lab/topologies/ex04.yaml', upArgs: [],
  checks: [
    {
      title: "node-a's ztunnel knows sleep as an HBONE workload", hint: 'lab ztunnel config node-a', retryMs: 4000,
      run: (lab) => {
        const w = ztunnelWorkloads(lab, 'node-a')[lab.pod('sleep').ip];
        return w?.protocol === 'HBONE' ? pass('sleep: HBONE') : fail(`sleep: ${w ? w.protocol : 'unknown to the ztunnel'}`);
      },
    },
    {
      title: "node-b's ztunnel counts the probe's connection (istio_tcp_connections_opened_total)", hint: 'lab exec ztunnel-node-b -- curl -s localhost:15020/metrics', retryMs: 8000,
      run: (lab) => {
        const ns = lab.ztunnelPod('node-b').netns;
        const m = (): number => metricSum(lab.inNs(ns, ['curl', '-s', '--max-time', '3', 'http://127.0.0.1:15020/metrics']).out, 'istio_tcp_connections_opened_total');
        const before = m();
        const r = lab.curl('sleep', HTTPBIN);
        const after = m();
        if (r.exit !== 0) return fail(`the probe request failed (curl exit ${r.exit})`);
        return after > before ? pass(`${before} -> ${after}`) : fail(`the counter stayed at ${after}`);
      },
    },
    {
      title: "the key log of node-a's ztunnel grows with a new HBONE tunnel", hint: 'ls /run/ambient-lab/ex04/keylog/', retryMs: 8000,
      run: (lab) => {
        const f = labStateFile(lab.name, 'keylog', 'ztunnel-node-a.keys');
        const keyLog = (): number => lab.logText(f).split('\n').filter((l) => l.startsWith('CLIENT_TRAFFIC_SECRET_0')).length;
        const before = keyLog();
        // A second client identity would pool separately; here the same sleep opens a new tunnel
        // only when the pooled one is gone, so count what exists after a request.
        lab.curl('sleep', HTTPBIN);
        const after = keyLog();
        return after > 0 ? pass(`${after} TLS sessions logged (${after - before} new)`) : fail('no CLIENT_TRAFFIC_SECRET_0 line yet');
      },
    },
    {
      // Two endpoints picked uniformly: 20 connections all to one happen with odds 2 in a million.
      title: "a probe of 20 requests from sleep to the Service web reaches both endpoints (node-a's ztunnel picks at random)", retryMs: 8000,
      hint: "lab exec sleep -- curl -s http://web:8000/hostname a few times; lab ztunnel config node-a (web's ENDPOINTS)",
      run: (lab) => {
        const names = lab.curlMany('sleep', 'http://web:8000/hostname', 20).filter((r) => r.status === '200').map((r) => r.body.trim());
        const count = (n: string): number => names.filter((x) => x === n).length;
        const d = `web-1 ${count('web-1')}, web-2 ${count('web-2')} of 20`;
        return count('web-1') > 0 && count('web-2') > 0 ? pass(d) : fail(d);
      },
    },
  ],
  answers: [
    { key: 'sleep_identity', about: "sleep's SPIFFE identity", lookAt: 'lab ztunnel config node-a; lab trace', expected: (l) => spiffe(l, 'sleep') },
    { key: 'httpbin_identity', about: "httpbin's SPIFFE identity", lookAt: 'lab logs ztunnel-node-b', expected: (l) => spiffe(l, 'httpbin') },
    { key: 'connect_authority', about: "the CONNECT request's :authority", lookAt: 'lab trace sleep http://httpbin:8000/ip (connection 2)', expected: (l) => `${l.pod('httpbin').ip}:80` },
    { key: 'node_a_identities', about: "the identities whose certificates node-a's ztunnel holds", lookAt: 'lab logs ztunnel-node-a | grep -A3 identities', expected: (l) => l.plan.pods.filter((p) => p.node === 'node-a' && p.mode === 'ambient' && p.role === 'workload').map((p) => spiffe(l, p.name)) },
  ],
};

const ex05: Exercise = {
  id: '05', slug: 'l4-authorization', title: 'L4 authorization in ztunnel', written: true,
  lab: 'ex05', topology: 'lab/topologies/ex05.yaml', upArgs: [],
  checks: [
    {
      title: "an AuthorizationPolicy of yours is bound to httpbin in node-b's ztunnel", retryMs: 2000,
      hint: 'write an ALLOW AuthorizationPolicy for app: httpbin that lets only sleep in, then `lab apply -f` it',
      run: (lab) => {
        const pols = ztunnelWorkloads(lab, 'node-b')[lab.pod('httpbin').ip]?.authorizationPolicies ?? [];
        return pols.length ? pass(pols.join(', ')) : fail('httpbin has no policy yet');
      },
    },
    curlOk('sleep', HTTPBIN),
    {
      title: "notsleep's connection to httpbin is reset (curl exit 56)", retryMs: 4000,
      hint: 'your policy still lets notsleep in: ALLOW only the principal cluster.local/ns/default/sa/sleep',
      run: (lab) => {
        const r = lab.curl('notsleep', HTTPBIN);
        return r.exit === 56 ? pass('curl exit 56 (connection reset)') : fail(`curl exit ${r.exit}, HTTP ${r.status || '-'}`);
      },
    },
    {
      title: "node-b's ztunnel logs the deny for notsleep, naming your policy", retryMs: 4000,
      hint: 'lab logs ztunnel-node-b | grep -A20 "connection denied"',
      run: (lab) => {
        const log = lab.state().processes.find((p) => p.id === 'ztunnel/node-b')?.log;
        const count = (): number => lab.logText(log ?? '').split('\n').filter((l) => l.includes('"connection denied"') && l.includes('"src.workload":"notsleep"')).length;
        const before = count();
        lab.curl('notsleep', HTTPBIN);
        const after = count();
        return after > before ? pass('a new "connection denied" line for notsleep') : fail('no new deny line in ztunnel-node-b\'s log');
      },
    },
  ],
  answers: [
    { key: 'denied_curl_exit', about: 'the exit code of curl when the policy denies it', lookAt: 'lab exec notsleep -- curl -s http://httpbin:8000/ip; echo $?', expected: () => 56 },
    { key: 'enforced_by', about: 'the process that enforces the policy', lookAt: 'lab logs ztunnel-node-a and ztunnel-node-b', expected: () => 'ztunnel-node-b' },
  ],
};

const REVIEWS = 'http://reviews:9080';
const WAYPOINT = 'bookinfo-reviews-istio-waypoint';

/** The waypoint's IP as the ztunnels know it (it is not in the plan: the learner applied it). */
function waypointIp(lab: LiveLab, node = 'node-a'): string {
  const w = Object.entries(ztunnelWorkloads(lab, node)).find(([, x]) => x.name === WAYPOINT);
  if (!w) throw new Error(`no ${WAYPOINT} yet: apply the waypoint first`);
  return w[0];
}

interface WaypointDump {
  routes?: Array<{ host: string; rules: Array<{ origin?: string; backends: Array<{ subset?: string | null; weight: number }> }> }>;
  authorization?: Array<{ name: string; namespace: string; action: string }>;
}

function waypointDump(lab: LiveLab): WaypointDump {
  const r = lab.cli(['proxy-config', WAYPOINT, '--json']);
  if (r.code !== 0) throw new Error(`lab proxy-config ${WAYPOINT} failed (exit ${r.code}: ${r.err.trim().split('\n')[0]})`);
  return JSON.parse(r.out) as WaypointDump;
}

/** The waypoint's 90/10 rule for reviews, if the route is applied (undefined without a waypoint too). */
function hasSplit(lab: LiveLab): { origin?: string } | undefined {
  let dump: WaypointDump;
  try { dump = waypointDump(lab); } catch { return undefined; }
  const rules = (dump.routes ?? []).filter((r) => r.host.startsWith('reviews.')).flatMap((r) => r.rules);
  return rules.find((r) => r.backends.some((b) => b.subset === 'v1' && b.weight === 90) && r.backends.some((b) => b.subset === 'v2' && b.weight === 10));
}

function allowPolicies(lab: LiveLab): Array<{ name: string; namespace: string }> {
  try { return (waypointDump(lab).authorization ?? []).filter((p) => p.action === 'ALLOW'); } catch { return []; }
}

const ex06: Exercise = {
  id: '06', slug: 'waypoints', title: 'Adding a waypoint: L4 to L7', written: true,
  lab: 'ex06', topology: 'lab/topologies/ex06.yaml', upArgs: [],
  checks: [
    {
      title: `the waypoint ${WAYPOINT} is up and node-a's ztunnel sends reviews' traffic to it (waypointAddresses)`, retryMs: 2000,
      hint: 'lab apply -f lab/topologies/ex06-waypoint.yaml, then lab ztunnel config node-a',
      run: (lab) => {
        const ws = ztunnelWorkloads(lab, 'node-a');
        const wp = Object.entries(ws).find(([, x]) => x.name === WAYPOINT)?.[0];
        if (!wp) return missingStep(`node-a's ztunnel knows no ${WAYPOINT}`, 'lab apply -f lab/topologies/ex06-waypoint.yaml, then lab ztunnel config node-a');
        const reviews = Object.values(ws).filter((x) => x.name.startsWith('reviews-'));
        const not = reviews.filter((x) => !(x.waypointAddresses ?? []).includes(wp));
        return reviews.length && !not.length ? pass(`${reviews.map((x) => x.name).join(', ')} -> waypoint ${wp}`) : fail(`${not.map((x) => x.name).join(', ') || 'reviews'} not pointed at ${wp}`);
      },
    },
    {
      title: 'the waypoint has the 90/10 route for reviews (v1 90, v2 10)', retryMs: 2000,
      hint: `lab apply -f lab/topologies/ex06-reviews-90-10.yaml, then lab proxy-config ${WAYPOINT} routes`,
      run: (lab) => {
        if (!lab.state().processes.some((p) => p.id.startsWith('waypoint/'))) return missingStep('no waypoint yet', 'apply the waypoint first (check 06.1)');
        const split = hasSplit(lab);
        return split ? pass(split.origin ?? 'v1 90, v2 10') : fail('no rule with v1 90 and v2 10 for reviews');
      },
    },
    {
      title: 'a probe of 100 requests from sleep reaches both versions, v1 the majority', retryMs: 8000,
      hint: 'lab exec sleep -- curl -s http://reviews:9080/hostname a few times; is the route applied?',
      run: (lab) => {
        if (!hasSplit(lab)) return missingStep('no 90/10 route on the waypoint yet', 'apply the route first (check 06.2)');
        const rs = lab.curlMany('sleep', `${REVIEWS}/hostname`, 100);
        const v1 = rs.filter((r) => r.status === '200' && r.body.trim() === 'reviews-v1').length;
        const v2 = rs.filter((r) => r.status === '200' && r.body.trim() === 'reviews-v2').length;
        const d = `v1 ${v1}, v2 ${v2} of ${rs.length}`;
        return v1 > 0 && v2 > 0 && v1 > v2 * 3 ? pass(d) : fail(d);
      },
    },
    {
      title: 'an ALLOW AuthorizationPolicy of yours is bound to the waypoint', retryMs: 2000,
      hint: `write the policy of the exercise (selector istio.io/gateway-name: bookinfo-reviews), lab apply -f it; lab proxy-config ${WAYPOINT} authz`,
      run: (lab) => {
        if (!lab.state().processes.some((p) => p.id.startsWith('waypoint/'))) return missingStep('no waypoint yet', 'apply the waypoint first (check 06.1)');
        const pols = allowPolicies(lab);
        return pols.length ? pass(pols.map((p) => `${p.namespace}/${p.name}`).join(', ')) : fail('the waypoint has no ALLOW policy');
      },
    },
    {
      title: "sleep's GET is allowed (200), its POST refused by the waypoint (403 RBAC: access denied)", retryMs: 4000,
      hint: 'your policy must ALLOW sleep\'s principal with methods: ["GET"] only',
      run: (lab) => {
        if (!allowPolicies(lab).length) return missingStep('no policy of yours on the waypoint yet', 'apply your policy first (check 06.4)');
        const get = lab.curl('sleep', `${REVIEWS}/ip`);
        const post = lab.curl('sleep', `${REVIEWS}/ip`, 5, ['-X', 'POST']);
        const d = `GET ${get.status || `exit ${get.exit}`}, POST ${post.status || `exit ${post.exit}`}${post.body ? ` (${post.body.trim()})` : ''}`;
        return get.status === '200' && post.status === '403' && post.body.includes('RBAC: access denied') ? pass(d) : fail(d);
      },
    },
    {
      title: "notsleep's GET is refused by the waypoint (403)", retryMs: 4000,
      hint: 'your policy must name the principal cluster.local/ns/default/sa/sleep',
      run: (lab) => {
        if (!allowPolicies(lab).length) return missingStep('no policy of yours on the waypoint yet', 'apply your policy first (check 06.4)');
        const r = lab.curl('notsleep', `${REVIEWS}/ip`);
        return r.status === '403' ? pass('403') : fail(`HTTP ${r.status || '-'} (curl exit ${r.exit})`);
      },
    },
  ],
  answers: [
    { key: 'source_ip_seen_by_reviews', about: 'the source address reviews sees through the waypoint', lookAt: 'lab exec sleep -- curl -s http://reviews:9080/ip', expected: (l) => waypointIp(l) },
    { key: 'waypoint_port', about: 'the port the waypoint listens on for HBONE', lookAt: 'lab/topologies/ex06-waypoint.yaml (listeners); lab trace sleep http://reviews:9080/ip', expected: () => HBONE_PORT },
    { key: 'denied_status', about: "the HTTP status of sleep's POST", lookAt: "lab exec sleep -- curl -s -X POST -w '%{http_code}' http://reviews:9080/ip", expected: () => 403 },
    { key: 'enforced_by', about: 'the process that refused the POST', lookAt: `lab logs ${WAYPOINT}`, expected: () => WAYPOINT },
  ],
};

// Exercise 7: every path of topologies/coexistence.yaml, from the three kinds of client.
const COEX_TARGETS = ['http://httpbin:8000/ip', 'http://reviews:9080/ip', 'http://httpbin-sc:8000/ip', 'http://httpbin-mtls:8000/ip', 'http://web:8000/ip'];

const ex07: Exercise = {
  id: '07', slug: 'sidecars', title: 'Ambient and sidecars together', written: true,
  lab: 'ex07', topology: 'topologies/coexistence.yaml', upArgs: [],
  checks: [
    ...['sleep', 'sleep-sc', 'sleep-plain'].map((from): Check => ({
      title: `${from} reaches every server${from === 'sleep-plain' ? ' but reviews (the hairpin needs its certificate on node-b)' : ''} (HTTP 200)`, retryMs: 8000,
      hint: `lab exec ${from} -- curl -sv URL for each Service of lab status; lab logs the proxies on the way`,
      run: (lab) => {
        const targets = COEX_TARGETS.filter((u) => !(from === 'sleep-plain' && u.includes('reviews')));
        const bad = targets.map((u) => ({ u, r: lab.curl(from, u) })).filter((x) => x.r.status !== '200');
        return bad.length ? fail(bad.map((x) => `${x.u}: curl exit ${x.r.exit}, HTTP ${x.r.status || '-'}`).join('; ')) : pass(`${targets.length} paths, HTTP 200`);
      },
    })),
    {
      title: "sleep-sc's istio-cni nat rules are in place (ISTIO_OUTPUT, ISTIO_REDIRECT to 15001, ISTIO_IN_REDIRECT to 15006)", retryMs: 2000,
      hint: 'lab exec sleep-sc -- iptables -t nat -S',
      run: (lab) => {
        const r = lab.inNs(lab.pod('sleep-sc').netns, ['iptables', '-t', 'nat', '-S']);
        const need = [/-A OUTPUT -p tcp -j ISTIO_OUTPUT/, /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/, /-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/, /--uid-owner 1337 -j RETURN/];
        const missing = need.filter((re) => !re.test(r.out));
        return missing.length ? fail(`missing ${missing.map((m) => m.source).join(', ')}`) : pass('istio-cni rules present');
      },
    },
    counterMoves("the probe's connection from sleep-sc's app is REDIRECTed to its sidecar's 15001", 'sleep-sc', 'nat',
      () => /-A ISTIO_REDIRECT .*REDIRECT --to-ports 15001/, 'sleep-sc', 'http://httpbin:8000/ip', 'lab exec sleep-sc -- iptables -t nat -L ISTIO_REDIRECT -v -n'),
  ],
  answers: [
    { key: 'source_ip_httpbin_sc_sees_from_sleep', about: 'the source address httpbin-sc (sidecar) sees for sleep', lookAt: 'lab exec sleep -- curl -s http://httpbin-sc:8000/ip', expected: () => '127.0.0.6' },
    { key: 'source_ip_httpbin_sees_from_sleep_sc', about: 'the source address httpbin (ambient) sees for sleep-sc', lookAt: 'lab exec sleep-sc -- curl -s http://httpbin:8000/ip', expected: (l) => l.pod('sleep-sc').ip },
    { key: 'source_ip_reviews_sees_from_sleep_sc', about: 'the source address reviews (behind a waypoint) sees for sleep-sc', lookAt: 'lab exec sleep-sc -- curl -s http://reviews:9080/ip; lab status', expected: (l) => waypointIp(l) },
    { key: 'ztunnel_port_to_httpbin_sc', about: "the port node-a's ztunnel connects to on httpbin-sc", lookAt: 'lab trace sleep http://httpbin-sc:8000/ip (connection 2)', expected: () => HBONE_PORT },
    { key: 'decrypted_by_sleep_to_httpbin_sc', about: 'who decrypts sleep -> httpbin-sc', lookAt: 'lab trace sleep http://httpbin-sc:8000/ip ("taken in by")', expected: () => 'sidecar httpbin-sc' },
    { key: 'sleep_sc_to_httpbin_mtls_transport', about: "how sleep-sc's sidecar sends to httpbin-mtls", lookAt: 'lab trace sleep-sc http://httpbin-mtls:8000/ip (the sidecar\'s upstream line)', expected: () => 'Istio mTLS' },
  ],
};

const ex08: Exercise = {
  id: '08', slug: 'ztunnel-failure', title: 'When ztunnel fails', written: true,
  lab: 'ex08', topology: 'topologies/demo.yaml', upArgs: [],
  checks: [
    {
      title: "node-a's ztunnel has been restarted by the supervisor at least once", retryMs: 3000,
      hint: 'kill the ztunnel/node-a PID that lab status shows, during traffic, and watch lab status',
      run: (lab) => {
        const p = lab.state().processes.find((x) => x.id === 'ztunnel/node-a');
        return (p?.restarts ?? 0) >= 1 ? pass(`restarts: ${p!.restarts}`) : fail('restarts: 0');
      },
    },
    {
      title: "node-a's ztunnel is running again (lab status: ready)", hint: 'lab status; lab logs ztunnel-node-a', retryMs: 10_000,
      run: (lab) => {
        const r = lab.cli(['status', '--json']);
        try {
          const p = (JSON.parse(r.out) as { processes: Array<{ id: string; ready: boolean }> }).processes.find((x) => x.id === 'ztunnel/node-a');
          return p?.ready ? pass('ready') : fail('not ready');
        } catch { return fail(`lab status failed (exit ${r.code})`); }
      },
    },
    curlOk('sleep', HTTPBIN),
    {
      title: "node-a's ztunnel was last replaced by a graceful restart (lab ztunnel restart node-a --graceful)", retryMs: 0,
      hint: 'lab ztunnel restart node-a --graceful, with a request open (the section "A graceful restart")',
      run: (lab) => {
        // The supervisor records how it last replaced the process (a crash restart records none).
        const r = (lab.state().processes.find((x) => x.id === 'ztunnel/node-a') as SupervisedRecord | undefined)?.rollout;
        if (r?.kind === 'graceful') return pass(`graceful restart at ${r.at} (was pid ${r.previousPid})`);
        return missingStep(r ? `its last restart was a ${r.kind} one` : 'never replaced with lab ztunnel restart', 'lab ztunnel restart node-a --graceful');
      },
    },
  ],
  answers: [
    { key: 'open_connection_curl_exit', about: 'the exit code of the curl whose connection was open when ztunnel died', lookAt: 'the first experiment of the exercise', expected: () => 52 },
    { key: 'new_connection_status', about: 'the HTTP status of a new connection once the supervisor restarted ztunnel', lookAt: 'lab exec sleep -- curl -s -o /dev/null -w "%{http_code}" http://httpbin:8000/ip', expected: () => 200 },
    { key: 'graceful_open_connection_curl_exit', about: 'the exit code of the curl whose connection was open during the graceful restart', lookAt: 'the section "A graceful restart"', expected: () => 0 },
    { key: 'listen_beside_option', about: 'the socket option that lets the new ztunnel listen beside the old one', lookAt: 'the output of lab ztunnel restart node-a --graceful', expected: () => 'SO_REUSEPORT' },
  ],
};

// Exercise 9: break-fix. The learner breaks the lab (`lab break`), finds what broke and fixes it.
const ex09: Exercise = {
  id: '09', slug: 'break-fix', title: 'Break-fix: find the fault', written: true,
  lab: 'ex09', topology: 'topologies/demo.yaml', upArgs: [],
  checks: [
    {
      title: 'a fault was injected with lab break', retryMs: 0,
      hint: 'lab break --random (the section "Your turn")',
      run: (lab) => {
        const h = readFaults(lab.name).history;
        return h.length ? pass(`${h.length} fault${h.length > 1 ? 's' : ''} injected so far`) : missingStep('no fault injected yet', 'lab break --random');
      },
    },
    {
      title: 'the data path is as lab up set it up again (ip rules, ipsets, TPROXY rules, rp_filter, policies)', retryMs: 2000,
      hint: 'something still differs from what lab up set up: compare what you see with exercises 2 and 3; lab break --reset puts it back',
      run: async (lab) => {
        const found = await findFaults(lab.name);
        // The count only: the list would be the answer.
        return found.length ? fail(`${found.length} difference${found.length > 1 ? 's' : ''} from what lab up set up`) : pass('no difference');
      },
    },
    curlOk('sleep', HTTPBIN),
    counterMoves("the probe's SYN goes to ztunnel node-a again (TPROXY on pistioout counts it)", 'ztunnel-node-a', 'mangle',
      () => /-i pistioout .*TPROXY --on-port 15001/, 'sleep', HTTPBIN, 'lab exec ztunnel-node-a -- iptables -t mangle -L PREROUTING -v -n'),
  ],
  answers: [
    { key: 'scenario', about: 'the scenario of the last fault injected (a name of lab break list)', lookAt: 'what you found, against lab break list', expected: (l) => lastFault(l).scenario },
    { key: 'where', about: 'the node or pod where it was (as lab exec names it)', lookAt: 'lab exec NODE-OR-POD -- ... where the difference was', expected: (l) => lastFault(l).where },
  ],
};

function lastFault(lab: LiveLab): { scenario: string; where: string } {
  const h = readFaults(lab.name).history;
  if (!h.length) throw new Error('no fault injected yet: lab break --random');
  return h[h.length - 1];
}

export const EXERCISES: Exercise[] = [
  ex01, ex02, ex03, ex04, ex05,
  ex06, ex07,
  ex08, ex09,
];

export const exerciseFile = (e: Exercise): string => `lab/${e.id}-${e.slug}.md`;
