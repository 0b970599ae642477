// A proxy process (ztunnel, waypoint, sidecar proxy) that starts without waking V8's compilers.
// Loading its ES modules and pino's CommonJS files runs Node's path helpers (normalizeString,
// getPathFromURLPosix) thousands of times, enough for V8 to compile them with TurboFan during
// start-up; that one compilation maps ~3 MB of the compiler's code and adds its zone memory to
// a process that then sits idle, and Sparkplug's baseline code for start-up-only functions
// adds ~1 MB more. Measured on an idle ztunnel: 57.9 -> 54.6 MB RSS for the budget, -0.9 MB
// for Sparkplug; a waypoint or sidecar the same. So the lab starts proxies with a 16x
// interrupt budget (V8 counts bytecode executed before it considers a function hot) and
// without Sparkplug, and each proxy puts V8's defaults back once it is ready: from then on
// functions tier up exactly as in a default Node, so the data path's throughput is unchanged
// (A/B in the bench's bulk stream: same CPU-seconds per GiB within the lab-to-lab spread).
import { setFlagsFromString } from 'node:v8';

/** V8's default --interrupt-budget in Node 20 (V8 11.3): `node --v8-options | grep -A1 interrupt-budget`. */
export const V8_INTERRUPT_BUDGET = 67_584;

/** Node flags of a proxy process, before its script (src/plan/kinds: ztunnel, waypoint, sidecar). */
export const PROXY_NODE_FLAGS: readonly string[] = [`--interrupt-budget=${16 * V8_INTERRUPT_BUDGET}`, '--no-sparkplug'];

/** Called once the proxy is ready (every listener up): V8 tiers up as usual from here on (Sparkplug is on by default on x64). */
export function endLeanStart(): void {
  setFlagsFromString(`--interrupt-budget=${V8_INTERRUPT_BUDGET}`);
  setFlagsFromString('--sparkplug');
}
