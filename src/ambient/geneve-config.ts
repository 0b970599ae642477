// What the userspace Geneve daemon serves: one or more "ends", each a UDP socket and the TAP
// devices of one network namespace. A node's daemon has two ends, the node's istioin/istioout
// (tunnelled to the ztunnel pod's address) and the ztunnel pod's pistioin/pistioout (tunnelled
// back to the node), so one process carries both directions of the node's Geneve pair.
//
// On the command line an end is one `--end` argument of comma-separated key=value pairs:
//   --end local=10.244.0.1,remote=10.244.0.2,tap=istioin:1000,tap=istioout:1001
//   --end netns=al-demo-default-ztunnel-node-a,local=10.244.0.2,remote=10.244.0.1,tap=pistioin:1000,tap=pistioout:1001
// `netns` absent: the namespace the daemon runs in.
import { parseTapSpec } from './geneve-wire.js';

export interface GeneveTap {
  name: string;
  vni: number;
}

export interface GeneveEndSpec {
  /** /run/netns/<netns>; absent = the daemon's own namespace. */
  netns?: string;
  /** Address the end's UDP socket binds (and so the outer source of its packets). */
  local: string;
  /** The only sender accepted, and where encapsulated frames go (a kernel geneve link's `remote`). */
  remote: string;
  taps: GeneveTap[];
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const NETNS = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

export function formatEndSpec(e: GeneveEndSpec): string {
  return [
    ...(e.netns ? [`netns=${e.netns}`] : []),
    `local=${e.local}`,
    `remote=${e.remote}`,
    ...e.taps.map((t) => `tap=${t.name}:${t.vni}`),
  ].join(',');
}

const END_USAGE = 'expected [netns=NAME,]local=IP,remote=IP,tap=IFNAME:VNI[,tap=...]';

export function parseEndSpec(spec: string): GeneveEndSpec {
  const bad = (why: string) => new Error(`bad --end "${spec}": ${why}; ${END_USAGE}`);
  const e: Partial<GeneveEndSpec> & { taps: GeneveTap[] } = { taps: [] };
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    const [k, v] = eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
    if (k === 'tap') {
      try {
        e.taps.push(parseTapSpec(v));
      } catch (err) {
        throw bad((err as Error).message);
      }
    } else if (k === 'local' || k === 'remote') {
      if (!IPV4.test(v)) throw bad(`${k} "${v}" is not an IPv4 address`);
      if (e[k] !== undefined) throw bad(`${k} given twice`);
      e[k] = v;
    } else if (k === 'netns') {
      // A name under /run/netns, never a path.
      if (!NETNS.test(v) || v === '.' || v === '..') throw bad(`netns "${v}" is not a namespace name`);
      e.netns = v;
    } else throw bad(`unknown key "${k}"`);
  }
  if (!e.local) throw bad('local is missing');
  if (!e.remote) throw bad('remote is missing');
  if (!e.taps.length) throw bad('no tap');
  return e as GeneveEndSpec;
}

/** Refuses what a kernel would refuse too: a TAP or an address twice in one namespace, a VNI twice on one socket. */
export function checkEnds(ends: GeneveEndSpec[]): void {
  if (!ends.length) throw new Error('no --end given');
  const seen = new Set<string>();
  const once = (key: string, what: string) => {
    if (seen.has(key)) throw new Error(what);
    seen.add(key);
  };
  for (const e of ends) {
    const ns = e.netns ?? '(own netns)';
    once(`addr ${ns} ${e.local}`, `two ends bind ${e.local} in ${ns}`);
    const vnis = new Set<number>();
    for (const t of e.taps) {
      once(`tap ${ns} ${t.name}`, `TAP ${t.name} given twice in ${ns}`);
      if (vnis.has(t.vni)) throw new Error(`VNI ${t.vni} given twice for the end at ${e.local} in ${ns}`);
      vnis.add(t.vni);
    }
  }
}
