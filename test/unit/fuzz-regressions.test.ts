// Documents the property-based input tests (fuzz-topology, fuzz-apply) found wrong, kept as
// plain cases: each was a hang, a crash with a stack trace (exit 1) or an unreadable message,
// and must stay a clear UserError (exit 2).
import t from 'tap';
import { parseTopology } from '../../src/topology/load.js';
import { clipQuoted } from '../../src/topology/yaml-fields.js';
import { applyPlan, classify, upDryRun, MAX_MESSAGE } from './fuzz-pipeline.js';

const node = 'nodes:\n  - name: node-a\n';

t.test('manifests naming a device, stdin or a directory are refused without being read (was: lab up hung on /dev/zero)', async (t) => {
  for (const [path, why] of [
    ['/dev/zero', 'it is not a regular file'],
    ['/dev/null', 'it is not a regular file'],
    ['/etc', 'it is a directory'],
    ['no/such.yaml', 'no such file'],
  ]) {
    t.throws(() => parseTopology(`${node}manifests: [${path}]\n`, 'topologies/x.yaml'), {
      name: 'UserError', message: new RegExp(`^topologies/x\\.yaml: manifests\\[0\\]: cannot read \\S+: ${why}`),
    }, path);
  }
});

t.test('an alias without its anchor is an error where it is (was: lab apply -f of "*x" crashed with a stack trace)', async (t) => {
  t.throws(() => applyPlan(' *x\n', 'a.yaml', 'test/fixtures/topologies/apply.yaml'), {
    name: 'UserError', message: 'a.yaml:1:2: document 1: (top level): alias *x refers to no anchor &x defined before it',
  });
  t.throws(() => parseTopology('nodes: *nothing\n', 't.yaml'), {
    name: 'UserError', message: 't.yaml:1:8: nodes: alias *nothing refers to no anchor &nothing defined before it',
  });
});

t.test('a huge value or key is quoted cut, with its length (was: a 100 KB string repeated in the message)', async (t) => {
  const long = 'x'.repeat(100_000);
  for (const text of [`${node}  - name: ${long}\n`, `${node}? ${long}\n: 1\n`, `${node}pods:\n  - name: a\n    node: node-a\n    labels: {"${long}": b}\n`]) {
    const r = classify(() => upDryRun(text, 'topologies/x.yaml'), 10_000);
    t.equal(r.outcome, 'refused');
    t.ok(r.message!.length < 1000, `message of ${r.message!.length} characters (limit of the fuzz property: ${MAX_MESSAGE})`);
    t.match(r.message!, /… ?"? \(100000 characters\)/, 'says how long the value was');
  }
  t.equal(clipQuoted('a "short" value'), 'a "short" value', 'short quotes are kept whole');
});
