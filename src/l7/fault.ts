// The fault filter's per-route decision (waypoint-and-sidecar.md §2): a delay held before
// going upstream (flag DI), then an abort answered locally (flag FI, body `fault filter
// abort`). Each is drawn with its own percentage; 0 or absent never fires.
import type { FaultPolicy } from './model.js';
import type { RandomSource } from './backends.js';

export const FAULT_ABORT_BODY = 'fault filter abort';

export interface FaultDecision {
  delayMs?: number;
  abortStatus?: number;
}

/** Envoy draws a number in [0, 1 000 000) against percentage * 10 000 (FractionalPercent per million). */
export function fires(percentage: number, random: RandomSource): boolean {
  if (!(percentage > 0)) return false;
  return Math.floor(random() * 1_000_000) < Math.round(percentage * 10_000);
}

/** Decide both at once; the engine applies the delay first, then the abort (Envoy decides the abort when the delay timer fires; the draw is independent either way). */
export function faultDecision(fault: FaultPolicy | undefined, random: RandomSource): FaultDecision {
  const d: FaultDecision = {};
  if (!fault) return d;
  if (fault.delay && fault.delay.fixedDelayMs > 0 && fires(fault.delay.percentage, random)) d.delayMs = fault.delay.fixedDelayMs;
  if (fault.abort && fires(fault.abort.percentage, random)) d.abortStatus = fault.abort.httpStatus;
  return d;
}
