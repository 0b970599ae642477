// `dnsCapture: true` (Istio's ISTIO_META_DNS_CAPTURE): istio-cni DNATs an ambient pod's UDP DNS
// to its node's ztunnel on :15053, which answers for Services; pods outside the mesh still ask
// the cluster DNS directly.
import t from 'tap';
import { lab, curlIn, ruleCounters, counterOf, upJson, podIp } from './helpers.js';

const NAME = 'dnscap';
const node = `al-${NAME}-node-node-a`;
const DNAT = /--dport 53 -j DNAT --to-destination 10\.244\.0\.2:15053/;

t.test('ambient pods\' DNS is answered by ztunnel :15053', async (t) => {
  const up = upJson('test/fixtures/topologies/dns-capture.yaml', NAME);
  t.teardown(() => { lab(['down', NAME]); });
  if (!t.ok(up.ok, `lab up\n${up.stderr}`)) return;

  const c0 = counterOf(ruleCounters(node, 'nat'), DNAT);
  const r = curlIn(NAME, 'sleep', 'http://httpbin:8000/ip');
  t.equal(r.code, 0, `curl by Service name from an ambient pod\n${r.stderr}`);
  t.equal(JSON.parse(r.stdout).origin, podIp(up.summary, 'default/sleep'));
  const c1 = counterOf(ruleCounters(node, 'nat'), DNAT);
  t.ok(c1 > c0, `the DNAT to ztunnel :15053 counted sleep's queries (${c0} -> ${c1})`);

  const dig = lab(['exec', '--lab', NAME, 'sleep', '--', 'getent', 'ahostsv4', 'httpbin.default.svc.cluster.local']);
  t.match(dig.stdout, /^10\.96\.0\.11\s/m, 'the Service name resolves to its ClusterIP');

  const c2 = counterOf(ruleCounters(node, 'nat'), DNAT);
  t.ok(c2 > c1, `getent's query was captured too (${c1} -> ${c2})`);
  const plain = curlIn(NAME, 'plain', 'http://httpbin:8000/ip');
  t.equal(plain.code, 0, `a mode:none pod resolves through cluster DNS\n${plain.stderr}`);
  t.equal(counterOf(ruleCounters(node, 'nat'), DNAT), c2, 'the mode:none pod\'s queries were not captured');
});
