// A user's pod: its app (a built-in or `command:`). Enrolment in ambient is the ztunnel kind's
// business (istio-cni's node part), as in Istio, where the CNI plugin, not the pod, does it.
import type { PodKind } from '../pod-kinds.js';
import type { PlanContext, ProcessSpec } from '../lab-build.js';
import type { PlannedPod } from '../../topology/address-plan.js';

/** Port each built-in server app listens on. */
export const APP_PORTS: Record<string, number> = { httpbin: 80, echo: 9000 };

export function appProcess(ctx: PlanContext, pod: PlannedPod): ProcessSpec {
  const name = `${pod.namespace}.${pod.name}`;
  const base = { id: `pod/${pod.key}`, role: 'app' as const, netns: pod.netns, pod: pod.key, node: pod.node, log: ctx.logFile(name) };
  if (pod.command) return { ...base, argv: pod.command };
  if (pod.app === 'sleep' || !pod.app) return { ...base, argv: ['sleep', 'infinity'] };
  const ready = ctx.readyFile(name);
  return {
    ...base,
    argv: [ctx.paths.node, `${ctx.paths.distDir}/apps/${pod.app}.js`, '--port', String(APP_PORTS[pod.app]), '--name', pod.name, '--ready-file', ready],
    readyFile: ready,
  };
}

export const workloadKind: PodKind = {
  role: 'workload',
  description: 'a user pod running its app (sleep, httpbin, echo or a command)',
  planPod(ctx, pod) {
    ctx.process(appProcess(ctx, pod));
  },
};
