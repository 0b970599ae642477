// `lab apply` keeps each object of a file apart (splitObjects) and parses it again at every
// re-plan: what that second parse reports (a warning, an error) must point at the same line
// and column of the user's file as the first one, wherever the object sat (after comments, a
// later document, an item of a List or of a plain list).
import t from 'tap';
import { parseDocument } from 'yaml';
import { splitObjects } from '../../src/istio/documents.js';
import { parseResources } from '../../src/istio/index.js';

const L7_NO_WAYPOINT = (indent: string) => [
  'apiVersion: security.istio.io/v1beta1',
  'kind: AuthorizationPolicy',
  'metadata: {name: get-only}',
  'spec:',
  '  selector: {matchLabels: {app: reviews}}',
  '  rules:',
  '    - to: [{operation: {methods: ["GET"]}}]',
].map((l, i) => (i === 0 ? l : `${indent}${l}`)).join('\n');

const FILES: Record<string, string> = {
  'after comments and a first document': `# a comment\n# another\napiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: r}\nspec: {host: reviews}\n---\n# the policy\n${L7_NO_WAYPOINT('')}\n`,
  'an item of a List': `apiVersion: v1\nkind: List\nitems:\n  - ${L7_NO_WAYPOINT('    ')}\n`,
  'an item of a plain list': `- ${L7_NO_WAYPOINT('  ')}\n`,
};

for (const [what, text] of Object.entries(FILES)) {
  t.test(what, async (t) => {
    const whole = parseResources(text, 'f.yaml').warnings;
    t.equal(whole.length, 1, 'the policy warns once');
    const objects = splitObjects(text, 'f.yaml');
    const again = objects.flatMap((o) => parseResources(o.text, 'f.yaml', { lineOffset: Number(o.where.split(':').pop()) - 1 }).warnings);
    // Alone, the object's fields are named from its own root (no `items[0].` before them).
    const own = whole.map((w) => w.replace(/(items|resources)\[0\]\./g, ''));
    t.same(again, own, 'parsed alone, the object warns at the same file:line:col');
    const policy = objects.find((o) => o.kind === 'AuthorizationPolicy')!;
    t.match(policy, { namespace: 'default', name: 'get-only', key: 'AuthorizationPolicy/default/get-only' });
    t.equal(parseDocument(policy.text).toJSON().spec.rules[0].to[0].operation.methods[0], 'GET', 'its text is the object');
  });
}

t.test('an error found again names the same place', async (t) => {
  const text = `# x\n- apiVersion: networking.istio.io/v1beta1\n  kind: VirtualService\n  metadata: {name: r}\n  spec: {hosts: [reviews], http: [{mirror: {host: reviews}}]}\n`;
  const msg = (f: () => unknown) => { try { f(); return ''; } catch (e) { return (e as Error).message; } };
  const whole = msg(() => parseResources(text, 'f.yaml'));
  t.match(whole, /^f\.yaml:5:\d+: VirtualService default\/r: /);
  const [o] = splitObjects(text, 'f.yaml');
  t.equal(msg(() => parseResources(o.text, 'f.yaml', { lineOffset: Number(o.where.split(':').pop()) - 1 })), whole.replace('resources[0].', ''));
});
