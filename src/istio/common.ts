// Readers shared by several kinds: durations, Service hosts, label selectors, header names.
import { DEFAULT_RETRY_POLICY } from '../l7/model.js';
import type { RetryPolicy } from '../l7/model.js';
import type { ObjectReader, Field } from './reader.js';
import { byKey } from './reader.js';
import { dns1123LabelProblem, labelKeyProblem, labelValueProblem } from '../topology/k8s-names.js';

export const CLUSTER_DOMAIN = 'cluster.local';

export const serviceFqdn = (name: string, namespace: string): string => `${name}.${namespace}.svc.${CLUSTER_DOMAIN}`;

/** `reviews.default.svc.cluster.local` -> {name, namespace}; undefined for anything else. */
export function parseServiceFqdn(host: string): { name: string; namespace: string } | undefined {
  const m = /^([^.]+)\.([^.]+)\.svc\.cluster\.local$/.exec(host);
  return m ? { name: m[1], namespace: m[2] } : undefined;
}

const UNITS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/**
 * A duration in milliseconds. Istio's (protobuf) durations allow decimals ("0.5s"); Gateway API's
 * (GEP-2257) allow only integers with h, m, s, ms, at most 4 parts ("1m30s", "500ms").
 */
export function duration(r: ObjectReader, f: Field, style: 'istio' | 'gateway-api'): number {
  const s = r.string(f, 'a duration like "10s" or "100ms"');
  const part = style === 'istio' ? /(\d+(?:\.\d+)?)(ms|h|m|s)/y : /(\d{1,5})(ms|h|m|s)/y;
  let ms = 0;
  let parts = 0;
  part.lastIndex = 0;
  while (part.lastIndex < s.length) {
    const m = part.exec(s);
    if (!m) { parts = -1; break; }
    ms += Number(m[1]) * UNITS[m[2]];
    parts++;
  }
  if (parts <= 0 || (style === 'gateway-api' && parts > 4)) {
    const hint = style === 'gateway-api' ? ' (Gateway API durations: whole numbers with h, m, s or ms, e.g. "500ms", "1m30s")' : '';
    r.fail(f.at, f.path, `invalid duration "${s}": expected a duration like "10s", "0.5s" or "100ms"${hint}`);
  }
  return Math.round(ms);
}

/** `selector: {matchLabels: {...}}` (matchExpressions is not in Istio's WorkloadSelector). */
export function matchLabels(r: ObjectReader, f: Field): Record<string, string> {
  const fields = byKey(r.map(f, ['matchLabels'], {
    matchExpressions: 'Istio workload selectors take matchLabels only',
  }));
  const labels = fields.get('matchLabels');
  if (!labels || r.isNull(labels)) return {};
  return labelMap(r, labels);
}

export function labelMap(r: ObjectReader, f: Field): Record<string, string> {
  return r.stringMap(f, { key: labelKeyProblem, value: labelValueProblem });
}

/** A Service host in a VirtualService or DestinationRule, resolved like istiod's ResolveShortnameToFQDN. */
export function serviceHost(r: ObjectReader, f: Field, namespace: string): string {
  const h = r.nonEmptyString(f, 'a Service host like "reviews" or "reviews.default.svc.cluster.local"');
  if (h.includes('*')) r.fail(f.at, f.path, `wildcard hosts are not supported by the lab ("${h}"): name one Service`);
  if (!h.includes('.')) {
    r.checked(f, h, dns1123LabelProblem);
    return serviceFqdn(h, namespace);
  }
  if (parseServiceFqdn(h)) return h;
  // istiod appends the namespace only to names without a dot, so "reviews.default" names no Service.
  r.fail(f.at, f.path, `host "${h}" is not a Service of the lab: write a short name ("reviews", in this object's namespace) ` +
    `or a full name like "reviews.default.svc.cluster.local" (Istio does not expand "name.namespace")`);
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** An HTTP header name, lower-cased (HTTP/2 and Envoy compare them that way). */
export function headerName(r: ObjectReader, f: Field, name: string): string {
  if (!TOKEN.test(name)) r.fail(f.at, f.path, `invalid header name "${name}": expected an HTTP token like "x-user"`);
  return name.toLowerCase();
}

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

/** A regular expression Envoy would accept (RE2); JavaScript's parser is the lab's approximation. */
export function regex(r: ObjectReader, f: Field, value: string): string {
  try {
    new RegExp(value);
  } catch (err) {
    const why = (err as Error).message.replace(/^.*: /, '');
    r.fail(f.at, f.path, `invalid regular expression "${value}": ${why}`);
  }
  return value;
}

/** A fresh copy of Istio's default retry policy, which every route with an upstream carries when it sets none. */
export const defaultRetries = (): RetryPolicy => ({
  ...DEFAULT_RETRY_POLICY, retryOn: [...DEFAULT_RETRY_POLICY.retryOn], retriableStatusCodes: [...DEFAULT_RETRY_POLICY.retriableStatusCodes],
});
