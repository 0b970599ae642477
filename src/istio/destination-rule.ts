// DestinationRule (networking.istio.io v1alpha3/v1beta1): subsets by labels and the load balancer.
// Connection pools, outlier detection and TLS settings change behaviour the lab does not model,
// so they are refused rather than ignored.
import type { DestinationPolicy, LoadBalancer } from '../l7/model.js';
import { dns1123LabelProblem } from '../topology/k8s-names.js';
import { labelMap, serviceHost } from './common.js';
import { byKey } from './reader.js';
import type { Field, ObjectReader } from './reader.js';
import type { KindContext, KindReader } from './types.js';

const SIMPLE = ['RANDOM', 'ROUND_ROBIN', 'LEAST_REQUEST', 'LEAST_CONN', 'PASSTHROUGH'] as const;
const NOT_MODELLED = 'the lab models only loadBalancer.simple';
const POLICY_NOT_SUPPORTED = {
  connectionPool: NOT_MODELLED, outlierDetection: NOT_MODELLED, tls: NOT_MODELLED, portLevelSettings: NOT_MODELLED,
  tunnel: NOT_MODELLED, proxyProtocol: NOT_MODELLED,
};

function trafficPolicy(r: ObjectReader, f: Field): LoadBalancer | undefined {
  const lb = byKey(r.map(f, ['loadBalancer'], POLICY_NOT_SUPPORTED)).get('loadBalancer');
  if (!lb) return undefined;
  const e = byKey(r.map(lb, ['simple'], {
    consistentHash: NOT_MODELLED, localityLbSetting: NOT_MODELLED, warmupDurationSecs: NOT_MODELLED,
  }));
  const simple = r.oneOf(r.required(lb, e, 'simple', `one of ${SIMPLE.join(', ')}`), SIMPLE);
  // LEAST_CONN is the deprecated name of LEAST_REQUEST (istiod maps both to Envoy's LEAST_REQUEST).
  return simple === 'LEAST_CONN' ? 'LEAST_REQUEST' : simple;
}

function read({ r, meta, spec, object, out }: KindContext): void {
  if (r.isNull(spec)) r.fail(object.at, spec.path, 'missing; expected {host: <Service>, subsets: [...]}');
  const fields = byKey(r.map(spec, ['host', 'subsets', 'trafficPolicy', 'exportTo'], {
    workloadSelector: 'the lab applies DestinationRules to every client',
  }));
  const hostField = r.required(spec, fields, 'host', 'a Service host, e.g. reviews');
  const host = serviceHost(r, hostField, meta.namespace);
  const policy: DestinationPolicy = { host, origin: `DestinationRule ${meta.namespace}/${meta.name}`, subsets: [] };
  const tp = fields.get('trafficPolicy');
  if (tp && !r.isNull(tp)) {
    const lb = trafficPolicy(r, tp);
    if (lb) policy.loadBalancer = lb;
  }
  const exportTo = fields.get('exportTo');
  if (exportTo) {
    for (const x of r.list(exportTo, 'a list of namespaces')) {
      if (r.string(x) !== '*') r.fail(x.at, x.path, `exportTo "${r.string(x)}" is not supported by the lab: only "*" (visible everywhere, the default)`);
    }
  }
  const subsets = fields.get('subsets');
  if (subsets && !r.isNull(subsets)) {
    const seen = new Map<string, string>();
    for (const item of r.list(subsets, 'a list of subsets')) {
      const e = byKey(r.map(item, ['name', 'labels', 'trafficPolicy']));
      const nameField = r.required(item, e, 'name', 'the subset name, e.g. v1');
      const name = r.checked(nameField, r.string(nameField), dns1123LabelProblem);
      if (seen.has(name)) r.fail(nameField.at, nameField.path, `duplicate subset "${name}" (also ${seen.get(name)})`);
      seen.set(name, item.path);
      const labels = e.get('labels');
      const subset: DestinationPolicy['subsets'][number] = { name, labels: labels && !r.isNull(labels) ? labelMap(r, labels) : {} };
      const stp = e.get('trafficPolicy');
      if (stp && !r.isNull(stp)) {
        const lb = trafficPolicy(r, stp);
        if (lb) subset.loadBalancer = lb;
      }
      policy.subsets.push(subset);
    }
  }
  out.refs.push({ type: 'service', host, where: r.where(hostField.at, hostField.path), what: 'host' });
  out.resources.destinationPolicies.push(policy);
}

export const destinationRuleKind: KindReader = {
  apiVersions: ['networking.istio.io/v1alpha3', 'networking.istio.io/v1beta1'],
  read,
};
