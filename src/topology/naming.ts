// Names of Linux objects the lab creates. Interface names are capped at 15 bytes,
// so pods get a hashed name and the full owner goes into the link's ifalias;
// namespace names carry the lab name so two labs can run side by side.
import { createHash } from 'node:crypto';

export const OWNER_PREFIX = 'ambient-lab';

const h8 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 8);

export const netnsPrefix = (lab: string): string => `al-${lab}-`;
export const underlayNetns = (lab: string): string => `al-${lab}-underlay`;
export const nodeNetns = (lab: string, node: string): string => `al-${lab}-node-${node}`;
/** Kubernetes namespace names have no dots, so `<ns>.<pod>` is unambiguous. */
export const podNetns = (lab: string, ns: string, pod: string): string => `al-${lab}-pod-${ns}.${pod}`;

/** Host-side veth of a pod, in its node's netns (kindnet/calico style `veth<hash>`). */
export const podHostVeth = (lab: string, ns: string, pod: string): string => `veth${h8(`${lab}/${ns}/${pod}`)}`;
/** Underlay-side veth of a node's eth0, in the underlay netns. */
export const nodeUnderlayVeth = (lab: string, node: string): string => `un${h8(`${lab}/node/${node}`)}`;
export const UNDERLAY_BRIDGE = 'br-underlay';

/** ifalias recorded on every link and on `lo` of every netns the lab creates. */
export const ownerAlias = (lab: string, kind: string, name: string): string => `${OWNER_PREFIX}:${lab}:${kind}:${name}`;

export function parseOwnerAlias(alias: string): { lab: string; kind: string; name: string } | undefined {
  const m = /^ambient-lab:([^:]+):([^:]+):(.+)$/.exec(alias.trim());
  return m ? { lab: m[1], kind: m[2], name: m[3] } : undefined;
}
