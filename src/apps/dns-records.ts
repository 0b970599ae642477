// The cluster DNS data: which Service names exist and their ClusterIPs. Pure, so the lab can
// build the config file and the server can validate it with the same model.
import { isIPv4 } from 'node:net';

export interface DnsConfig {
  /** Cluster domain, e.g. `cluster.local`: names under it are ours to deny. */
  domain: string;
  /** Fully qualified, lower-case name without trailing dot -> IPv4 addresses. */
  records: Record<string, string[]>;
}

export interface DnsService {
  name: string;
  namespace: string;
  vip: string;
}

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/** `<svc>.<ns>.svc.<domain>` -> [vip], the names kube-dns/CoreDNS serves for ClusterIP Services. */
export function buildDnsRecords(services: DnsService[], domain = DEFAULT_CLUSTER_DOMAIN): DnsConfig {
  const records: Record<string, string[]> = {};
  const dom = normalizeName(domain);
  for (const s of services) {
    const fqdn = normalizeName(`${s.name}.${s.namespace}.svc.${dom}`);
    const list = (records[fqdn] ??= []);
    if (!list.includes(s.vip)) list.push(s.vip);
  }
  // Sorted keys: the file the lab writes is stable from one `lab up` to the next.
  const sorted: Record<string, string[]> = {};
  for (const k of Object.keys(records).sort()) sorted[k] = records[k];
  return { domain: dom, records: sorted };
}

export function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/\.+$/, '');
}

/** Validates a parsed config file; throws a message naming the bad entry. */
export function parseDnsConfig(raw: unknown, source = 'DNS config'): DnsConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${source}: expected a JSON object`);
  const obj = raw as Record<string, unknown>;
  const domain = obj.domain === undefined ? DEFAULT_CLUSTER_DOMAIN : obj.domain;
  if (typeof domain !== 'string' || !domain) throw new Error(`${source}: "domain" must be a non-empty string`);
  const recs = obj.records ?? {};
  if (typeof recs !== 'object' || recs === null || Array.isArray(recs)) throw new Error(`${source}: "records" must be an object of name -> [IPv4...]`);
  const records: Record<string, string[]> = {};
  for (const [name, ips] of Object.entries(recs as Record<string, unknown>)) {
    const list = typeof ips === 'string' ? [ips] : ips;
    if (!Array.isArray(list) || list.some((ip) => typeof ip !== 'string' || !isIPv4(ip))) {
      throw new Error(`${source}: records["${name}"] must be a list of IPv4 addresses`);
    }
    records[normalizeName(name)] = [...(list as string[])];
  }
  return { domain: normalizeName(domain), records };
}
