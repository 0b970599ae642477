// The shape of one bench run, as written to bench/results/<date>-<host>.json and as
// rendered to the terminal.
import type { MachineFacts } from './machine.js';
import type { LifecycleFigures } from './lifecycle.js';
import type { LabFigures } from './datapath.js';
import type { DatapathOptions } from './datapath.js';
import type { WaypointFigures } from './waypoint.js';
import type { FootprintSection } from './footprint.js';
import type { CompareFigures } from './compare.js';
import type { LoadFigures } from './load-1k.js';
import type { HopFigures } from './compare-hops.js';

export interface Growth {
  variant: 'no-mesh' | 'mesh';
  /** From the `lab up` wall-time medians of every lifecycle case. */
  baseMs: number;
  perNodeMs: number;
  perPodMs: number;
  /** 20x10 (or the largest case) over the case half its size: 2.0 is linear. */
  doublingRatio?: number;
}

/** The footprint section (`footprint`, `footprintError`): absent when skipped (--skip footprint or --skip mesh). */
export interface BenchReport extends FootprintSection {
  version: 1;
  date: string;
  quick: boolean;
  machine: MachineFacts;
  options: { datapath: DatapathOptions; lifecycleReps: Record<string, number> };
  lifecycle: LifecycleFigures[];
  growth: Growth[];
  datapath: { baseline?: LabFigures; mesh?: LabFigures; meshError?: string; baselineError?: string };
  /** The waypoint section: absent when skipped (--skip waypoint or --skip mesh). */
  waypoint?: WaypointFigures;
  waypointError?: string;
  /** The modes side by side (none, ambient, waypoint, sidecars): absent unless run. */
  compare?: CompareFigures;
  compareError?: string;
  /** 1,000 concurrent connections and 10,000 short requests through the proxies: absent unless run. */
  load?: LoadFigures;
  loadError?: string;
  /** A new connection's time per hop, from `lab trace` capture timestamps: absent unless run. */
  hops?: HopFigures;
  hopsError?: string;
  targets: TargetRow[];
  durationS: number;
}

export interface TargetRow {
  target: string;
  measured: string;
  /** undefined: not measurable in this run (e.g. the mesh did not come up). */
  met?: boolean;
  /** Reported, not a pass/fail criterion yet (a target still to be set). */
  informational?: boolean;
}
