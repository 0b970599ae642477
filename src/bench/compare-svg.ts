// Regenerates bench/compare.svg from a result file of a run with the comparison section:
//   node dist/bench/compare-svg.js bench/results/<run>.json [bench/compare.svg] [--placement same-node]
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { REPO } from './lab-cli.js';
import { compareChart } from './compare-format.js';
import { groupedBarsSvg } from './svg-chart.js';
import type { BenchReport } from './report.js';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { placement: { type: 'string' } } });
const [input, output = resolve(REPO, 'bench/compare.svg')] = positionals;
if (!input) {
  process.stderr.write('usage: node dist/bench/compare-svg.js RESULT.json [OUT.svg] [--placement cross-node|same-node]\n');
  process.exit(2);
}
const report = JSON.parse(readFileSync(input, 'utf8')) as BenchReport;
if (!report.compare) {
  process.stderr.write(`${input}: no comparison section (run the bench with --only compare)\n`);
  process.exit(2);
}
const m = report.machine;
const subtitle = `${report.date.slice(0, 10)}, ${m.cores} cores, Geneve ${m.geneve ?? 'n/a'}, load average ${m.loadAvg.start} -> ${m.loadAvg.end}; taller = more (for the stream: faster)`;
writeFileSync(output, groupedBarsSvg(compareChart(report.compare, values.placement ?? 'cross-node', subtitle)));
process.stdout.write(`${output}\n`);
