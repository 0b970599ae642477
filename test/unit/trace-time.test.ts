// `lab trace` prints each hop's capture time and where the time between hops went.
import t from 'tap';
import { renderHopTable } from '../../src/trace/render-table.js';
import type { ReportHop, TraceReport } from '../../src/trace/report.js';

const hop = (index: number, where: string, iface: string, tUs: number): ReportHop => ({
  index, leg: 1, role: 'pod', name: where, where, netns: where, interface: iface, ifname: iface, direction: 'out',
  tUs, proto: 'TCP', src: '10.0.0.1:1', dst: '10.0.0.2:80', length: 60, encap: 'none', what: `seen on ${iface}`, frameIndex: index,
} as unknown as ReportHop);

const report = (hops: ReportHop[]): TraceReport => ({
  lab: 'x', source: { pod: 'default/sleep', ip: '10.0.0.1', netns: 'p' }, target: 'http://h:80/', request: { ok: true, summary: 'HTTP 200', durationMs: 5 },
  startedAt: '', legs: [], decisions: [], hops, later: [], other: [], counters: [], notes: [],
} as unknown as TraceReport);

t.test('each hop shows its time since the first packet and since the hop before', async (t) => {
  const text = renderHopTable(report([hop(1, 'pod sleep', 'eth0', 0), hop(2, 'node a', 'veth', 12), hop(3, 'node a', 'istioout', 4512), hop(4, 'ztunnel a', 'eth0', 4600)]));
  t.match(text, /^ 1 {2}pod sleep .*seen on eth0 +0\.000$/m, 'the first hop is the time origin');
  t.match(text, /^ 3 {2}node a .*seen on istioout +4\.512 \+4\.500$/m, 'hop 3: 4.512 ms in, 4.5 ms after hop 2');
  t.match(text, /Where the time went, hop 1 to hop 4: 4\.600 ms/);
  const rows = text.split('Where the time went')[1].split('\n').slice(1).filter(Boolean);
  t.match(rows[0], /4\.500 ms +98% +node a$/, 'the gap inside one namespace is that namespace\'s, largest first');
  t.match(rows[1], /0\.088 ms +2% +node a -> ztunnel a$/, 'a gap between namespaces names both');
  t.match(rows[2], /0\.012 ms +0% +pod sleep -> node a$/);
});

t.test('one hop: no breakdown', async (t) => {
  t.notMatch(renderHopTable(report([hop(1, 'pod sleep', 'eth0', 0)])), /Where the time went/);
});
