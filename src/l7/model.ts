// The lab's own model of L7 mesh configuration: what the Istio and Gateway API objects a user
// writes (src/istio/ parses them) mean once converted, and the only shape the L7 engine
// (src/l7/), the waypoint and the sidecar proxy ever see. Like istiod, the conversion happens
// once, at the boundary; the proxies never read raw YAML.
//
// Names follow Istio/Envoy where a learner would look them up (VirtualService fields, Envoy
// response flags); times are milliseconds, percentages 0-100.

/** Where a piece of config came from, for errors, access logs and `lab trace`: "VirtualService default/reviews http[0]". */
export type ConfigOrigin = string;

export type StringMatchKind = 'Exact' | 'Prefix' | 'RegularExpression';

export interface StringMatcher {
  kind: StringMatchKind;
  value: string;
}

export interface HeaderMatcher extends StringMatcher {
  /** Lower-case header name. */
  name: string;
  /** VirtualService `withoutHeaders`: the rule matches when this does NOT. */
  invert?: boolean;
}

export interface QueryParamMatcher extends StringMatcher {
  name: string;
}

/** One `match` entry: every present field must match (AND). */
export interface HttpMatch {
  /** PathPrefix follows Gateway API semantics (segment-wise: /foo matches /foo and /foo/bar, not /foobar); VirtualService `uri.prefix` is a plain string prefix and uses kind 'Prefix'. */
  path?: StringMatcher | { kind: 'PathPrefix'; value: string };
  method?: string;
  headers?: HeaderMatcher[];
  queryParams?: QueryParamMatcher[];
}

/** A destination: a Service (FQDN) port, optionally narrowed to a DestinationRule subset. */
export interface Backend {
  /** `reviews.default.svc.cluster.local` */
  host: string;
  /** Service port; absent = the port the request came in on. */
  port?: number;
  subset?: string;
  /** Relative weight; entries with weight 0 are dropped at conversion (unless all are 0). */
  weight: number;
}

export interface HeaderOps {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface RetryPolicy {
  /** Retries after the first try (Envoy num_retries). 0 = none. */
  attempts: number;
  perTryTimeoutMs?: number;
  /** Envoy retry_on conditions, e.g. ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes', '5xx', 'gateway-error', 'reset']. */
  retryOn: string[];
  /** With 'retriable-status-codes'. */
  retriableStatusCodes: number[];
}

/** Istio's default when a route has a VS/HTTPRoute but no `retries` (waypoint-and-sidecar.md §3). */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  attempts: 2,
  retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
  retriableStatusCodes: [503],
};

export interface FaultPolicy {
  /** Held before going upstream; response flag DI. */
  delay?: { fixedDelayMs: number; percentage: number };
  /** Local reply `fault filter abort`; response flag FI. */
  abort?: { httpStatus: number; percentage: number };
}

export interface Redirect {
  scheme?: 'http' | 'https';
  hostname?: string;
  port?: number;
  /** Replaces the whole path. */
  path?: string;
  /** Replaces the matched PathPrefix (see Rewrite.prefixPath). */
  prefixPath?: string;
  statusCode: 301 | 302 | 303 | 307 | 308;
}

export interface Rewrite {
  hostname?: string;
  path?: string;
  /**
   * Envoy's prefix_rewrite: replaces the part of the path the rule's path match matched: the
   * PathPrefix/Prefix value, the whole path for Exact, "/" when the match has no path (VirtualService
   * `rewrite.uri`, HTTPRoute ReplacePrefixMatch).
   */
  prefixPath?: string;
}

/** One route rule, evaluated in order; the first whose matches hit wins. */
export interface HttpRouteRule {
  origin: ConfigOrigin;
  /** OR of matches; empty = matches every request. */
  matches: HttpMatch[];
  /** Weighted choice; empty only with `redirect` or `directResponse`. */
  backends: Backend[];
  requestHeaders?: HeaderOps;
  responseHeaders?: HeaderOps;
  redirect?: Redirect;
  rewrite?: Rewrite;
  /** Whole-request timeout incl. retries; absent/0 = none (Istio's default). */
  timeoutMs?: number;
  /** Absent = no retries. */
  retries?: RetryPolicy;
  fault?: FaultPolicy;
  /** E.g. HTTPRoute with every backend weight 0 -> 500. */
  directResponse?: { status: number; body: string };
}

/** The routes of one Service port (Istio: the first VirtualService for the host wins; HTTPRoutes are converted to the same). */
export interface ServiceRoutes {
  /** Service FQDN. */
  host: string;
  /** Absent = every port of the Service. */
  port?: number;
  rules: HttpRouteRule[];
  origin: ConfigOrigin;
}

export type LoadBalancer = 'RANDOM' | 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'PASSTHROUGH';

export interface DestinationPolicy {
  host: string;
  origin: ConfigOrigin;
  loadBalancer?: LoadBalancer;
  subsets: Array<{ name: string; labels: Record<string, string>; loadBalancer?: LoadBalancer }>;
}

/** AuthorizationPolicy, full L7 form (the waypoint's and the sidecar's view). ztunnel keeps using mesh/authz.ts. */
export interface L7Source {
  principals?: string[];
  notPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
}

export interface L7Operation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface L7Condition {
  /** e.g. `request.headers[x-token]`, `source.ip`, `source.namespace`, `source.principal`, `destination.port`. */
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface L7Rule {
  from?: L7Source[];
  to?: L7Operation[];
  when?: L7Condition[];
}

export interface L7AuthorizationPolicy {
  name: string;
  namespace: string;
  origin: ConfigOrigin;
  action: 'ALLOW' | 'DENY';
  /** Who enforces it: a waypoint (by Gateway name), or workloads by labels (sidecars), or the namespace. */
  target: { waypoint: string } | { selector: Record<string, string> } | { namespace: true };
  rules: L7Rule[];
}

/** What a waypoint (or sidecar) L7 authorization sees of one request. */
export interface HttpRequestFacts {
  method: string;
  /** Path without the query string. */
  path: string;
  /** :authority / Host, without port normalisation. */
  host: string;
  headers: Record<string, string | string[] | undefined>;
  srcIp: string;
  /** Peer SPIFFE principal without scheme: cluster.local/ns/x/sa/y; absent for plaintext. */
  srcPrincipal?: string;
  srcNamespace?: string;
  dstIp: string;
  dstPort: number;
}

export interface WaypointSpec {
  /** The Gateway's name; the pod and its service account are `<name>-istio-waypoint`. */
  gateway: string;
  namespace: string;
  /** `istio.io/for-service-account`: serves only this SA's workloads; absent = the namespace. */
  forServiceAccount?: string;
  /** `ambient-lab.io/node`, else the lab's default. */
  node?: string;
  origin: ConfigOrigin;
}

/** UNSET: inherit (port-level -> the workload's mode; workload -> namespace -> mesh-wide in the root namespace; PERMISSIVE at the end). */
export type PeerAuthMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE' | 'UNSET';

export interface PeerAuthenticationSpec {
  name: string;
  namespace: string;
  selector?: Record<string, string>;
  mode: PeerAuthMode;
  /** portLevelMtls */
  ports?: Record<number, PeerAuthMode>;
  origin: ConfigOrigin;
}

/** Everything `resources:` / `lab apply` configure beyond the topology. */
export interface MeshResources {
  waypoints: WaypointSpec[];
  routes: ServiceRoutes[];
  destinationPolicies: DestinationPolicy[];
  l7Policies: L7AuthorizationPolicy[];
  peerAuthentications: PeerAuthenticationSpec[];
}

export const emptyMeshResources = (): MeshResources => ({ waypoints: [], routes: [], destinationPolicies: [], l7Policies: [], peerAuthentications: [] });

/** Envoy response flags the lab's L7 proxies write in access logs and metrics. */
export type ResponseFlag =
  | '-' // none
  | 'UF' // upstream connection failure
  | 'UT' // upstream request timeout
  | 'URX' // retry limit exceeded
  | 'NR' // no route
  | 'UH' // no healthy upstream
  | 'DI' // fault delay injected
  | 'FI' // fault abort injected
  | 'RBAC' // (Envoy writes response_code_details rbac_access_denied; flag UAEX is ext-authz) kept readable
  | 'DC' // downstream connection termination
  | 'UC' // upstream connection termination (closed or reset before/while answering)
  | 'NC'; // no cluster found (e.g. a route names a subset no DestinationRule defines)
