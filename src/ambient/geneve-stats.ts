// Counters the data-path threads bump and the daemon's main thread reads (shared memory:
// one writer per slot, so plain stores suffice; readers tolerate a slightly stale value).

export const ENCAP_COUNTERS = ['frames', 'bytes', 'sendErrors', 'readErrors'] as const;
export const DECAP_COUNTERS = ['packets', 'bytes', 'unknownVni', 'wrongRemote', 'malformed', 'writeErrors', 'recvErrors'] as const;

export type Counters<K extends readonly string[]> = { [P in K[number]]: number };

export function newCounterBuffer(names: readonly string[]): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * names.length);
}

export function readCounters<K extends readonly string[]>(names: K, sab: SharedArrayBuffer): Counters<K> {
  const a = new Float64Array(sab);
  return Object.fromEntries(names.map((n, i) => [n, a[i]])) as Counters<K>;
}

/** Index of each counter, for hot loops that bump `Float64Array` slots directly. */
export const counterIndex = <K extends readonly string[]>(names: K): Counters<K> =>
  Object.fromEntries(names.map((n, i) => [n, i])) as Counters<K>;
