// What every proxy's config file holds (the lab writes one per proxy): who the proxy is,
// where its issued certificates are, and the control plane's view (workloads, Services,
// policies) in ztunnel's local-mode shape. Each proxy kind extends it with its listeners.
import { readFileSync } from 'node:fs';
import type { Authorization } from '../mesh/authz.js';
import type { MeshState, Service, Workload } from '../mesh/workloads.js';
import { contentHash } from './control-plane.js';

export interface ProxyConfig {
  /** NODE_NAME: same-node fast path. */
  node: string;
  clusterId: string;
  trustDomain: string;
  /** INSTANCE_IP: the proxy's own address. */
  instanceIp: string;
  /** The certificates issued to this proxy (mesh/cert-dir.ts); never the CA's key. */
  certDir: string;
  /** TLS secrets for tshark; else env SSLKEYLOGFILE. */
  keyLogFile?: string;
  /** ENABLE_ORIG_SRC: null/absent = best effort, true = required, false = off. */
  enableOrigSrc?: boolean | null;
  /** How long an HBONE session with no streams stays open. */
  poolIdleTimeoutMs?: number;
  workloads: Workload[];
  services: Service[];
  policies: Authorization[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses and checks a proxy config; `hash` names the exact bytes read. */
export function parseProxyConfig<C extends ProxyConfig>(file: string, text: string): { cfg: C; hash: string } {
  let cfg: C;
  try {
    cfg = JSON.parse(text) as C;
  } catch (e) {
    throw new ConfigError(`${file}: not JSON: ${(e as Error).message}`);
  }
  if ((cfg as { caDir?: unknown }).caDir !== undefined && cfg.certDir === undefined) {
    throw new ConfigError(`${file}: "caDir" is gone: a proxy gets issued certificates ("certDir"), never the CA key`);
  }
  for (const k of ['node', 'instanceIp', 'certDir'] as const) {
    if (typeof cfg[k] !== 'string' || !cfg[k]) throw new ConfigError(`${file}: "${k}" is required (a non-empty string)`);
  }
  for (const k of ['workloads', 'services', 'policies'] as const) {
    if (cfg[k] !== undefined && !Array.isArray(cfg[k])) throw new ConfigError(`${file}: "${k}" must be a list`);
  }
  cfg.workloads ??= [];
  cfg.services ??= [];
  cfg.policies ??= [];
  return { cfg, hash: contentHash(text) };
}

export function loadProxyConfig<C extends ProxyConfig>(file: string): { cfg: C; hash: string } {
  return parseProxyConfig<C>(file, readFileSync(file, 'utf8'));
}

export const meshStateOf = (cfg: ProxyConfig): MeshState => ({ workloads: cfg.workloads, services: cfg.services, policies: cfg.policies });
