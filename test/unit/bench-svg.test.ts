// bench/compare.svg's generator: the structure of the chart (one panel per figure, one bar per
// series, bars scaled within their panel, n/a for a missing value, escaped text).
import t from 'tap';
import { groupedBarsSvg, PALETTE } from '../../src/bench/svg-chart.js';
import { compareChart } from '../../src/bench/compare-format.js';
import { figures } from './bench-compare-fixture.js';

const bars = (svg: string) => [...svg.matchAll(/<rect class="bar" x="([\d.]+)" y="([\d.]+)" width="(\d+)" height="([\d.]+)" fill="([^"]+)"><title>([^<]*)<\/title>/g)]
  .map((m) => ({ x: Number(m[1]), y: Number(m[2]), h: Number(m[4]), fill: m[5], title: m[6] }));

t.test('one panel per figure, one bar per series, each panel on its own scale', (t) => {
  const svg = groupedBarsSvg({ title: 'A < B & C', series: ['none', 'ambient', 'sidecar'], panels: [
    { title: 'p50 (ms)', values: [1, 2, 4] },
    { title: 'Mbit/s', values: [9000, NaN, 3000], format: (v) => `${v / 1000} G` },
  ] });
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/);
  t.ok(svg.trimEnd().endsWith('</svg>'));
  t.equal((svg.match(/<g class="panel">/g) ?? []).length, 2, 'two panels');
  t.equal((svg.match(/<g class="panel">/g) ?? []).length, (svg.match(/<\/g>/g) ?? []).length, 'groups closed');
  t.match(svg, 'A &lt; B &amp; C', 'text is escaped');
  const b = bars(svg);
  t.equal(b.length, 5, 'a bar per finite value');
  t.same(b.map((x) => x.fill), [PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[0], PALETTE[2]], 'a series keeps its colour in every panel');
  t.equal(b[2].h, 160, 'the largest value of a panel fills its height');
  t.equal(b[0].h, 40, 'the others in proportion');
  t.equal(b[3].h, 160, 'the second panel has its own scale');
  t.equal(b[4].h, 53.3);
  t.equal(b[3].title, 'none: 9 G', 'the panel formats its values');
  t.match(svg, />n\/a</, 'a missing value says n/a');
  t.same(b.map((x) => x.y + x.h), [224, 224, 224, 224, 224], 'bars stand on one baseline');
  for (const s of ['none', 'ambient', 'sidecar']) t.match(svg, `>${s}</text>`, `legend names ${s}`);
  t.end();
});

t.test('the comparison chart: p50 latencies, one stream, CPU and memory per mode', (t) => {
  const c = compareChart(figures, 'cross-node', 'subtitle here');
  t.same(c.series, ['none', 'ambient', 'ambient + waypoint', 'sidecar (HBONE)', 'sidecar (Istio mTLS)']);
  t.same(c.panels.map((p) => p.title), ['new conn p50 (ms)', 'kept alive p50 (ms)', 'one stream (Mbit/s)', 'CPU s / 1k req', 'proxy MB / pod']);
  t.same(c.panels[0].values, [0.6, 2.2, 2.9, 3.1, 2.8]);
  t.same(c.panels[4].values, [0, 70_000 / 1024, 105_000 / 1024, 52_000 / 1024, 52_000 / 1024]);
  const svg = groupedBarsSvg(c);
  t.equal(bars(svg).length, 25, 'five modes x five figures');
  t.match(svg, 'subtitle here');
  t.same(compareChart(figures, 'same-node').series, [], 'no rows for a placement that was not measured');
  t.end();
});
