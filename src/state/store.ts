// The lab's state directory: what `lab up` created (written before it creates it,
// so an interrupted `up` still tells `down` what to remove), process PIDs, logs.
import { mkdirSync, readFileSync, writeFileSync, renameSync, rmSync, existsSync, readdirSync, lstatSync, rmdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { insideDir } from '../util/inside-dir.js';

export const stateRoot = (): string => resolve(process.env.AMBIENT_LAB_STATE_DIR ?? '/run/ambient-lab');
/** The lab's own directory: a direct child of the state root, whatever `lab` holds. */
export function labStateDir(lab: string): string {
  const dir = insideDir(stateRoot(), lab);
  if (dirname(dir) !== stateRoot()) throw new Error(`lab name ${JSON.stringify(lab)} does not name a directory directly under ${stateRoot()}`);
  return dir;
}
/** A file under the lab's state directory (logs/<pod>.log, ready/<id>), never outside it. */
export const labStateFile = (lab: string, ...parts: string[]): string => insideDir(labStateDir(lab), ...parts);

/** state.json is the owner mark: a directory without it was not made by `lab up`. */
const STATE_FILE = 'state.json';

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
  const file = join(labStateDir(lab), STATE_FILE);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export function writeState(s: LabState): void {
  const dir = labStateDir(s.lab);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.state.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(s, null, 2));
  renameSync(tmp, join(dir, STATE_FILE));
}

export function listStateLabs(): string[] {
  try {
    return readdirSync(stateRoot()).filter((d) => existsSync(join(stateRoot(), d, STATE_FILE)));
  } catch {
    return [];
  }
}

/**
 * Deletes the lab's state directory, the only recursive delete the lab does, so it checks
 * what it is about to delete: a real directory (not a symlink) directly under the state root
 * that holds state.json. Anything else is left alone; an empty directory is removed.
 * Returns whether the directory is gone.
 */
export function removeStateDir(lab: string): boolean {
  const dir = labStateDir(lab);
  let st;
  try { st = lstatSync(dir); } catch { return true; }
  if (!st.isDirectory()) return false;
  let mark;
  try { mark = lstatSync(join(dir, STATE_FILE)); } catch { mark = undefined; }
  if (!mark?.isFile()) {
    try { rmdirSync(dir); return true; } catch { return false; }
  }
  rmSync(dir, { recursive: true, force: true });
  return true;
}
