// The course walk's reading of a page and its excerpt comparison: what is masked (times,
// durations, PIDs, ephemeral ports) and that a wrong or out-of-order excerpt is caught.
import t from 'tap';
import { parsePage, mask, excerptMismatch } from '../e2e/course-pages.js';

t.test('parsePage: blocks and learner marks in order', async (t) => {
  const items = parsePage('# x\n\n```sh\nsudo lab check 01\n```\n\n```text\n1 passed, 0 failed\n```\n<!-- learner: answers -->\n```yaml\na: 1\n```\n');
  t.same(items.map((i) => i.kind), ['sh', 'text', 'learner']);
  t.match(items[0], { kind: 'sh', code: 'sudo lab check 01', line: 3 });
  t.match(items[2], { kind: 'learner', name: 'answers' });
});

t.test('mask', async (t) => {
  t.equal(mask('[16:27:35.889] WARN (ztunnel/342): x'), '[TIME] WARN (ztunnel/342): x');
  t.equal(mask('HTTP 200 in 46 ms'), 'HTTP 200 in DUR');
  t.equal(mask('10.244.0.4:39782 -> 10.244.1.3:15008'), '10.244.0.4:PORT -> 10.244.1.3:15008', 'ephemeral ports only');
  t.equal(mask('"pid":1234'), '"pid":PID');
  t.equal(mask('  a    b  '), 'a b');
});

t.test('excerptMismatch', async (t) => {
  const out = 'one 10.0.0.1\nPASS x\n3 passed, 0 failed\n';
  t.equal(excerptMismatch('PASS x\n3 passed, 0 failed', out), undefined);
  t.equal(excerptMismatch('one ... 10.0.0.1', out), undefined, '... matches anything within a line');
  t.match(excerptMismatch('3 passed, 0 failed\nPASS x', out), /not found \(in order\): PASS x/, 'order matters');
  t.match(excerptMismatch('2 passed, 1 failed', out), /not found/, 'a different count fails');
  t.match(excerptMismatch('one 10.0.0.2', out), /not found/, 'addresses are not masked');
});
