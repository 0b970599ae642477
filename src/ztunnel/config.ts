/**
 * The ztunnel process's configuration file (`--config <file>`, JSON). The lab writes one per
 * node (ztunnel/config-from-plan.ts); it plays the part of ztunnel's local (non-xDS) mode:
 * NODE_NAME, INSTANCE_IP, CLUSTER_ID and LOCAL_XDS_PATH in one file, plus the directory of
 * the certificates the lab issued to this ztunnel (istiod's CA role). The common fields are
 * every proxy's (proxy/config.ts); the file is reloaded on SIGHUP and when it changes.
 *
 * ```jsonc
 * {
 *   "node": "node-a",                 // NODE_NAME: same-node fast path
 *   "clusterId": "Kubernetes",
 *   "trustDomain": "cluster.local",
 *   "instanceIp": "10.244.0.2",       // INSTANCE_IP: outbound calls to it are refused (SelfCall)
 *   "certDir": "/run/ambient-lab/x/certs/ztunnel-node-a", // root-cert.pem + the node's HBONE workloads' certs and keys
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
import {
  ADMIN_PORT, DNS_CAPTURE_PORT, HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT, READINESS_PORT, STATS_PORT,
} from '../mesh/ports.js';
import { loadProxyConfig, type ProxyConfig } from '../proxy/config.js';
import type { ProxyInputs } from '../proxy/inputs.js';

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
  outbound: OUTBOUND_CAPTURE_PORT, inboundPlaintext: INBOUND_PLAINTEXT_PORT, inbound: HBONE_PORT,
  admin: ADMIN_PORT, stats: STATS_PORT, readiness: READINESS_PORT, dns: DNS_CAPTURE_PORT,
};

export interface ZtunnelConfig extends ProxyConfig {
  dnsCapture?: boolean;
  listen?: Partial<ZtunnelPorts> & { host?: string };
}

/** What every ztunnel listener gets. */
export type ZtunnelInputs = ProxyInputs<ZtunnelConfig>;

export function loadZtunnelConfig(file: string): { cfg: ZtunnelConfig; hash: string } {
  return loadProxyConfig<ZtunnelConfig>(file);
}

export function portsOf(cfg: ZtunnelConfig): ZtunnelPorts {
  const { host: _host, ...ports } = cfg.listen ?? {};
  return { ...DEFAULT_PORTS, ...ports };
}
