// The userspace Geneve daemon's `--end` arguments: what the planner writes parses back to the
// same ends, and a bad argument is refused with a message naming what was wrong.
import t from 'tap';
import { formatEndSpec, parseEndSpec, checkEnds, type GeneveEndSpec } from '../../src/ambient/geneve-config.js';

const nodeEnd: GeneveEndSpec = { local: '10.244.0.1', remote: '10.244.0.2', taps: [{ name: 'istioin', vni: 1000 }, { name: 'istioout', vni: 1001 }] };
const podEnd: GeneveEndSpec = {
  netns: 'al-demo-default-ztunnel-node-a', local: '10.244.0.2', remote: '10.244.0.1',
  taps: [{ name: 'pistioin', vni: 1000 }, { name: 'pistioout', vni: 1001 }],
};

t.test('format and parse round-trip both ends of a node', async (t) => {
  t.equal(formatEndSpec(nodeEnd), 'local=10.244.0.1,remote=10.244.0.2,tap=istioin:1000,tap=istioout:1001');
  t.equal(formatEndSpec(podEnd), 'netns=al-demo-default-ztunnel-node-a,local=10.244.0.2,remote=10.244.0.1,tap=pistioin:1000,tap=pistioout:1001');
  t.same(parseEndSpec(formatEndSpec(nodeEnd)), nodeEnd);
  t.same(parseEndSpec(formatEndSpec(podEnd)), podEnd);
  t.same(parseEndSpec('tap=istioin:1000,remote=10.0.0.2,local=10.0.0.1').taps, [{ name: 'istioin', vni: 1000 }], 'keys in any order');
  t.doesNotThrow(() => checkEnds([nodeEnd, podEnd]), 'the lab\'s two ends are accepted together');
});

t.test('bad --end arguments name the problem', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['local=10.0.0.1,tap=istioin:1000', /remote is missing/],
    ['remote=10.0.0.1,tap=istioin:1000', /local is missing/],
    ['local=10.0.0.1,remote=10.0.0.2', /no tap/],
    ['local=10.0.0.300,remote=10.0.0.2,tap=a:1', /local "10\.0\.0\.300" is not an IPv4 address/],
    ['local=10.0.0.1,local=10.0.0.3,remote=10.0.0.2,tap=a:1', /local given twice/],
    ['local=10.0.0.1,remote=10.0.0.2,tap=istioin', /bad --tap "istioin": expected <ifname>:<vni>/],
    ['local=10.0.0.1,remote=10.0.0.2,tap=a:16777216', /VNI must be 0\.\.16777215/],
    ['netns=../etc,local=10.0.0.1,remote=10.0.0.2,tap=a:1', /netns "\.\.\/etc" is not a namespace name/],
    ['netns=..,local=10.0.0.1,remote=10.0.0.2,tap=a:1', /netns "\.\." is not a namespace name/],
    ['local=10.0.0.1,remote=10.0.0.2,tap=a:1,vni=3', /unknown key "vni"/],
  ];
  for (const [spec, msg] of cases) {
    t.throws(() => parseEndSpec(spec), { message: msg }, spec);
    t.throws(() => parseEndSpec(spec), { message: /expected \[netns=NAME,\]local=IP,remote=IP,tap=IFNAME:VNI/ }, `${spec}: says what is expected`);
  }
});

t.test('checkEnds refuses what the kernel would refuse', async (t) => {
  t.throws(() => checkEnds([]), { message: 'no --end given' });
  t.throws(() => checkEnds([nodeEnd, { ...nodeEnd, local: '10.244.0.9' }]), { message: 'TAP istioin given twice in (own netns)' });
  t.throws(() => checkEnds([nodeEnd, { ...podEnd, netns: undefined, local: '10.244.0.1' }]), { message: 'two ends bind 10.244.0.1 in (own netns)' });
  t.throws(() => checkEnds([{ ...nodeEnd, taps: [{ name: 'a', vni: 7 }, { name: 'b', vni: 7 }] }]), { message: /VNI 7 given twice/ });
  t.doesNotThrow(() => checkEnds([podEnd, { ...podEnd, netns: 'other' }]), 'the same TAP names in two namespaces are two devices');
});
