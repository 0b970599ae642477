// Route header manipulation (VirtualService headers.request/response, HTTPRoute
// RequestHeaderModifier/ResponseHeaderModifier), in Envoy's order: remove first, then set
// (overwrite or add), then add (append). Names are case-insensitive; Node keeps them lower-case.
import type { HeaderOps } from './model.js';

export type HeaderMap = Record<string, string | string[] | undefined>;

/** A new map with the operations applied; the input is left alone. */
export function applyHeaderOps(headers: HeaderMap, ops: HeaderOps | undefined): HeaderMap {
  const out: HeaderMap = { ...headers };
  if (!ops) return out;
  for (const name of ops.remove ?? []) delete out[name.toLowerCase()];
  for (const [name, value] of Object.entries(ops.set ?? {})) out[name.toLowerCase()] = value;
  for (const [name, value] of Object.entries(ops.add ?? {})) {
    const k = name.toLowerCase();
    const cur = out[k];
    out[k] = cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [cur, value];
  }
  return out;
}
