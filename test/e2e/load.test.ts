// Load on the proxies, the fast variant of the bench's load section (src/bench/load-1k.ts):
// 1,000 concurrent connections once and 2,000 short requests, from one pod through one
// ztunnel pair and through a waypoint, real namespaces and real processes. What must hold:
// every connection the client opened was counted by the client's ztunnel, the proxies' fds
// stay bounded under the load and return near their idle count within SETTLE_MS after it
// (the waypoint's idle upstream connections and the burst's surplus HBONE sessions are
// reaped, not left for the next traffic), every client error
// is also in a proxy's log, and each proxy exports its event-loop delay.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lab } from './helpers.js';
import { measureLoad, FD_SLACK, FD_SETTLE_SLACK, type LoadFigures } from '../../src/bench/load-1k.js';
import { DEFAULT_UPSTREAM_LIMITS } from '../../src/l7/upstream.js';
import { waypointTopologyYaml } from '../../src/bench/waypoint-topology.js';
import { renderLoad } from '../../src/bench/compare-format.js';

// Another name when two checkouts share a machine (lab names are global to it).
const NAME = process.env.LOAD_E2E_LAB ?? 'bench-cmp-e2e';
// How long the proxies' fds may take to come back after the load: the waypoint's idle upstream
// connections close after the L7 idle timeout (10 s), the surplus HBONE sessions the burst
// opened 5 s after their last stream (src/mesh/idle-reaper.ts); 10 s more for a busy machine.
const SETTLE_MS = DEFAULT_UPSTREAM_LIMITS.idleTimeoutMs + 10_000;
const O = { connections: 1000, seconds: 2, shortRequests: 2000, shortConcurrency: 50, settleMs: SETTLE_MS };

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
    // Waited for, not slept: measureLoad polls the fds every 100 ms after the client exits.
    t.ok(ph.settled, `${ph.path} ${ph.kind}: every proxy's fds back within ${FD_SETTLE_SLACK} of idle ${(ph.settledMs / 1000).toFixed(1)} s after the load (at most ${SETTLE_MS / 1000} s)`);
    for (const p of ph.proxies) {
      const tag = `${ph.path} ${ph.kind}: ${p.id} fds idle ${p.fds.idle}, peak ${p.fds.peak}, after ${p.fds.after}`;
      // One socket per client connection on each side of a proxy at most, plus its own handful.
      t.ok(p.fds.peak <= p.fds.idle + 2 * O.connections + FD_SLACK, `${tag}: bounded by the connections`);
      t.ok(p.fds.after <= p.fds.idle + FD_SETTLE_SLACK, `${tag}: back within ${FD_SETTLE_SLACK} of idle after the load`);
    }
    if (ph.path === 'waypoint') {
      // The waypoint opens at most maxConnectionsPerEndpoint upstream connections (HBONE streams,
      // each one a socket from ztunnel/node-b to httpbin-wp) however many clients it serves.
      const zb = ph.proxies.find((p) => p.id === 'ztunnel/node-b')!;
      const bound = DEFAULT_UPSTREAM_LIMITS.maxConnectionsPerEndpoint;
      t.ok(zb.fds.peak <= zb.fds.idle + bound + FD_SLACK, `${ph.kind}: ztunnel/node-b peak fds ${zb.fds.peak} <= idle ${zb.fds.idle} + ${bound} upstream connections + ${FD_SLACK}`);
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
