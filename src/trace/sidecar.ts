// What happens inside a sidecar pod's network namespace, where the app and its proxy live side
// by side: the nat rules istio-cni put there (reference §4) send the app's outbound TCP to the
// proxy's 15001 (OUTPUT -> ISTIO_OUTPUT -> ISTIO_REDIRECT -> REDIRECT), inbound TCP to its 15006
// (PREROUTING -> ISTIO_INBOUND -> ISTIO_IN_REDIRECT -> REDIRECT) except HBONE's 15008, which is
// RETURNed so it reaches the proxy's own listener, and let the proxy's own connections (uid 1337,
// and 127.0.0.6 -> the app on lo) through. Which of them acted is read from the counters that
// moved. Pure: hops and moved rules in, words out.
import type { MovedRule } from './reasons.js';
import { HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT } from '../mesh/ports.js';

/** The sidecar's listeners, as Istio numbers them (defined once, in mesh/ports.ts). */
export const SIDECAR_OUTBOUND_PORT = OUTBOUND_CAPTURE_PORT;
export const SIDECAR_INBOUND_PORT = INBOUND_PLAINTEXT_PORT;
export const SIDECAR_HBONE_PORT = HBONE_PORT;
/** The source address the sidecar's inbound side uses towards the app (Envoy's InboundPassthroughClusterIpv4). */
export const SIDECAR_INBOUND_SOURCE = '127.0.0.6';

const portOf = (ep: string): number => Number(/:(\d+)$/.exec(ep)?.[1] ?? -1);
const ipOf = (ep: string): string => ep.replace(/:\d+$/, '');

/** A proxy-side port of a sidecar: packets to or from it are the sidecar's, not the app's. */
export const isSidecarPort = (port: number): boolean => port === SIDECAR_OUTBOUND_PORT || port === SIDECAR_INBOUND_PORT || port === SIDECAR_HBONE_PORT;

const natIn = (moved: MovedRule[], chain: string, test: (spec: string) => boolean): MovedRule | undefined =>
  moved.find((r) => r.table === 'nat' && r.chain === chain && test(` ${r.spec} `));

const step = (r: MovedRule, what: string): string => `${r.chain} #${r.n} ${what} (+${r.delta})`;

/** The app's connection sent to the sidecar's 15001: the chain of nat rules that did it. */
export function outboundRedirect(moved: MovedRule[], originalDst?: string): string | undefined {
  const redirect = natIn(moved, 'ISTIO_REDIRECT', (s) => / -j REDIRECT /.test(s) && s.includes(`--to-ports ${SIDECAR_OUTBOUND_PORT}`));
  if (!redirect) return undefined;
  const jump = natIn(moved, 'ISTIO_OUTPUT', (s) => / -j ISTIO_REDIRECT /.test(s));
  const out = natIn(moved, 'OUTPUT', (s) => / -j ISTIO_OUTPUT /.test(s));
  const chain = [out ? step(out, '-> ISTIO_OUTPUT') : 'OUTPUT -> ISTIO_OUTPUT', jump ? step(jump, '-> ISTIO_REDIRECT') : undefined, step(redirect, `REDIRECT --to-ports ${SIDECAR_OUTBOUND_PORT}`)].filter(Boolean);
  return `nat ${chain.join(' -> ')}: the app's connection${originalDst ? ` to ${originalDst}` : ''} goes to the sidecar's outbound listener ${SIDECAR_OUTBOUND_PORT}`;
}

/** How a connection arriving at a sidecar pod from outside was taken in: 15008 RETURNed, or REDIRECT to 15006. */
export function inboundCapture(moved: MovedRule[], dst: string, reused = false): string | undefined {
  const pre = natIn(moved, 'PREROUTING', (s) => / -j ISTIO_INBOUND /.test(s));
  const head = pre ? step(pre, '-> ISTIO_INBOUND') : 'PREROUTING -> ISTIO_INBOUND';
  if (portOf(dst) === SIDECAR_HBONE_PORT) {
    const ret = natIn(moved, 'ISTIO_INBOUND', (s) => s.includes(`--dport ${SIDECAR_HBONE_PORT} `) && / -j RETURN /.test(s));
    const listener = `HBONE is not redirected, it reaches the sidecar's own ${SIDECAR_HBONE_PORT} listener`;
    // nat sees only a connection's first packet: a pooled HBONE connection moved nothing now.
    if (!ret && reused) return `a kept-alive connection: nat ISTIO_INBOUND's --dport ${SIDECAR_HBONE_PORT} RETURN let its first packet through before the trace; ${listener}`;
    return `nat ${head} -> ${ret ? step(ret, `--dport ${SIDECAR_HBONE_PORT} RETURN`) : `ISTIO_INBOUND --dport ${SIDECAR_HBONE_PORT} RETURN`}: ${listener}`;
  }
  const redirect = natIn(moved, 'ISTIO_IN_REDIRECT', (s) => / -j REDIRECT /.test(s) && s.includes(`--to-ports ${SIDECAR_INBOUND_PORT}`));
  if (!redirect) return undefined;
  const jump = natIn(moved, 'ISTIO_INBOUND', (s) => / -j ISTIO_IN_REDIRECT /.test(s));
  return `nat ${head} -> ${jump ? step(jump, '-> ISTIO_IN_REDIRECT') : 'ISTIO_IN_REDIRECT'} -> ${step(redirect, `REDIRECT --to-ports ${SIDECAR_INBOUND_PORT}`)}: ${dst} goes to the sidecar's inbound listener ${SIDECAR_INBOUND_PORT}`;
}

/** The sidecar's hand-off to the app on lo, from 127.0.0.6: not captured again. */
export function loopbackToApp(moved: MovedRule[], src: string, reused = false): string {
  const ret = ipOf(src) === SIDECAR_INBOUND_SOURCE ? natIn(moved, 'ISTIO_OUTPUT', (s) => s.includes(`-s ${SIDECAR_INBOUND_SOURCE}/32`) && / -j RETURN /.test(s)) : undefined;
  const why = ret ? `; nat ${step(ret, `-s ${SIDECAR_INBOUND_SOURCE}/32 -o lo RETURN`)}: not captured again`
    // nat sees only a connection's first packet, which a kept-alive connection sent before the trace.
    : reused ? `; a kept-alive connection: nat ISTIO_OUTPUT's -s ${SIDECAR_INBOUND_SOURCE}/32 -o lo RETURN let its first packet through before the trace` : '';
  return `the sidecar hands the request to the app over lo from ${SIDECAR_INBOUND_SOURCE}${why}`;
}

/** The sidecar's own outbound connection (uid 1337) leaves uncaptured. */
export function proxyOwnConnection(moved: MovedRule[], reused = false): string | undefined {
  const ret = natIn(moved, 'ISTIO_OUTPUT', (s) => / --uid-owner 1337 -j RETURN /.test(s) && !/ ! --uid-owner /.test(s) && !/ -o lo /.test(s));
  if (ret) return `nat ${step(ret, '--uid-owner 1337 RETURN')}: the sidecar's own connection is not captured`;
  return reused ? 'a kept-alive connection of the sidecar: nat ISTIO_OUTPUT\'s --uid-owner 1337 RETURN let its first packet through before the trace' : undefined;
}
