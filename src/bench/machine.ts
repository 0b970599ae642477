// The machine facts a result file carries, so figures from different hosts are not compared blindly.
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';

export interface MachineFacts {
  host: string;
  kernel: string;
  cpuModel: string;
  cores: number;
  memoryMiB: number;
  node: string;
  /** kernel | userspace, from `lab status` of the mesh lab; undefined without a mesh. */
  geneve?: string;
  /** 1-minute load average when the run started and ended: other work on the host skews figures. */
  loadAvg: { start: number; end: number };
}

function cpuModel(): string {
  const fromOs = cpus()[0]?.model?.trim();
  if (fromOs) return fromOs;
  try {
    return /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function machineFacts(loadAtStart: number, geneve?: string): MachineFacts {
  return {
    host: hostname(), kernel: release(), cpuModel: cpuModel(), cores: cpus().length,
    memoryMiB: Math.round(totalmem() / 2 ** 20), node: process.version, geneve,
    loadAvg: { start: loadAtStart, end: Math.round(loadavg()[0] * 100) / 100 },
  };
}
