// Config reload, for every proxy: on SIGHUP or when its config file changes, the proxy
// re-reads the file, re-reads its issued certificates, and swaps both in at once (see
// control-plane.ts). Open connections keep the snapshot they started with; listeners keep
// their sockets (a changed port needs a restart). A file that does not parse is logged and
// ignored: the proxy keeps serving the last good config.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadProxyConfig, meshStateOf, type ProxyConfig } from './config.js';
import type { ProxyInputs } from './inputs.js';
import type { ConfigVersion } from './control-plane.js';

/** Read once at start (sockets, dialer, pool, key log, cert dir): a reload cannot change them. */
const RESTART_ONLY = ['node', 'instanceIp', 'certDir', 'keyLogFile', 'enableOrigSrc', 'poolIdleTimeoutMs', 'listen', 'dnsCapture'] as const;

export type ReloadTrigger = 'SIGHUP' | 'file' | 'api';

export type ReloadResult = { applied: true; version: ConfigVersion } | { applied: false; reason: string };

export interface Reloader {
  reload(trigger: ReloadTrigger): ReloadResult;
  close(): void;
}

export interface ReloaderOptions {
  /** Re-reads the issued certificates (mesh/cert-dir.ts); a failure aborts the reload. */
  reloadCerts?(): void;
  /** Debounce for file events: an editor or a rename fires several. */
  debounceMs?: number;
  /** Watch the file (default true). */
  watch?: boolean;
  /** After a config is swapped in: proxies with state beyond the control plane's view (the L7 engine's routes) update it here. */
  onApplied?(cfg: ProxyConfig): void;
}

export function createReloader<C extends ProxyConfig>(z: ProxyInputs<C>, file: string, opts: ReloaderOptions = {}): Reloader {
  const reload = (trigger: ReloadTrigger): ReloadResult => {
    let next: { cfg: C; hash: string };
    try {
      next = loadProxyConfig<C>(file);
      // A file event with the bytes we already run is an editor's or rename's echo; a
      // SIGHUP always reloads, since the certificates may have changed on their own.
      if (trigger === 'file' && next.hash === z.xds.version.hash) return { applied: false, reason: 'unchanged' };
      opts.reloadCerts?.();
    } catch (e) {
      z.log.error({ err: (e as Error).message, trigger, file, version: z.xds.version.version }, 'config reload failed; keeping the running config');
      return { applied: false, reason: (e as Error).message };
    }
    const was = z.cfg as unknown as Record<string, unknown>;
    const now = next.cfg as unknown as Record<string, unknown>;
    const stuck = RESTART_ONLY.filter((k) => JSON.stringify(now[k]) !== JSON.stringify(was[k]));
    if (stuck.length) z.log.warn({ fields: stuck, trigger }, 'config fields changed that only apply after a restart');
    // Both swaps happen in one turn of the event loop: no connection sees half of them.
    z.xds.apply(meshStateOf(next.cfg), next.hash);
    z.cfg = next.cfg;
    opts.onApplied?.(next.cfg);
    const version = z.xds.version;
    z.log.info({ version: version.version, hash: version.hash, trigger }, 'config reloaded');
    return { applied: true, version };
  };

  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (opts.watch ?? true) {
    // Watch the directory, not the file: the lab replaces the file by rename, and a watch on
    // the old inode would never fire again.
    const name = basename(file);
    watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed !== name) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => void reload('file'), opts.debounceMs ?? 100);
      timer.unref();
    });
    watcher.on('error', (e) => z.log.warn({ err: e.message, file }, 'config watch failed; SIGHUP still reloads'));
  }
  return {
    reload,
    close() {
      if (timer) clearTimeout(timer);
      watcher?.close();
    },
  };
}
