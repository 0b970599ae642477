// The cluster DNS pod (kube-system/coredns on the first node): its records file and server.
import type { PodKind } from '../pod-kinds.js';
import { buildDnsRecords } from '../../apps/dns-records.js';

export const dnsKind: PodKind = {
  name: 'dns',
  role: 'dns',
  description: 'cluster DNS (CoreDNS\'s role): Service names to ClusterIPs, behind the kube-dns VIP',
  planPod(ctx, pod) {
    const config = `${ctx.paths.stateDir}/dns.json`;
    const records = buildDnsRecords(ctx.plan.services.map((s) => ({ name: s.name, namespace: s.namespace, vip: s.vip })));
    ctx.file({ path: config, content: JSON.stringify(records, null, 2) });
    const name = `${pod.namespace}.${pod.name}`;
    const ready = ctx.readyFile(name);
    ctx.process({
      id: `pod/${pod.key}`, role: 'dns', netns: pod.netns, pod: pod.key, node: pod.node, log: ctx.logFile(name),
      argv: [ctx.paths.node, `${ctx.paths.distDir}/apps/dns-server.js`, '--config', config, '--port', '53', '--ready-file', ready],
      readyFile: ready,
      restart: 'always',
      startFirst: true,
    });
  },
};
