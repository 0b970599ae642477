// The interfaces of one lab namespace under both their names, for `lab capture --list`
// and for resolving `node-a:veth-sleep` to the real `veth564908ee`.
import { run } from '../host/run.js';
import type { LabPlan } from '../topology/address-plan.js';
import { learnerInterface, observationPoints, realInterface, type ObservationPoint } from './roles.js';

export interface NamedInterface {
  name: string;
  real: string;
  /** What it is, in a few words. */
  about: string;
  state: string;
}

export function pointFor(plan: LabPlan, netns: string): ObservationPoint | undefined {
  return observationPoints(plan).find((p) => p.netns === netns);
}

const ABOUT: Record<string, string> = {
  lo: 'loopback',
  eth0: 'the namespace\'s uplink',
  istioin: 'Geneve tunnel to the ztunnel pod, VNI 1000 (inbound)',
  istioout: 'Geneve tunnel to the ztunnel pod, VNI 1001 (outbound)',
  pistioin: 'Geneve tunnel from the node, VNI 1000 (inbound)',
  pistioout: 'Geneve tunnel from the node, VNI 1001 (outbound)',
  'br-underlay': 'the bridge joining every node',
};

export function describeInterface(point: ObservationPoint, real: string): string {
  const name = learnerInterface(point, real);
  if (name.startsWith('veth-wp-')) return `host side of waypoint ${name.slice(8)}'s eth0`;
  if (name.startsWith('veth-')) return `host side of pod ${name.slice(5)}'s eth0`;
  if (name.startsWith('underlay-')) return `port of ${name.slice(9)}'s eth0 on the bridge`;
  if (real === 'eth0' && point.role === 'node') return 'the node\'s link to the underlay';
  if (real === 'eth0') return 'the pod\'s interface (peer of its host veth)';
  return ABOUT[real] ?? '';
}

export async function listInterfaces(point: ObservationPoint): Promise<NamedInterface[]> {
  const r = await run('ip', ['-n', point.netns, '-j', 'link', 'show']);
  const links = JSON.parse(r.stdout || '[]') as { ifname: string; operstate: string }[];
  return links.map((l) => ({ name: learnerInterface(point, l.ifname), real: l.ifname, about: describeInterface(point, l.ifname), state: l.operstate }));
}

export async function resolveInterface(point: ObservationPoint, name: string): Promise<string | undefined> {
  const real = realInterface(point, name);
  const all = await listInterfaces(point);
  return all.find((i) => i.real === real)?.real;
}
