/**
 * The ztunnel process's configuration file (`--config <file>`, JSON). The lab writes one per
 * node (ztunnel/config-from-plan.ts); it plays the part of ztunnel's local (non-xDS) mode:
 * NODE_NAME, INSTANCE_IP, CLUSTER_ID, FAKE_CA and LOCAL_XDS_PATH in one file.
 *
 * ```jsonc
 * {
 *   "node": "node-a",                 // NODE_NAME: same-node fast path
 *   "clusterId": "Kubernetes",
 *   "trustDomain": "cluster.local",
 *   "instanceIp": "10.244.0.2",       // INSTANCE_IP: outbound calls to it are refused (SelfCall)
 *   "caDir": "/var/lib/ambient-lab/x/ca", // ca.pem + ca-key.pem; ztunnel signs its workloads' certs
 *   "keyLogFile": "...",              // optional; else env SSLKEYLOGFILE; TLS secrets for tshark
 *   "enableOrigSrc": null,            // ENABLE_ORIG_SRC: null/absent = best effort, true = required, false = off
 *   "dnsCapture": true,               // serve DNS on 15053
 *   "workloads": [ Workload... ],     // reference §3.6 field names (mesh/workloads.ts)
 *   "services": [ { "name", "namespace", "hostname", "vips": ["10.96.0.11"], "ports": {"80": 8080}, "endpoints": ["10.244.1.5"] } ],
 *   "policies": [ { "name", "namespace", "scope": "Namespace", "action": "Allow", "groups": [[[ { "not_destination_ports": [9999] } ]]] } ],
 *   "listen": { "outbound": 15001, ... }  // optional overrides (tests); "host" for the capture listeners
 * }
 * ```
 */
import { readFileSync } from 'node:fs';
import type { Authorization } from '../mesh/authz.js';
import type { Service, Workload } from '../mesh/workloads.js';

export interface ZtunnelPorts {
  /** 15001: TPROXY from this node's ambient pods */
  outbound: number;
  /** 15006: plaintext to this node's ambient pods */
  inboundPlaintext: number;
  /** 15008: HBONE to this node's ambient pods */
  inbound: number;
  /** 15000 on 127.0.0.1: /config_dump */
  admin: number;
  /** 15020: /metrics */
  stats: number;
  /** 15021: /healthz/ready */
  readiness: number;
  /** 15053 UDP+TCP */
  dns: number;
}

export const DEFAULT_PORTS: Readonly<ZtunnelPorts> = {
  outbound: 15001, inboundPlaintext: 15006, inbound: 15008, admin: 15000, stats: 15020, readiness: 15021, dns: 15053,
};

export interface ZtunnelConfig {
  node: string;
  clusterId: string;
  trustDomain: string;
  instanceIp: string;
  caDir: string;
  keyLogFile?: string;
  enableOrigSrc?: boolean | null;
  dnsCapture?: boolean;
  /** How long an HBONE session with no streams stays open. */
  poolIdleTimeoutMs?: number;
  workloads: Workload[];
  services: Service[];
  policies: Authorization[];
  listen?: Partial<ZtunnelPorts> & { host?: string };
}

export function loadZtunnelConfig(file: string): ZtunnelConfig {
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as ZtunnelConfig;
  for (const k of ['node', 'instanceIp', 'caDir'] as const) {
    if (typeof cfg[k] !== 'string' || !cfg[k]) throw new Error(`${file}: "${k}" is required`);
  }
  cfg.workloads ??= [];
  cfg.services ??= [];
  cfg.policies ??= [];
  return cfg;
}

export function portsOf(cfg: ZtunnelConfig): ZtunnelPorts {
  const { host: _host, ...ports } = cfg.listen ?? {};
  return { ...DEFAULT_PORTS, ...ports };
}
