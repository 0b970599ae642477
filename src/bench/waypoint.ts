// What a waypoint adds per request, and what it holds in memory: one ambient lab
// (src/bench/waypoint-topology.ts) where the same client calls two identical httpbins, one
// behind a waypoint and one not, with the same load client, alternating between the two so
// both see the same moment of a shared machine. Before measuring, httpbin's /ip tells which
// path a request really took (behind the waypoint the server sees the waypoint's address);
// afterwards the waypoint's own request counter says it served the load.
import { labUp, labDown, labStatus, runCli } from './lab-cli.js';
import { latencyRun, concurrentRun, type DatapathOptions, type LatencyFigure, type ConcurrentFigure } from './datapath.js';
import { combineLatencyRuns, type LatencyRun } from './stats.js';
import { rssKb, peakRssWhile, cpuWhile } from './procfs.js';
import { WAYPOINT_BENCH } from './waypoint-topology.js';
import { seriesValue } from '../proxy/metrics.js';

export type WaypointPathName = 'direct' | 'waypoint';

export interface WaypointPathFigures {
  /** The Service called (namespace/name) and its VIP:port. */
  service: string;
  target: string;
  newConnection: LatencyFigure;
  keepAlive: LatencyFigure;
  concurrent: ConcurrentFigure;
}

export interface WaypointFigures {
  lab: string;
  tunnel?: string;
  client: string;
  waypoint: { pod: string; process: string; node: string; ip: string };
  direct: WaypointPathFigures;
  viaWaypoint: WaypointPathFigures;
  /** The address httpbin saw for one request on each path (the client's, the waypoint's). */
  origins: { direct: string; waypoint: string };
  /** istio_requests_total of the waypoint for the waypoint Service after the load, against the requests the bench sent there. */
  waypointRequests: { counted: number; sent: number };
  /** VmRSS of the waypoint process: 1 s after `lab up`, peak sampled every 200 ms during the load, and right after it. */
  memory: { idleKb?: number; peakKb?: number; afterKb?: number };
  /** The waypoint process's CPU time during the concurrent run through it, per request served. */
  cpuMsPerRequest?: number;
}

type Log = (msg: string) => void;

const short = (k: string) => k.split('/')[1];

/** What httpbin's /ip reports as the caller of one request from the client pod. */
async function originSeen(lab: string, client: string, target: string): Promise<string> {
  const r = await runCli(['exec', '--lab', lab, short(client), '--', 'curl', '-s', '-m', '5', `http://${target}/ip`], 30_000);
  try {
    return String(JSON.parse(r.stdout).origin);
  } catch {
    throw new Error(`curl http://${target}/ip from ${client} failed (exit ${r.code}): ${(r.stdout + r.stderr).trim().slice(0, 200)}`);
  }
}

export async function measureWaypoint(file: string, name: string, o: DatapathOptions, log: Log): Promise<WaypointFigures> {
  const B = WAYPOINT_BENCH;
  log(`waypoint: lab up ${name}`);
  const { summary } = await labUp(file, name, true);
  try {
    const status = await labStatus(name);
    const wpPod = summary.pods.find((p) => p.name === B.waypointPod);
    const wpProc = status.processes.find((p) => p.role === 'waypoint' && p.alive);
    const client = summary.pods.find((p) => p.name === B.client);
    if (!wpPod || !wpProc || !client) throw new Error(`${name}: no running waypoint ${B.waypointPod} or no client ${B.client} after lab up`);
    const target = (svcName: string) => {
      const s = summary.services.find((x) => x.name === svcName);
      if (!s) throw new Error(`${file} has no Service ${svcName}`);
      return `${s.vip}:${s.ports[0].port}`;
    };
    const direct = target(B.direct.service);
    const viaWp = target(B.waypoint.service);

    // A figure for "with the waypoint" is only one if the requests went through it.
    const origins = { direct: await originSeen(name, B.client, direct), waypoint: await originSeen(name, B.client, viaWp) };
    if (origins.waypoint !== wpPod.ip) throw new Error(`requests to ${B.waypoint.service} did not go through the waypoint: httpbin saw ${origins.waypoint}, the waypoint is ${wpPod.ip}`);
    if (origins.direct !== client.ip) throw new Error(`requests to ${B.direct.service} did not come straight from the client: httpbin saw ${origins.direct}, the client is ${client.ip}`);

    await new Promise((r) => setTimeout(r, 1000));
    const idleKb = rssKb(wpProc.pid);

    const runs: Record<WaypointPathName, { newConnection: LatencyRun[]; keepAlive: LatencyRun[] }> = {
      direct: { newConnection: [], keepAlive: [] }, waypoint: { newConnection: [], keepAlive: [] },
    };
    const url: Record<WaypointPathName, string> = { direct: `http://${direct}/status/200`, waypoint: `http://${viaWp}/status/200` };
    const { result: conc, peakKb } = await peakRssWhile([wpProc.pid], async () => {
      for (let r = 0; r < o.latencyRuns; r++) {
        // Alternate which path goes first, so a trend in the machine's load favours neither.
        const order: WaypointPathName[] = r % 2 === 0 ? ['direct', 'waypoint'] : ['waypoint', 'direct'];
        for (const kind of ['newConnection', 'keepAlive'] as const) {
          log(`  run ${r + 1}/${o.latencyRuns}: ${kind === 'newConnection' ? 'new connection' : 'kept alive'}, ${o.latencyRequests} requests each, ${order.join(' then ')}`);
          for (const p of order) runs[p][kind].push(await latencyRun(client.netns, url[p], kind === 'keepAlive', o));
        }
      }
      log(`  ${o.connections} concurrent connections for ${o.concurrentSeconds} s, direct then waypoint`);
      const d = await concurrentRun(client.netns, url.direct, o);
      const w = await cpuWhile([wpProc.pid], () => concurrentRun(client.netns, url.waypoint, o));
      return { direct: d, waypoint: w.result, waypointCpuS: w.cpuSeconds.get(wpProc.pid) };
    });
    const afterKb = rssKb(wpProc.pid);

    const metrics = await runCli(['exec', '--lab', name, short(B.waypointPod), '--', 'curl', '-s', '-m', '5', 'http://127.0.0.1:15020/metrics'], 30_000);
    const counted = seriesValue(metrics.stdout, 'istio_requests_total', { destination_service: `${short(B.waypoint.service)}.default.svc.cluster.local` });
    // Warm-up requests included: the waypoint served them too.
    const sent = 1 + o.latencyRuns * 2 * (o.latencyRequests + 10) + conc.waypoint.requests;

    const path = (service: string, t: string, p: WaypointPathName, c: ConcurrentFigure): WaypointPathFigures => ({
      service, target: t, newConnection: combineLatencyRuns(runs[p].newConnection), keepAlive: combineLatencyRuns(runs[p].keepAlive), concurrent: c,
    });
    return {
      lab: name, tunnel: status.tunnel, client: B.client,
      waypoint: { pod: B.waypointPod, process: wpProc.id, node: wpPod.node, ip: wpPod.ip },
      direct: path(B.direct.service, direct, 'direct', conc.direct),
      viaWaypoint: path(B.waypoint.service, viaWp, 'waypoint', conc.waypoint),
      origins,
      waypointRequests: { counted, sent },
      memory: { idleKb, peakKb: peakKb.get(wpProc.pid), afterKb },
      cpuMsPerRequest: conc.waypointCpuS !== undefined && conc.waypoint.requests > 0 ? (conc.waypointCpuS * 1000) / conc.waypoint.requests : undefined,
    };
  } finally {
    log(`waypoint: lab down ${name}`);
    await labDown(name);
  }
}
