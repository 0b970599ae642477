// The lab's state directory: what `lab up` created (written before it creates it,
// so an interrupted `up` still tells `down` what to remove), process PIDs, logs.
import { mkdirSync, readFileSync, writeFileSync, renameSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const stateRoot = (): string => process.env.AMBIENT_LAB_STATE_DIR ?? '/run/ambient-lab';
export const labStateDir = (lab: string): string => join(stateRoot(), lab);

export interface ProcessRecord {
  id: string;
  role: string;
  pid: number;
  netns: string;
  pod?: string;
  node?: string;
  log: string;
  argv: string[];
  startedAt: string;
  /** Times the supervisor restarted it. */
  restarts?: number;
}

export interface LabState {
  lab: string;
  file: string;
  phase: 'creating' | 'up' | 'failed' | 'deleting';
  createdAt: string;
  /** Every netns the lab creates, recorded before creation. */
  netns: string[];
  /** Every file outside the state dir the lab creates (/etc/netns/...). */
  files: string[];
  processes: ProcessRecord[];
  tunnel?: 'kernel' | 'userspace';
  timings?: Record<string, number>;
}

export function readState(lab: string): LabState | undefined {
  try {
    return JSON.parse(readFileSync(join(labStateDir(lab), 'state.json'), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export function writeState(s: LabState): void {
  const dir = labStateDir(s.lab);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.state.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(s, null, 2));
  renameSync(tmp, join(dir, 'state.json'));
}

export function listStateLabs(): string[] {
  try {
    return readdirSync(stateRoot()).filter((d) => existsSync(join(stateRoot(), d, 'state.json')));
  } catch {
    return [];
  }
}

export function removeStateDir(lab: string): void {
  rmSync(labStateDir(lab), { recursive: true, force: true });
}
