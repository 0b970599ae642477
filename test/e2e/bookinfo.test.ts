// Istio's ambient getting-started walk-through on the lab's bookinfo (topologies/bookinfo.yaml,
// objects in topologies/bookinfo/): the page through the mesh, the L4 policy (ztunnel resets
// notsleep), the L7 policy on productpage's waypoint (403 RBAC: access denied), the 90/10 split
// and the end-user match in reviews' waypoint. Real namespaces, processes and requests; each
// stage is a lab brought up from bookinfo.yaml plus the stage's manifests.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lab, upJson, REPO } from './helpers.js';

const OBJ = `${REPO}/topologies/bookinfo`;
const dir = mkdtempSync(join(tmpdir(), 'bi-e2e-'));
const labs: string[] = [];
t.teardown(() => {
  for (const name of labs) lab(['down', name]);
  rmSync(dir, { recursive: true, force: true });
});

/** bookinfo.yaml with `manifests:` added: what the walk-through has applied by a given stage. */
function upWith(name: string, manifests: string[]) {
  const file = join(dir, `${name}.yaml`);
  const base = readFileSync(`${REPO}/topologies/bookinfo.yaml`, 'utf8');
  writeFileSync(file, `${base}manifests:\n${manifests.map((m) => `  - ${OBJ}/${m}\n`).join('')}`);
  labs.push(name);
  return upJson(file, name);
}

/** One exec, many requests: output lines of `sh -c` inside the pod. */
function shIn(name: string, pod: string, script: string): { code: number; lines: string[]; stderr: string } {
  const r = lab(['exec', '--lab', name, pod, '--', 'sh', '-c', script], { timeoutMs: 180_000 });
  return { code: r.code, lines: r.stdout.split('\n').filter(Boolean), stderr: r.stderr };
}
/** `curl -s ... -w '\n%{http_code}'`: body and status in one exec. */
function curl(name: string, pod: string, args: string): { code: number; body: string; status: string } {
  const r = lab(['exec', '--lab', name, pod, '--', 'sh', '-c', `curl -s -m 10 -w '\\n%{http_code}' ${args}`]);
  const i = r.stdout.lastIndexOf('\n');
  return { code: r.code, body: r.stdout.slice(0, i), status: r.stdout.slice(i + 1) };
}

t.test('stage 1: bookinfo in the mesh; L4 policy on productpage; jason routed to v2 by the reviews waypoint', async (t) => {
  const L = 'bi-l4';
  const up = upWith(L, ['productpage-viewer-l4.yaml', 'waypoint-reviews.yaml', 'reviews-test-v2-vs.yaml']);
  if (!t.ok(up.ok, `lab up\n${up.stderr}`)) return;

  const page = curl(L, 'sleep', 'http://productpage:9080/productpage');
  t.equal(page.status, '200', 'sleep GET /productpage: 200');
  t.match(page.body, /<title>Simple Bookstore App<\/title>/);
  t.match(page.body, /<h4>Book Details<\/h4>[\s\S]*<dt>ISBN-10:<\/dt>1234567890/, 'with what details returned');
  t.match(page.body, /<h4>Book Reviews<\/h4>[\s\S]*<small>Reviewer1<\/small>[\s\S]*Reviews served by:<\/dt>\n<u>reviews-v1-5b5d6494f4-8vq7m<\/u>/,
    'and the reviews section, served by reviews v1 (the route for everyone but jason)');

  const ns = curl(L, 'notsleep', 'http://productpage:9080/');
  t.equal(ns.code, 56, `notsleep: productpage's ztunnel resets the connection (curl exit 56; got ${ns.code})`);
  t.match(lab(['logs', '--lab', L, 'ztunnel-node-b']).stdout, /connection denied[\s\S]*sa\/notsleep[\s\S]*no ALLOW policy matched \(default\/productpage-viewer\)/,
    'productpage\'s ztunnel logs the denial and the policy');
  t.equal(curl(L, 'sleep', 'http://productpage:9080/').status, '200', 'sleep is still allowed');

  const anon = shIn(L, 'sleep', 'for i in $(seq 20); do curl -s http://productpage:9080/productpage | grep -o "reviews-v.-"; done');
  t.same([...new Set(anon.lines)], ['reviews-v1-'], `without a login: always v1 (${anon.lines.length} pages)`);
  // The walk-through's browser login, with curl: POST /login, the user cookie kept in a jar.
  const jar = join(dir, 'cookies');
  const jason = shIn(L, 'sleep', `curl -s -o /dev/null -c ${jar} -d username=jason -d passwd=x http://productpage:9080/login && ` +
    `for i in $(seq 20); do curl -s -b ${jar} http://productpage:9080/productpage | grep -o "reviews-v.-\\|jason ( "; done`);
  t.equal(jason.lines.filter((l) => l === 'jason ( ').length, 20, 'the page greets the signed-in jason');
  t.same([...new Set(jason.lines.filter((l) => l.startsWith('reviews')))], ['reviews-v2-'],
    'signed in as jason: always v2 (productpage sends end-user: jason; the waypoint matches it)');
  t.match(lab(['logs', '--lab', L, 'bookinfo-reviews-istio-waypoint']).stdout, /route: "VirtualService default\/reviews http\[0\]/,
    'the waypoint\'s access log names the matching rule');
  lab(['down', L]);
});

t.test('stage 2: L7 policy on productpage\'s waypoint; 90/10 split in the reviews waypoint', async (t) => {
  const L = 'bi-l7';
  const up = upWith(L, ['productpage-viewer.yaml', 'waypoint-reviews.yaml', 'reviews-90-10-vs.yaml']);
  if (!t.ok(up.ok, `lab up\n${up.stderr}`)) return;

  const get = curl(L, 'sleep', 'http://productpage:9080/productpage');
  t.equal(get.status, '200', 'sleep GET: allowed by the waypoint');
  t.match(get.body, /<h4>Book Reviews<\/h4>/);
  const del = curl(L, 'sleep', '-X DELETE http://productpage:9080/productpage');
  t.same([del.status, del.body], ['403', 'RBAC: access denied'], 'sleep DELETE: 403 RBAC: access denied');
  const login = curl(L, 'sleep', '-d username=jason http://productpage:9080/login');
  t.same([login.status, login.body], ['403', 'RBAC: access denied'], 'sleep POST /login: 403 too (only GET is allowed)');
  const other = curl(L, 'notsleep', 'http://productpage:9080/');
  t.same([other.status, other.body], ['403', 'RBAC: access denied'], 'notsleep (another identity): 403 RBAC: access denied');

  const n = 200;
  const out = shIn(L, 'sleep', `for i in $(seq ${n}); do curl -s -m 5 http://reviews:9080/reviews/0 | grep -o '"podname":"reviews-v[0-9]'; done`);
  const v1 = out.lines.filter((l) => l.endsWith('v1')).length;
  const v2 = out.lines.filter((l) => l.endsWith('v2')).length;
  t.equal(out.lines.length, n, `every request answered by a reviews pod (${out.lines.length}/${n})`);
  t.equal(v1 + v2, n, `only v1 and v2 answer, never v3 (v1 ${v1}, v2 ${v2})`);
  t.ok(v1 >= 162 && v1 <= 194, `v1 answered ${v1}/${n} = ${(v1 / 2).toFixed(1)}% (weight 90%, accepted 81-97%)`);

  const pages = shIn(L, 'sleep', 'for i in $(seq 50); do curl -s http://productpage:9080/productpage | grep reviews-v.-; done');
  t.equal(pages.lines.length, 50, 'the walk-through\'s loop: one reviews pod per page');
  t.notOk(pages.lines.some((l) => l.includes('reviews-v3-')), 'productpage\'s calls go through the reviews waypoint too (never v3)');
  t.match(lab(['logs', '--lab', L, 'bookinfo-reviews-istio-waypoint']).stdout, /backend: "reviews\.default\.svc\.cluster\.local:9080 subset v2 \(10%\)"/,
    'the waypoint\'s access log names the weighted backend');
  lab(['down', L]);
});
