// When the HBONE pool releases a session that carries no stream (ztunnel's
// pool_unused_release_timeout: 5 min in ztunnel, 60 s in the lab). A burst of N concurrent
// connections to one peer opens N/100 sessions (100 streams each, POOL_MAX_STREAMS); once it is
// over, every one of them would wait out the full timeout, each holding a socket here and one
// at the peer (1,000 connections through a waypoint: 10 sessions from the client's ztunnel to
// the waypoint, idle for a minute). Only the oldest live session of a key is the one new
// streams go to first (the pool picks in order), so that one keeps the full timeout and stays
// warm for the next connection; an idle session behind it is surplus and released after
// SURPLUS_IDLE_MS. ztunnel has no such rule: its pool keeps every idle connection 5 min.

/** How long an idle surplus session is kept (a burst that comes back within it reuses it). */
export const SURPLUS_IDLE_MS = 5_000;

/**
 * The delay before `session`, just idle, is released. `sessionsOfKey`: the pool's sessions for
 * its key, oldest first (the order new streams try them in).
 */
export function idleDelay<S extends { dead: boolean }>(session: S, sessionsOfKey: readonly S[], idleTimeoutMs: number, surplusIdleMs = SURPLUS_IDLE_MS): number {
  const i = sessionsOfKey.indexOf(session);
  const behindAnother = i > 0 && sessionsOfKey.slice(0, i).some((s) => !s.dead);
  return behindAnother ? Math.min(surplusIdleMs, idleTimeoutMs) : idleTimeoutMs;
}
