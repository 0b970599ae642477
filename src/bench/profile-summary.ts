// `node dist/bench/profile-summary.js FILE.cpuprofile [--top N]`: where a V8 CPU profile
// (from `node --cpu-prof`) spent its time, by function and by source file, self time only.
// Used for the profile findings in bench/README.md.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  byFunction: Array<{ name: string; ms: number }>;
  byFile: Array<{ name: string; ms: number }>;
}

const short = (url: string): string => {
  if (!url) return '(native/V8)';
  const m = /\/(node_modules\/[^/]+|dist\/.*|src\/.*)$/.exec(url);
  return m ? m[1] : url.replace(/^file:\/\//, '').replace(/^node:/, 'node:');
};

/** Self time per function and per file; '(idle)' and '(program)' kept, they say a lot. */
export function summarizeProfile(p: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]);
    if (!n) continue;
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const cf = n.callFrame;
    const name = `${cf.functionName || '(anonymous)'} ${short(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    fn.set(name, (fn.get(name) ?? 0) + dt);
    const f = cf.url ? short(cf.url) : cf.functionName.startsWith('(') ? cf.functionName : '(native/V8)';
    file.set(f, (file.get(f) ?? 0) + dt);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, ms]) => ({ name, ms }));
  return { totalMs: (p.endTime - p.startTime) / 1000, byFunction: sorted(fn), byFile: sorted(file) };
}

if (process.argv[1]?.endsWith('profile-summary.js')) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/profile-summary.js FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const topArg = process.argv.indexOf('--top');
  const s = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')), topArg > 0 ? Number(process.argv[topArg + 1]) : 15);
  const pct = (ms: number) => `${((ms / s.totalMs) * 100).toFixed(1).padStart(5)}%`;
  process.stdout.write(`${file}: ${s.totalMs.toFixed(0)} ms profiled\n\nby file (self time):\n`);
  for (const r of s.byFile) process.stdout.write(`  ${pct(r.ms)} ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}\n`);
  process.stdout.write('\nby function (self time):\n');
  for (const r of s.byFunction) process.stdout.write(`  ${pct(r.ms)} ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}\n`);
}
