// The mesh's well-known ports, defined once (reference §3.1 for ztunnel, §4 for the sidecar).
// A proxy, a rule generator or the trace code that needs one imports it from here, so a
// TPROXY rule and the listener it feeds can never disagree.

/** HBONE: mTLS HTTP/2 CONNECT, terminated by ztunnel, a waypoint or a sidecar. */
export const HBONE_PORT = 15008;
/** Outbound capture: ztunnel's TPROXY target from pistioout, Envoy's outbound listener. */
export const OUTBOUND_CAPTURE_PORT = 15001;
/** Inbound plaintext: ztunnel's passthrough from pistioin, Envoy's inbound listener. */
export const INBOUND_PLAINTEXT_PORT = 15006;
/** Admin (config_dump), on 127.0.0.1 only. */
export const ADMIN_PORT = 15000;
/** Merged Prometheus stats (istio-agent / ztunnel /metrics). */
export const STATS_PORT = 15020;
/** Readiness (/healthz/ready). */
export const READINESS_PORT = 15021;
/** DNS proxy (ztunnel 1.19+ and istio-agent with DNS capture), UDP and TCP. */
export const DNS_CAPTURE_PORT = 15053;
/** Envoy's own Prometheus endpoint in a sidecar. */
export const ENVOY_PROMETHEUS_PORT = 15090;
