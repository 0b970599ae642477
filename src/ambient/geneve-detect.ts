// Which Geneve the lab can use: the kernel's (ip link type geneve) or the userspace daemon
// on TAP devices. Probed in a throwaway network namespace (unshare), so nothing is left in
// the host's: the namespace and its link vanish when `ip` exits.
import { run } from '../host/run.js';

export type GeneveMode = 'kernel' | 'userspace';

export interface GeneveProbe {
  mode: GeneveMode;
  /** Why the kernel one is unusable ("Error: Unknown device type." without the module). */
  reason?: string;
}

export async function probeGeneve(): Promise<GeneveProbe> {
  const r = await run('unshare', ['--net', 'ip', 'link', 'add', 'gnvprobe', 'type', 'geneve', 'id', '1000', 'remote', '127.0.0.1'], {
    reject: false,
  });
  return r.exitCode === 0 ? { mode: 'kernel' } : { mode: 'userspace', reason: (r.stderr || r.stdout).trim() || `exit ${r.exitCode}` };
}
