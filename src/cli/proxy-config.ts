// `lab proxy-config TARGET`: what an L7 proxy (today: a waypoint) runs, as tables, like
// `istioctl proxy-config`: listeners (the Services it serves and which ports are HTTP), routes
// (rules in order, with matches and weighted backends), clusters (with their endpoints and upstream
// pool gauges) and the L7 authorization it enforces. Read from the proxy's admin port (127.0.0.1:15000/config_dump).
import type { Argv } from 'yargs';
import { resolveLab, loadLab, resolveTarget } from './select.js';
import { run } from '../host/run.js';
import { printJson, table } from './output.js';
import { UserError } from '../util/errors.js';
import { ADMIN_PORT } from '../mesh/ports.js';
import type { HttpMatch, ServiceRoutes, L7AuthorizationPolicy, RetryPolicy } from '../l7/model.js';

const SECTIONS = ['all', 'listeners', 'routes', 'clusters', 'endpoints', 'authz'] as const;

function matchText(m: HttpMatch): string {
  const parts: string[] = [];
  if (m.path) parts.push(`path ${m.path.kind} ${m.path.value}`);
  if (m.method) parts.push(`method ${m.method}`);
  for (const h of m.headers ?? []) parts.push(`${h.invert ? '!' : ''}header ${h.name} ${h.kind} ${h.value}`);
  for (const q of m.queryParams ?? []) parts.push(`query ${q.name} ${q.kind} ${q.value}`);
  return parts.join(' & ') || '*';
}

export const proxyConfigCommand = {
  command: 'proxy-config <target> [section]',
  describe: 'Show what a waypoint or a sidecar proxy runs: listeners, routes, clusters, endpoints, L7 authorization (like istioctl proxy-config)',
  builder: (y: Argv) => y
    .positional('target', { type: 'string', describe: 'the waypoint pod (e.g. bookinfo-reviews-istio-waypoint) or a sidecar pod' })
    .positional('section', { choices: SECTIONS, default: 'all' })
    .option('lab', { type: 'string' })
    .option('json', { type: 'boolean', describe: 'the whole /config_dump' })
    .example('$0 proxy-config bookinfo-reviews-istio-waypoint routes', 'the route rules in order, with their backends and weights'),
  handler: async (argv: { target: string; section: (typeof SECTIONS)[number]; lab?: string; json?: boolean }) => {
    const { plan } = loadLab(await resolveLab(argv.lab));
    const t = resolveTarget(plan, argv.target);
    const isProxy = (p?: typeof t.pod) => !!p && (p.role === 'waypoint' || (p.role === 'workload' && p.mode === 'sidecar'));
    if (t.kind !== 'pod' || !isProxy(t.pod)) {
      const proxies = plan.pods.filter((p) => isProxy(p)).map((p) => p.name);
      throw new UserError(`"${argv.target}" is not a waypoint or a sidecar pod`, proxies.length ? `L7 proxies in this lab: ${proxies.join(', ')}` : 'this lab has no waypoint (a Gateway of class istio-waypoint makes one) and no sidecar pod; for a ztunnel use `lab ztunnel config NODE`');
    }
    const r = await run('curl', ['-s', '--max-time', '5', `http://127.0.0.1:${ADMIN_PORT}/config_dump`], { netns: t.netns, reject: false });
    if (r.exitCode !== 0) throw new UserError(`the ${t.pod?.role === 'waypoint' ? 'waypoint' : 'sidecar proxy'} in ${t.netns} does not answer on 127.0.0.1:${ADMIN_PORT}`, `check \`lab status\` and \`lab logs ${argv.target}\``);
    const dump = JSON.parse(r.stdout);
    if (argv.json) return printJson(dump);
    const out: string[] = [];
    const show = (s: (typeof SECTIONS)[number]) => argv.section === 'all' || argv.section === s;
    const v = dump.config;
    out.push(`${dump.kind ?? 'waypoint'} ${t.name} (${dump.identity}; config version ${v?.version}, ${v?.hash})`, '');
    if (show('listeners')) {
      const ls = (dump.listeners ?? []) as any[];
      if (ls.length && ls[0].ports) out.push(table(['service', 'vips', 'port', 'protocol'], ls.flatMap((l) => l.ports.map((p: any) => [l.service, (l.vips ?? []).join(','), p.port, p.protocol]))), '');
      else out.push(table(['listener', 'address', 'what'], ls.map((l) => [l.name ?? '', l.address ?? `${l.host ?? ''}:${l.port ?? ''}`, l.description ?? l.what ?? JSON.stringify(l)])), '');
    }
    if (show('routes')) {
      const rows = (dump.routes as ServiceRoutes[]).flatMap((sr) => sr.rules.map((rule, i) => [
        `${sr.host}${sr.port ? `:${sr.port}` : ''}`, i, rule.matches.map(matchText).join(' | ') || '*',
        rule.backends.map((b) => `${b.host.split('.')[0]}${b.subset ? `/${b.subset}` : ''}${b.port ? `:${b.port}` : ''} ${b.weight}`).join(', ') || (rule.redirect ? 'redirect' : rule.directResponse ? `direct ${rule.directResponse.status}` : ''),
        [rule.timeoutMs ? `timeout ${rule.timeoutMs}ms` : '', rule.retries ? `retries ${rule.retries.attempts} on ${rule.retries.retryOn.join(',')}` : '',
          rule.fault?.abort ? `abort ${rule.fault.abort.httpStatus} ${rule.fault.abort.percentage}%` : '', rule.fault?.delay ? `delay ${rule.fault.delay.fixedDelayMs}ms ${rule.fault.delay.percentage}%` : ''].filter(Boolean).join('; '),
        rule.origin,
      ]));
      // Istio's default route retries at a sidecar (2 attempts on connect-failure, refused-stream,
      // unavailable, cancelled, 503) and not at a waypoint; the dump says which applies here.
      const d = dump.defaultRouteRetries as RetryPolicy | undefined;
      const defaultRetries = d?.attempts ? `retries ${d.attempts} on ${[...d.retryOn, ...d.retriableStatusCodes].join(',')}` : 'no retries';
      out.push(rows.length ? table(['host', '#', 'match', 'backends (weight)', 'policy', 'from'], rows) : `routes: none (every Service goes to its default route: all endpoints, ${defaultRetries})`, '');
    }
    if (show('clusters') || show('endpoints')) {
      // Envoy's upstream_cx_active / upstream_rq_active / upstream_rq_pending_active, as the proxy read them from its pools.
      const pool = (u: any): string => (u ? `${u.cxActive}/${u.rqActive}/${u.rqPendingActive}` : '');
      out.push(table(['cluster', 'load balancer', 'endpoints', 'upstream cx/rq/pending'], ((dump.clusters ?? []) as any[]).map((c) => [c.name, c.loadBalancer ?? '', (c.endpoints ?? []).map((e: any) => (typeof e === 'string' ? e : `${e.address ?? e.ip}:${e.port ?? ''}${e.transport ? ` (${e.transport})` : ''}`)).join(',') || '(none)', pool(c.upstream)])), '');
    }
    if (show('authz')) {
      const pols = (dump.authorization ?? dump.l7Policies ?? []) as L7AuthorizationPolicy[];
      out.push(pols.length ? table(['policy', 'action', 'rules', 'from'], pols.map((p) => [`${p.namespace}/${p.name}`, p.action, p.rules.length, p.origin])) : 'L7 authorization: none (everything allowed)', '');
    }
    process.stdout.write(out.join('\n'));
  },
};
