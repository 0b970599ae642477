// PeerAuthentication (security.istio.io v1beta1/v1): which connections a workload's proxy accepts
// (STRICT: mTLS only; PERMISSIVE: both; DISABLE: plaintext; UNSET: inherit from the namespace's
// policy, then the mesh-wide one in the root namespace), per workload and per port.
import type { PeerAuthMode, PeerAuthenticationSpec } from '../l7/model.js';
import { matchLabels } from './common.js';
import { byKey } from './reader.js';
import type { Field, ObjectReader } from './reader.js';
import type { KindContext, KindReader } from './types.js';

const MODES: readonly PeerAuthMode[] = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'];

function mtls(r: ObjectReader, f: Field): PeerAuthMode {
  if (r.isNull(f)) return 'UNSET';
  const mode = byKey(r.map(f, ['mode'])).get('mode');
  return mode ? r.oneOf(mode, MODES) : 'UNSET';
}

function read({ r, meta, spec, out }: KindContext): void {
  const fields = r.isNull(spec) ? new Map<string, Field>() : byKey(r.map(spec, ['selector', 'mtls', 'portLevelMtls']));
  const pa: PeerAuthenticationSpec = {
    name: meta.name, namespace: meta.namespace, mode: 'UNSET', origin: `PeerAuthentication ${meta.namespace}/${meta.name}`,
  };
  const sel = fields.get('selector');
  if (sel && !r.isNull(sel)) {
    const labels = matchLabels(r, sel);
    if (Object.keys(labels).length > 0) pa.selector = labels;
  }
  const m = fields.get('mtls');
  if (m) pa.mode = mtls(r, m);
  const ports = fields.get('portLevelMtls');
  if (ports && !r.isNull(ports)) {
    // Istio's validation: port-level settings need a workload selector.
    if (!pa.selector) r.fail(ports.at, ports.path, 'portLevelMtls needs a selector (Istio refuses it on namespace-wide and mesh-wide policies)');
    pa.ports = {};
    for (const e of r.entries(ports, 'a map of port -> {mode: ...}')) {
      const port = Number(e.key);
      if (!/^\d+$/.test(e.key) || port < 1 || port > 65535) r.fail(e.keyAt, e.value.path, `invalid port "${e.key}": expected a port number 1-65535`);
      pa.ports[port] = mtls(r, e.value);
    }
  }
  out.resources.peerAuthentications.push(pa);
}

export const peerAuthenticationKind: KindReader = {
  apiVersions: ['security.istio.io/v1beta1', 'security.istio.io/v1'],
  rootNamespaceAllowed: true,
  read,
};
