// The cluster DNS data model and answer rules, without sockets.
import t from 'tap';
import { buildDnsRecords, parseDnsConfig } from '../../src/apps/dns-records.js';
import { answerQuestion, RCODE_NOERROR, RCODE_NXDOMAIN, RR_A, RR_SOA } from '../../src/apps/dns-answer.js';

const services = [
  { name: 'httpbin', namespace: 'default', vip: '10.96.0.11' },
  { name: 'echo', namespace: 'team-b', vip: '10.96.0.12' },
  { name: 'HTTPBIN', namespace: 'default', vip: '10.96.0.11' },
];

t.test('buildDnsRecords names Services like kube-dns', async (t) => {
  t.same(buildDnsRecords(services), {
    domain: 'cluster.local',
    records: {
      'echo.team-b.svc.cluster.local': ['10.96.0.12'],
      'httpbin.default.svc.cluster.local': ['10.96.0.11'],
    },
  });
  t.same(buildDnsRecords([services[0]], 'Lab.Example.').records, { 'httpbin.default.svc.lab.example': ['10.96.0.11'] });
  t.same(buildDnsRecords([]), { domain: 'cluster.local', records: {} });
  // The lab writes this object as the server's config file; the server must accept it back.
  const cfg = buildDnsRecords(services);
  t.same(parseDnsConfig(JSON.parse(JSON.stringify(cfg))), cfg, 'round-trips through the config parser');
});

t.test('parseDnsConfig', async (t) => {
  t.same(parseDnsConfig({ records: { 'A.Default.svc.cluster.local.': ['10.96.0.1'] } }), {
    domain: 'cluster.local',
    records: { 'a.default.svc.cluster.local': ['10.96.0.1'] },
  }, 'defaults the domain, normalizes names');
  t.throws(() => parseDnsConfig([]), /expected a JSON object/);
  t.throws(() => parseDnsConfig({ domain: 3 }), /"domain" must be/);
  t.throws(() => parseDnsConfig({ records: [] }), /"records" must be/);
  t.throws(() => parseDnsConfig({ records: { x: ['::1'] } }, 'dns.json'), /^dns.json: records\["x"\] must be a list of IPv4/);
  t.throws(() => parseDnsConfig({ records: { x: ['10.0.0.300'] } }), /IPv4/);
});

t.test('answerQuestion', async (t) => {
  const cfg = buildDnsRecords([...services, { name: 'multi', namespace: 'default', vip: '10.96.0.20' }, { name: 'multi', namespace: 'default', vip: '10.96.0.21' }]);
  const a = answerQuestion(cfg, 'HTTPBIN.default.svc.cluster.local.', RR_A, 42);
  t.same(a, { rcode: RCODE_NOERROR, authoritative: true, answers: [{ type: RR_A, ttl: 5, address: '10.96.0.11' }], authority: [] });
  t.same(answerQuestion(cfg, 'multi.default.svc.cluster.local', RR_A).answers.map((r) => r.address), ['10.96.0.20', '10.96.0.21']);

  const aaaa = answerQuestion(cfg, 'httpbin.default.svc.cluster.local', 28, 42);
  t.equal(aaaa.rcode, RCODE_NOERROR, 'AAAA of a known name: NOERROR');
  t.same(aaaa.answers, [], '... with no answers (NODATA)');
  t.match(aaaa.authority, [{ type: RR_SOA, name: 'cluster.local', primary: 'ns.dns.cluster.local', serial: 42, minimum: 5 }]);

  const nx = answerQuestion(cfg, 'nope.default.svc.cluster.local', RR_A);
  t.equal(nx.rcode, RCODE_NXDOMAIN);
  t.equal(nx.authority.length, 1, 'NXDOMAIN in the zone carries its SOA');
  // ndots:5 makes glibc try the search list first: these must fail fast, not time out.
  t.equal(answerQuestion(cfg, 'httpbin.default.svc.cluster.local.default.svc.cluster.local', RR_A).rcode, RCODE_NXDOMAIN);
  const out = answerQuestion(cfg, 'example.com', RR_A);
  t.same(out, { rcode: RCODE_NXDOMAIN, authoritative: false, answers: [], authority: [] }, 'no upstream: other names do not exist');
});
