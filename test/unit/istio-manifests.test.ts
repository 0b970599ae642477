// A topology's `manifests:`: multi-document YAML files, paths relative to the topology file,
// read as `resources:` are; a problem names the manifest file and its own line.
import t from 'tap';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseTopology } from '../../src/topology/load.js';

const dir = mkdtempSync(join(tmpdir(), 'al-manifests-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'mesh'));

const topology = (manifests: string[]) => `name: m
nodes: [{name: node-a}]
pods:
  - {name: sleep, node: node-a, app: sleep}
  - {name: reviews-v1, node: node-a, app: httpbin, serviceAccount: bookinfo-reviews, labels: {app: reviews, version: v1}}
services:
  - {name: reviews, selector: {app: reviews}, ports: [{name: http, port: 9080, targetPort: 80}]}
resources:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: bookinfo-reviews, annotations: {istio.io/for-service-account: bookinfo-reviews}}
    spec: {gatewayClassName: istio-waypoint}
manifests: [${manifests.join(', ')}]
`;
const GOOD = `apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}]}]
`;
writeFileSync(join(dir, 'mesh', 'reviews.yaml'), GOOD);
writeFileSync(join(dir, 'mesh', 'bad.yaml'), `${GOOD}---\napiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\nmetadata: {name: ext}\n`);
const topoFile = join(dir, 'topo.yaml');
const rel = (p: string) => relative(process.cwd(), join(dir, p));

t.test('objects of every document of a manifest join the inline resources', async (t) => {
  const topo = parseTopology(topology(['mesh/reviews.yaml']), topoFile);
  t.same(topo.resources?.waypoints.map((w) => w.gateway), ['bookinfo-reviews'], 'the inline Gateway');
  t.same(topo.resources?.destinationPolicies.map((d) => d.origin), ['DestinationRule default/reviews'], 'the manifest\'s first document');
  t.equal(topo.resources?.routes.length, 1, 'and its second');
  t.same(topo.objects?.map((o) => `${o.kind} ${o.where}`), [
    `Gateway ${topoFile}:9`, `DestinationRule ${rel('mesh/reviews.yaml')}:1`, `VirtualService ${rel('mesh/reviews.yaml')}:8`,
  ], 'each object knows its file and line (what `lab get` shows)');
});

t.test('a problem in a manifest names that file and line; a missing manifest is named', async (t) => {
  t.throws(() => parseTopology(topology(['mesh/bad.yaml']), topoFile), {
    name: 'UserError', message: new RegExp(`^${rel('mesh/bad.yaml').replace(/[.]/g, '\\.')}:16:7: .*kind ServiceEntry is not supported by the lab`),
  });
  t.throws(() => parseTopology(topology(['mesh/none.yaml']), topoFile), {
    name: 'UserError', message: `${topoFile}: manifests[0]: cannot read ${join(dir, 'mesh/none.yaml')}: no such file`,
  });
});
