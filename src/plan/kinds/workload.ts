// A user's pod: its app (a built-in or `command:`). Enrolment in ambient is the ztunnel kind's
// business (istio-cni's node part), as in Istio, where the CNI plugin, not the pod, does it.
import type { PodKind } from '../pod-kinds.js';
import type { PlanContext, ProcessSpec } from '../lab-build.js';
import type { PlannedPod } from '../../topology/address-plan.js';

/** Port each built-in server app listens on. */
export const APP_PORTS: Record<string, number> = {
  httpbin: 80, echo: 9000, productpage: 9080, details: 9080, 'reviews-v1': 9080, 'reviews-v2': 9080, 'reviews-v3': 9080, ratings: 9080,
};

/** Apps whose program is not `dist/apps/<app>.js`: bookinfo's, and reviews' version flag. */
const APP_ENTRIES: Record<string, string[]> = {
  productpage: ['bookinfo-productpage.js'],
  details: ['bookinfo-details.js'],
  ratings: ['bookinfo-ratings.js'],
  'reviews-v1': ['bookinfo-reviews.js', '--version', 'v1'],
  'reviews-v2': ['bookinfo-reviews.js', '--version', 'v2'],
  'reviews-v3': ['bookinfo-reviews.js', '--version', 'v3'],
};

export function appProcess(ctx: PlanContext, pod: PlannedPod): ProcessSpec {
  const name = `${pod.namespace}.${pod.name}`;
  const base = { id: `pod/${pod.key}`, role: 'app' as const, netns: pod.netns, pod: pod.key, node: pod.node, log: ctx.logFile(name) };
  if (pod.command) return { ...base, argv: pod.command };
  if (pod.app === 'sleep' || !pod.app) return { ...base, argv: ['sleep', 'infinity'] };
  const ready = ctx.readyFile(name);
  const [script, ...flags] = APP_ENTRIES[pod.app] ?? [`${pod.app}.js`];
  return {
    ...base,
    argv: [ctx.paths.node, `${ctx.paths.distDir}/apps/${script}`, ...flags, '--port', String(APP_PORTS[pod.app]), '--name', pod.name, '--ready-file', ready],
    readyFile: ready,
  };
}

export const workloadKind: PodKind = {
  name: 'workload',
  role: 'workload',
  description: 'a user pod running its app (sleep, httpbin, echo, a bookinfo service or a command)',
  planPod(ctx, pod) {
    ctx.process(appProcess(ctx, pod));
  },
};
