// Load on the proxies, the fast variant of the bench's load section (src/bench/load-1k.ts):
// 1,000 concurrent connections once and 2,000 short requests, from one pod through one
// ztunnel pair and through a waypoint, real namespaces and real processes. What must hold:
// every connection the client opened was counted by the client's ztunnel, the proxies' fds
// stay bounded under the load and return near their idle count after it, every client error
// is also in a proxy's log, and each proxy exports its event-loop delay.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lab } from './helpers.js';
import { measureLoad, FD_SLACK, type LoadFigures } from '../../src/bench/load-1k.js';
import { waypointTopologyYaml } from '../../src/bench/waypoint-topology.js';
import { renderLoad } from '../../src/bench/compare-format.js';

const NAME = 'bench-cmp-e2e';
const O = { connections: 1000, seconds: 2, shortRequests: 2000, shortConcurrency: 50, settleMs: 20_000 };

const dir = mkdtempSync(join(tmpdir(), 'bc-load-'));
t.teardown(() => {
  lab(['down', NAME]);
  rmSync(dir, { recursive: true, force: true });
});

let figures: LoadFigures | undefined;
t.before(async () => {
  const file = join(dir, 'load.yaml');
  writeFileSync(file, waypointTopologyYaml(NAME));
  figures = await measureLoad(file, NAME, O, (m) => t.comment(m));
  // The whole table, error kinds and proxy failure reasons included, for whoever reads a failure.
  t.comment(renderLoad(figures));
});

t.test('every phase ran, and the client saw what it asked for', async (t) => {
  t.equal(figures?.phases.length, 4, 'ztunnel pair and waypoint, each with the concurrent and the short load');
  for (const ph of figures?.phases ?? []) {
    const tag = `${ph.path} ${ph.kind}`;
    if (ph.kind === 'concurrent') t.equal(ph.client.maxOpen, O.connections, `${tag}: ${O.connections} connections open at once`);
    else t.equal(ph.client.requests + ph.client.errors, O.shortRequests, `${tag}: every short request ended (ok or counted as an error)`);
    t.equal(ph.unexplainedErrors, 0, `${tag}: no client error the proxies did not log (client errors ${ph.client.errors}: ${JSON.stringify(ph.client.errorKinds)})`);
  }
});

t.test('the client ztunnel counted every connection the client opened', async (t) => {
  for (const ph of figures?.phases ?? []) {
    const za = ph.proxies.find((p) => p.id === 'ztunnel/node-a')!;
    const opened = ph.kind === 'concurrent' ? ph.client.opened! : ph.client.requests + ph.client.errors;
    t.equal(za.connectionsOpened, opened, `${ph.path} ${ph.kind}: ztunnel/node-a istio_tcp_connections_opened_total moved by ${opened}`);
  }
});

t.test('file descriptors stay bounded and go back near idle', async (t) => {
  for (const ph of figures?.phases ?? []) {
    for (const p of ph.proxies) {
      const tag = `${ph.path} ${ph.kind}: ${p.id} fds idle ${p.fds.idle}, peak ${p.fds.peak}, after ${p.fds.after}`;
      // One socket per client connection on each side of a proxy at most, plus its own handful.
      t.ok(p.fds.peak <= p.fds.idle + 2 * O.connections + FD_SLACK, `${tag}: bounded by the connections`);
      // Known: through the waypoint, its upstream pool's idle HBONE streams (and so ztunnel/node-b's
      // connections to httpbin) are released only when the next traffic comes (see bench/README.md, Load).
      // The waypoint holds the HBONE sessions those streams ride on (up to 100 streams each), so its
      // own fds linger with them.
      const lingering = ph.path === 'waypoint' && (p.id === 'ztunnel/node-b' || p.id.startsWith('waypoint/'));
      t.ok(p.fds.after <= p.fds.idle + FD_SLACK, `${tag}: back near idle after the load`,
        lingering ? { todo: 'the waypoint\'s idle upstream streams are closed only on the next activity' } : {});
    }
  }
});

t.test('memory stays bounded and the event-loop delay is exported', async (t) => {
  for (const ph of figures?.phases ?? []) {
    for (const p of ph.proxies) {
      t.ok(p.rssKb.peak < 400 * 1024, `${ph.path} ${ph.kind}: ${p.id} RSS peak ${Math.round(p.rssKb.peak / 1024)} MB < 400 MB`);
      t.ok(p.loopDelayMs && Number.isFinite(p.loopDelayMs.max), `${ph.path} ${ph.kind}: ${p.id} exports eventloop_delay_seconds (max ${p.loopDelayMs?.max.toFixed(1)} ms)`);
    }
  }
});
