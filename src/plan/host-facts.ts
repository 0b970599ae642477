// What `lab up` learns about the machine before planning (probed in a scratch namespace by
// host/probe.ts), and the decisions the plan derives from it. Kept apart from the probe so
// planning stays pure: golden tests pass facts in, the CLI passes in what it measured.
import type { TunnelMode } from '../topology/types.js';
import { UserError } from '../util/errors.js';

export interface HostFacts {
  /** `ip link add ... type geneve` works (the kernel has the geneve module). */
  kernelGeneve: boolean;
}

export type TunnelKind = 'kernel' | 'userspace';

/** `tunnel:` of the topology against the machine: which Geneve the lab builds. */
export function resolveTunnel(mode: TunnelMode, facts: HostFacts, file = 'the topology'): TunnelKind {
  if (mode === 'userspace') return 'userspace';
  if (mode === 'kernel' && !facts.kernelGeneve) {
    throw new UserError(
      `${file}: tunnel: kernel, but this kernel cannot create Geneve devices (no geneve module)`,
      'use `tunnel: auto` (userspace Geneve where the kernel has none) or `tunnel: userspace`; `lab doctor` shows what the kernel has',
    );
  }
  return facts.kernelGeneve ? 'kernel' : 'userspace';
}
