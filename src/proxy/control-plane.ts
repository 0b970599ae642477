// The control plane's view, as a proxy holds it (istiod's role; ztunnel's ProxyState fed by
// xDS, or by its local config file as here): workloads, Services and policies, one immutable
// snapshot at a time. A reload builds a whole new snapshot and swaps the reference, so a
// connection that took the snapshot when it was accepted sees one consistent config for its
// whole life, and a new connection sees the new one. The version counts applied snapshots;
// the hash names their content (the config file's bytes), as config_dump shows them.
import { createHash } from 'node:crypto';
import { WorkloadStore, type MeshState } from '../mesh/workloads.js';

export interface ConfigVersion {
  /** 1 for the config the proxy started with, +1 per applied reload. */
  version: number;
  /** sha256 of the config's content, first 16 hex digits. */
  hash: string;
  loadedAt: string;
}

export interface MeshSnapshot extends ConfigVersion {
  store: WorkloadStore;
}

export const contentHash = (content: string | Buffer): string => createHash('sha256').update(content).digest('hex').slice(0, 16);

export class ControlPlane {
  private current: MeshSnapshot;

  constructor(state: MeshState, hash = contentHash(JSON.stringify(state))) {
    this.current = { version: 1, hash, loadedAt: new Date().toISOString(), store: new WorkloadStore(state) };
  }

  /** The snapshot to use for one connection: take it once, at accept. */
  get snapshot(): MeshSnapshot {
    return this.current;
  }

  get store(): WorkloadStore {
    return this.current.store;
  }

  get version(): ConfigVersion {
    const { version, hash, loadedAt } = this.current;
    return { version, hash, loadedAt };
  }

  /** Builds the new store first, then swaps: a bad state throws before anything changes. */
  apply(state: MeshState, hash = contentHash(JSON.stringify(state))): MeshSnapshot {
    const store = new WorkloadStore(state);
    this.current = { version: this.current.version + 1, hash, loadedAt: new Date().toISOString(), store };
    return this.current;
  }
}
