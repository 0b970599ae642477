// The footprint section: what a lab holds in memory when it is up and idle. Two labs, each
// brought up once with the mesh: the three-node ambient lab (topologies/three-nodes.yaml: 3
// ztunnels, 5 pods) and bookinfo with a waypoint and two sidecars (topologies/bookinfo.yaml,
// with reviews' waypoint of topologies/bookinfo/waypoint-reviews.yaml and productpage and
// details switched to sidecar mode, written to the bench's temp dir). For
// every process `lab status --json` lists: VmRSS (what the targets count) and PSS (the node
// binary's pages, which every Node process maps, split between the processes that share them:
// the sum of PSS is what the lab really takes from the machine). Cheap: up, settle, three
// samples, down.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { REPO, labUp, labDown, labStatus, benchLabName } from './lab-cli.js';
import { rssKb } from './procfs.js';
import { fmtMiB } from './format-units.js';
import { table } from '../cli/output.js';

export const FOOTPRINT_PART = 'footprint';

/** The labs of the section, by the label the targets use. */
export const FOOTPRINT_LABS = [
  { label: 'three-node', name: 'bench-fp-3n', file: () => resolve(REPO, 'topologies/three-nodes.yaml') },
  { label: 'bookinfo', name: 'bench-fp-bookinfo', file: (tmp: string) => writeTo(join(tmp, 'bench-fp-bookinfo.yaml'), bookinfoFootprintYaml()) },
] as const;
export type FootprintLabel = (typeof FOOTPRINT_LABS)[number]['label'];

/** Pods of bookinfo that get a sidecar in the footprint lab. */
export const BOOKINFO_SIDECARS = ['productpage', 'details'];

/** topologies/bookinfo.yaml with reviews' waypoint and sidecars for productpage and details. */
export function bookinfoFootprintYaml(): string {
  const topo = parse(readFileSync(resolve(REPO, 'topologies/bookinfo.yaml'), 'utf8'));
  for (const pod of topo.pods) if (BOOKINFO_SIDECARS.includes(pod.app)) pod.mode = 'sidecar';
  const waypoint = parseAllDocuments(readFileSync(resolve(REPO, 'topologies/bookinfo/waypoint-reviews.yaml'), 'utf8')).map((d) => d.toJSON());
  topo.resources = [...(topo.resources ?? []), ...waypoint];
  topo.name = 'bench-fp-bookinfo';
  return stringify(topo);
}

function writeTo(file: string, content: string): string {
  writeFileSync(file, content);
  return file;
}

export interface FootprintProcess {
  id: string;
  role: string;
  node?: string;
  rssKb: number;
  pssKb?: number;
}

export interface FootprintFigures {
  label: FootprintLabel;
  lab: string;
  tunnel?: string;
  nodes: number;
  processes: FootprintProcess[];
  totalRssKb: number;
  totalPssKb: number;
}

/** Pss in KiB from the text of /proc/<pid>/smaps_rollup. */
export function parsePssKb(smapsRollup: string): number | undefined {
  const m = /^Pss:\s+(\d+)\s+kB/m.exec(smapsRollup);
  return m ? Number(m[1]) : undefined;
}

function pssKb(pid: number): number | undefined {
  try {
    return parsePssKb(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  } catch {
    return undefined;
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Brings `file` up as `name`, samples every process's memory at rest, brings it down. */
export async function measureFootprint(label: FootprintLabel, file: string, name: string, log: (m: string) => void): Promise<FootprintFigures> {
  log(`footprint: lab up ${name} (${file})`);
  await labUp(file, name, true);
  try {
    const status = await labStatus(name);
    const procs = status.processes.filter((p) => p.alive);
    // `lab up` returned: every process wrote its ready file. Let start-up garbage be collected.
    await sleep(1000);
    const samples = new Map<number, { rss: number[]; pss: number[] }>(procs.map((p) => [p.pid, { rss: [], pss: [] }]));
    for (let i = 0; i < 3; i++) {
      if (i) await sleep(500);
      for (const p of procs) {
        const s = samples.get(p.pid)!;
        const r = rssKb(p.pid);
        const q = pssKb(p.pid);
        if (r !== undefined) s.rss.push(r);
        if (q !== undefined) s.pss.push(q);
      }
    }
    const processes: FootprintProcess[] = procs
      .filter((p) => samples.get(p.pid)!.rss.length)
      .map((p) => {
        const s = samples.get(p.pid)!;
        return { id: p.id, role: p.role, node: p.node, rssKb: median(s.rss), ...(s.pss.length ? { pssKb: median(s.pss) } : {}) };
      });
    const nodes = new Set(processes.map((p) => p.node).filter(Boolean)).size;
    return {
      label, lab: name, tunnel: status.tunnel, nodes, processes,
      totalRssKb: processes.reduce((a, p) => a + p.rssKb, 0),
      totalPssKb: processes.reduce((a, p) => a + (p.pssKb ?? 0), 0),
    };
  } finally {
    log(`footprint: lab down ${name}`);
    await labDown(name);
  }
}

export interface FootprintSection {
  footprint?: FootprintFigures[];
  footprintError?: string;
}

/** `tmp`: where the generated bookinfo topology is written. */
export async function runFootprint(skip: Set<string>, tmp: string, log: (m: string) => void): Promise<FootprintSection> {
  if (skip.has(FOOTPRINT_PART) || skip.has('mesh')) return {};
  const out: FootprintFigures[] = [];
  try {
    for (const l of FOOTPRINT_LABS) out.push(await measureFootprint(l.label, l.file(tmp), benchLabName(l.name), log));
    return { footprint: out };
  } catch (e) {
    const footprintError = (e as Error).message.split('\n').slice(0, 3).join(' ');
    log(`footprint: ${footprintError}`);
    return { footprint: out, footprintError };
  }
}

/** Per lab: each kind of process (count, largest, sum), then the totals. */
export function renderFootprint(figs: FootprintFigures[] | undefined, error?: string): string {
  const rows: string[][] = [];
  for (const f of figs ?? []) {
    const roles = [...new Set(f.processes.map((p) => p.role))];
    for (const role of roles) {
      const ps = f.processes.filter((p) => p.role === role);
      const sum = (k: 'rssKb' | 'pssKb') => ps.reduce((a, p) => a + (p[k] ?? 0), 0);
      rows.push([f.label, `${role} x${ps.length}`, fmtMiB(Math.max(...ps.map((p) => p.rssKb))), fmtMiB(sum('rssKb')), fmtMiB(sum('pssKb'))]);
    }
    rows.push([f.label, `all ${f.processes.length} processes (${f.nodes} nodes, Geneve ${f.tunnel ?? 'n/a'})`, '', fmtMiB(f.totalRssKb), fmtMiB(f.totalPssKb)]);
  }
  return [table(['lab', 'processes', 'largest RSS', 'RSS', 'PSS'], rows), ...(error ? [`n/a: ${error}`] : [])].join('\n');
}
