// A proxy process (ztunnel, waypoint, sidecar proxy) that starts without waking V8's optimizing
// compiler. Loading its ES modules and pino's CommonJS files runs Node's path helpers
// (normalizeString, getPathFromURLPosix) thousands of times, enough for V8 to compile them with
// TurboFan during start-up; that one compilation maps ~3 MB of the compiler's code and adds its
// zone memory to a process that then sits idle (measured: an idle ztunnel 57.9 -> 54.6 MB
// RSS, a waypoint or sidecar ~3 MB less). So the lab starts proxies with a 16x interrupt budget
// (V8 counts bytecode executed before it considers a function hot) and each proxy puts V8's
// own budget back once it is ready: from then on functions tier up exactly as in a default
// Node, so the data path's throughput is unchanged.
import { setFlagsFromString } from 'node:v8';

/** V8's default --interrupt-budget in Node 20 (V8 11.3): `node --v8-options | grep -A1 interrupt-budget`. */
export const V8_INTERRUPT_BUDGET = 67_584;

/** Node flags of a proxy process, before its script (src/plan/kinds: ztunnel, waypoint, sidecar). */
export const PROXY_NODE_FLAGS: readonly string[] = [`--interrupt-budget=${16 * V8_INTERRUPT_BUDGET}`];

/** Called once the proxy is ready (every listener up): V8 tiers up as usual from here on. */
export function endLeanStart(): void {
  setFlagsFromString(`--interrupt-budget=${V8_INTERRUPT_BUDGET}`);
}
