// `npm run bench [-- --json] [-- --quick]`: lab up/down wall time, data-path latency,
// throughput, concurrency and memory, each next to its no-mesh baseline from the same run;
// what a waypoint adds per request against the same lab's Service without one; the memory of
// the three-node and bookinfo labs at rest; a target
// table; results in bench/results/<date>-<host>.json. Labs are named bench-* and are always
// brought down, also on error and Ctrl-C.
import { parseArgs } from 'node:util';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO, downAllSync, activeLabs, benchLabName } from './lab-cli.js';
import { scaleTopologyYaml } from './scale-topology.js';
import { measureLifecycle, type LifecycleCase, type LifecycleFigures } from './lifecycle.js';
import { measureDatapath, type DatapathOptions } from './datapath.js';
import { measureWaypoint } from './waypoint.js';
import { waypointTopologyYaml } from './waypoint-topology.js';
import { runFootprint, FOOTPRINT_PART } from './footprint.js';
import { runCompareSections, COMPARE_PARTS } from './compare-main.js';
import { machineFacts } from './machine.js';
import { computeGrowth } from './growth.js';
import { evaluateTargets } from './targets.js';
import { renderReport } from './format.js';
import type { BenchReport } from './report.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    json: { type: 'boolean' },
    quick: { type: 'boolean' },
    skip: { type: 'string', multiple: true },
    only: { type: 'string', multiple: true },
    'results-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(`usage: npm run bench -- [--quick] [--json] [--skip lifecycle|scale|datapath|waypoint|footprint|compare|load|hops|mesh]... [--only PART]... [--results-dir DIR]
  --quick         fewer runs and smaller scale labs (about 90 s)
  --json          print the result as JSON instead of tables (progress stays on stderr)
  --skip WHAT     leave out a part: lifecycle (all lab up/down figures), scale (the NxM labs),
                  datapath (latency, throughput, memory), waypoint (what a waypoint adds),
                  footprint (RSS of the three-node and bookinfo labs at rest),
                  compare (none / ambient / waypoint / sidecar modes side by side),
                  load (1,000 connections and 10,000 short requests through the proxies),
                  hops (a new connection's time per hop, from lab trace),
                  mesh (baseline only; also skips the waypoint, footprint, compare, load and hops)
  --only PART     run only these parts (the others are skipped)
  results go to bench/results/<date>-<host>[-quick].json (see bench/README.md)
  AMBIENT_LAB_BENCH_TAG=T  appends -T to every lab the bench brings up (bench-dp-mesh-T), so
                  two runs on one machine never bring up or take down each other's labs
`);
  process.exit(0);
}
if (process.getuid?.() !== 0) {
  process.stderr.write('bench: run as root (it brings labs up): sudo npm run bench\n');
  process.exit(2);
}

const quick = !!values.quick;
const PARTS = ['lifecycle', 'scale', 'datapath', 'waypoint', FOOTPRINT_PART, ...COMPARE_PARTS, 'mesh'];
const skip = new Set(values.skip ?? []);
// --only A: every section but A is skipped (mesh is not a section: it stays on).
if (values.only?.length) for (const p of PARTS) if (p !== 'mesh' && !values.only.includes(p) && !(p === 'lifecycle' && values.only.includes('scale'))) skip.add(p);
const unknownPart = [...skip, ...(values.only ?? [])].find((p) => !PARTS.includes(p));
if (unknownPart !== undefined) {
  process.stderr.write(`bench: --skip/--only ${unknownPart}: expected one of ${PARTS.join(', ')}\n`);
  process.exit(2);
}
const log = (m: string) => process.stderr.write(`${m}\n`);

const datapathOptions: DatapathOptions = quick
  ? { latencyRequests: 100, latencyRuns: 2, bulkBytes: 2 ** 30, bulkMaxSeconds: 4, bulkRuns: 2, connections: 50, concurrentSeconds: 2 }
  : { latencyRequests: 200, latencyRuns: 3, bulkBytes: 2 ** 30, bulkMaxSeconds: 8, bulkRuns: 3, connections: 50, concurrentSeconds: 3 };

// Twice the nodes at the same pods per node (10x10 -> 20x10) shows linearity; the same nodes
// with half the pods (10x5) separates what a pod costs from what a node costs.
const scaleSizes: Array<[number, number, number]> = quick ? [[5, 5, 1], [5, 10, 1], [10, 10, 1]] : [[10, 5, 1], [10, 10, 2], [20, 10, 1]];
const demoReps = quick ? 3 : 5;

let interrupted = false;
const onSignal = (sig: NodeJS.Signals) => {
  if (interrupted) return;
  interrupted = true;
  log(`\nbench: ${sig}: removing ${activeLabs().join(', ') || 'no labs'}...`);
  const removed = downAllSync();
  log(`bench: removed ${removed.length} lab(s)`);
  process.exit(130);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const tmp = mkdtempSync(join(tmpdir(), 'ambient-lab-bench-'));
const started = performance.now();
const loadAtStart = Math.round(loadavg()[0] * 100) / 100;
try {
  const cases: LifecycleCase[] = [];
  if (!skip.has('lifecycle')) {
    cases.push({ label: 'demo', file: resolve(REPO, 'topologies/demo.yaml'), nodes: 2, reps: demoReps, exec: { target: 'sleep', reps: quick ? 3 : 5 } });
    cases.push({ label: 'three-node', file: resolve(REPO, 'topologies/three-nodes.yaml'), nodes: 3, reps: demoReps });
    if (!skip.has('scale')) {
      for (const [n, p, reps] of scaleSizes) {
        const file = join(tmp, `scale-${n}x${p}.yaml`);
        writeFileSync(file, scaleTopologyYaml(n, p));
        cases.push({ label: `${n}x${p}`, file, nodes: n, reps });
      }
    }
  }
  const lifecycle: LifecycleFigures[] = [];
  for (const c of cases) {
    log(`lab up/down: ${c.label} x${c.reps} (no mesh${skip.has('mesh') ? '' : ', then mesh'})`);
    lifecycle.push(await measureLifecycle(c, benchLabName(`bench-${c.label}`), !skip.has('mesh'), log));
  }

  const datapath: BenchReport['datapath'] = {};
  if (!skip.has('datapath')) {
    const file = resolve(REPO, 'bench/topologies/datapath.yaml');
    datapath.baseline = await measureDatapath(file, benchLabName('bench-dp-base'), false, datapathOptions, log);
    if (!skip.has('mesh')) {
      try {
        datapath.mesh = await measureDatapath(file, benchLabName('bench-dp-mesh'), true, datapathOptions, log);
      } catch (e) {
        datapath.meshError = (e as Error).message.split('\n').slice(0, 3).join(' ');
        log(`data path with the mesh: ${datapath.meshError}`);
      }
    }
  }

  // A waypoint only exists in the mesh: its baseline is the same lab's Service without one.
  let waypoint: BenchReport['waypoint'];
  let waypointError: string | undefined;
  if (!skip.has('waypoint') && !skip.has('mesh')) {
    const file = join(tmp, 'bench-wp.yaml');
    writeFileSync(file, waypointTopologyYaml());
    try {
      waypoint = await measureWaypoint(file, benchLabName('bench-wp-lab'), datapathOptions, log);
    } catch (e) {
      waypointError = (e as Error).message.split('\n').slice(0, 3).join(' ');
      log(`waypoint: ${waypointError}`);
    }
  }

  const footprint = await runFootprint(skip, tmp, log);
  const sections = await runCompareSections(skip, quick, datapathOptions, tmp, log);

  const growth = computeGrowth(lifecycle);
  const report: BenchReport = {
    version: 1,
    date: new Date().toISOString(),
    quick,
    machine: machineFacts(loadAtStart, datapath.mesh?.tunnel ?? waypoint?.tunnel ?? sections.compare?.tunnel ?? sections.load?.tunnel ?? sections.hops?.tunnel),
    options: { datapath: datapathOptions, lifecycleReps: Object.fromEntries(cases.map((c) => [c.label, c.reps])) },
    lifecycle,
    growth,
    datapath,
    ...(waypoint ? { waypoint } : {}),
    ...(waypointError ? { waypointError } : {}),
    ...footprint,
    ...sections,
    targets: [],
    durationS: (performance.now() - started) / 1000,
  };
  report.targets = evaluateTargets(report);

  const dir = values['results-dir'] ?? resolve(REPO, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${report.date.slice(0, 10)}-${report.machine.host}${quick ? '-quick' : ''}.json`);
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else process.stdout.write(renderReport(report) + `\n\nresults: ${out}\n`);
} catch (e) {
  log(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  // Anything an exception skipped past is still ours to remove.
  const left = downAllSync(0);
  if (left.length) log(`bench: removed leftover lab(s) ${left.join(', ')}`);
  rmSync(tmp, { recursive: true, force: true });
}
