// What `lab trace` produces, shared by the renderers (table, JSON, SVG/HTML).
import type { Hop, PathGroup, PlacedDecision, TraceLeg } from './hops.js';
import type { MovedRule } from './reasons.js';
import type { RequestOutcome } from './request.js';

export interface ReportHop extends Omit<Hop, 'ts' | 'route'> {
  /** iptables rules of this hop's interface whose counters moved, with how many packets. */
  rules?: string[];
}

export interface ReportPath extends Omit<PathGroup, 'hops'> {
  hops: ReportHop[];
}

export interface TraceReport {
  lab: string;
  source: { pod: string; ip: string; netns: string };
  target: string;
  request: RequestOutcome;
  /** The x-request-id the trace's request carried (labs with a waypoint). */
  requestId?: string;
  startedAt: string;
  legs: TraceLeg[];
  /** What each waypoint on the path decided: request line, route rule, backend and weight, upstream, status. */
  decisions: PlacedDecision[];
  hops: ReportHop[];
  later: ReportPath[];
  other: TraceLeg[];
  /** Every rule counter that moved, per namespace. */
  counters: { netns: string; where: string; rules: MovedRule[] }[];
  files?: { dir: string; merged?: string; keyLog?: string; perHop: string[] };
  notes: string[];
}
