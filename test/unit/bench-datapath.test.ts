// The bulk stream's CPU by role: the CPU target is about the ztunnel pair, not one ztunnel.
import t from 'tap';
import { byRole } from '../../src/bench/datapath.js';

t.test('per-process CPU-s/GiB are summed by role; processes outside the lab keep their name', async (t) => {
  const procs = [
    { id: 'ztunnel/node-a', role: 'ztunnel' },
    { id: 'ztunnel/node-b', role: 'ztunnel' },
    { id: 'geneve/node-a', role: 'geneve' },
    { id: 'pod/default/httpbin', role: 'app' },
  ];
  const got = byRole({ 'ztunnel/node-a': 1.5, 'ztunnel/node-b': 1.75, 'geneve/node-a': 0.25, 'pod/default/httpbin': 0.5, 'load-client': 1 }, procs);
  t.same(got, { ztunnel: 3.25, geneve: 0.25, app: 0.5, 'load-client': 1 });
});
