// PeerAuthentication STRICT / PERMISSIVE / DISABLE as ztunnel gets it: which mode applies to a
// workload (workload selector > namespace > mesh-wide, UNSET inherits, PERMISSIVE by default),
// and the DENY policy for plaintext that a STRICT mode becomes.
import t from 'tap';
import { effectiveMtls, strictPolicy, STRICT_POLICY_NAME } from '../../src/mesh/peer-authn.js';
import type { PeerAuthenticationSpec, PeerAuthMode } from '../../src/l7/model.js';

const pa = (namespace: string, mode: PeerAuthMode, extra: Partial<PeerAuthenticationSpec> = {}): PeerAuthenticationSpec =>
  ({ name: 'pa', namespace, mode, origin: `PeerAuthentication ${namespace}/pa`, ...extra });
const mesh = pa('istio-system', 'STRICT');

t.test('the most specific mode applies', async (t) => {
  t.same(effectiveMtls([], 'default', {}), { mode: 'PERMISSIVE', ports: {} }, 'nothing: PERMISSIVE');
  t.equal(effectiveMtls([mesh], 'default', {}).mode, 'STRICT', 'mesh-wide STRICT');
  t.equal(effectiveMtls([mesh, pa('default', 'DISABLE')], 'default', {}).mode, 'DISABLE', 'the namespace overrides the mesh');
  t.equal(effectiveMtls([mesh, pa('other', 'DISABLE')], 'default', {}).mode, 'STRICT', 'another namespace\'s policy does not apply');
  t.equal(effectiveMtls([mesh, pa('default', 'PERMISSIVE', { selector: { app: 'old' } })], 'default', { app: 'old' }).mode, 'PERMISSIVE', 'a workload selector overrides both');
  t.equal(effectiveMtls([mesh, pa('default', 'PERMISSIVE', { selector: { app: 'old' } })], 'default', { app: 'new' }).mode, 'STRICT', 'a selector that does not match');
  t.equal(effectiveMtls([mesh, pa('default', 'UNSET')], 'default', {}).mode, 'STRICT', 'UNSET inherits');
});

t.test('STRICT becomes a DENY of connections without a peer principal; DISABLE and PERMISSIVE none', async (t) => {
  const strict = strictPolicy('default', { mode: 'STRICT', ports: {} }, 'w');
  t.same(strict, { name: STRICT_POLICY_NAME, namespace: 'default', scope: 'WorkloadSelector', action: 'Deny', groups: [[[{ not_principals: ['Presence'] }]]] });
  t.equal(strictPolicy('default', { mode: 'PERMISSIVE', ports: {} }, 'w'), undefined);
  t.equal(strictPolicy('default', { mode: 'DISABLE', ports: {} }, 'w'), undefined);
  const m = effectiveMtls([pa('default', 'STRICT', { selector: { app: 'a' }, ports: { 8080: 'DISABLE', 9000: 'UNSET' } })], 'default', { app: 'a' });
  t.same(m, { mode: 'STRICT', ports: { 8080: 'DISABLE' } }, 'portLevelMtls: UNSET ports take the workload\'s mode');
  t.same(strictPolicy('default', m, 'w')?.groups, [[[{ not_principals: ['Presence'] }], [{ not_destination_ports: [8080] }]]], 'STRICT except port 8080');
  t.same(strictPolicy('default', { mode: 'PERMISSIVE', ports: { 9000: 'STRICT' } }, 'w')?.groups, [[[{ not_principals: ['Presence'] }], [{ destination_ports: [9000] }]]], 'PERMISSIVE but STRICT on 9000');
});
