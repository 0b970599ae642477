// The lab itself, end to end on the real kernel: up, a request across nodes by Service
// name, status, two labs side by side, down leaves nothing and the root netns is untouched.
import t from 'tap';
import { lab, leftovers, rootSnapshot } from './helpers.js';

const A = 'tt-life-a';
const B = 'tt-life-b';

t.teardown(() => {
  lab(['down', A]);
  lab(['down', B]);
});

t.test('demo: up, request by Service name across nodes, status, down', async (t) => {
  const before = rootSnapshot();
  const up = lab(['up', 'topologies/demo.yaml', A, '--json']);
  t.equal(up.code, 0, `lab up exits 0\n${up.stderr}`);
  const summary = JSON.parse(up.stdout);
  const sleepIp = summary.pods.find((p: { name: string }) => p.name === 'default/sleep').ip;
  const httpbin = summary.pods.find((p: { name: string }) => p.name === 'default/httpbin');
  t.equal(summary.pods.find((p: { name: string }) => p.name === 'default/sleep').node, 'node-a', 'sleep is on node-a');
  t.equal(httpbin.node, 'node-b', 'httpbin is on node-b: the request crosses nodes');

  const ip = lab(['exec', '--lab', A, 'sleep', '--', 'curl', '-s', '--max-time', '10', 'http://httpbin:8000/ip']);
  t.equal(ip.code, 0, `curl by short Service name works\n${ip.stderr}`);
  t.same(JSON.parse(ip.stdout), { origin: sleepIp }, 'httpbin saw the sleep pod IP as the source');

  const fqdn = lab(['exec', '--lab', A, 'sleep', '--', 'curl', '-s', '--max-time', '10', 'http://httpbin.default.svc.cluster.local:8000/headers']);
  t.equal(fqdn.code, 0, 'curl by FQDN works');
  t.match(JSON.parse(fqdn.stdout).headers, { Host: /httpbin\.default\.svc\.cluster\.local:8000/i }, 'the Host header is the FQDN');

  const st = lab(['status', '--lab', A, '--json']);
  t.equal(st.code, 0);
  const status = JSON.parse(st.stdout);
  t.equal(status.healthy, true, 'status says healthy');
  t.ok(status.processes.length > 0, 'status lists the processes');
  t.same(status.processes.filter((p: { alive: boolean }) => !p.alive).map((p: { id: string }) => p.id), [], 'every process is alive');

  const down = lab(['down', A]);
  t.equal(down.code, 0, `lab down exits 0\n${down.stderr}`);
  t.same(leftovers(A), [], 'nothing of the lab is left');
  t.same(rootSnapshot(), before, 'root network namespace is identical before up and after down');
  const again = lab(['down', A]);
  t.equal(again.code, 2, 'lab down twice is harmless: the second one says the lab is gone (exit 2)');
  t.match(again.stderr, `no lab "${A}"`);
});

t.test('two labs side by side; the same name twice fails clearly', async (t) => {
  t.equal(lab(['up', 'topologies/demo.yaml', A, '--json']).code, 0, 'first lab up');
  t.equal(lab(['up', 'topologies/demo.yaml', B, '--json']).code, 0, 'second lab up');
  for (const name of [A, B]) {
    const r = lab(['exec', '--lab', name, 'sleep', '--', 'curl', '-s', '--max-time', '10', 'http://httpbin:8000/status/418', '-o', '/dev/null', '-w', '%{http_code}']);
    t.equal(r.stdout, '418', `lab ${name} serves requests`);
  }
  const again = lab(['up', 'topologies/demo.yaml', A]);
  t.equal(again.code, 2, 'a second `lab up` of the same name exits 2');
  t.match(again.stderr, /already up/, 'and says the lab is already up');
  const noName = lab(['exec', 'sleep', '--', 'true']);
  t.equal(noName.code, 2, 'with two labs up, a verb without --lab exits 2');
  t.match(noName.stderr, /several labs are up/);
  t.equal(lab(['down', A]).code, 0);
  t.equal(lab(['down', B]).code, 0);
  t.same([...leftovers(A), ...leftovers(B)], [], 'both labs fully removed');
});
