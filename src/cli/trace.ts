import type { Argv } from 'yargs';
import { writeFileSync } from 'node:fs';
import { checkedLabArg, resolveLab, loadLab, resolveTarget } from './select.js';
import { UserError } from '../util/errors.js';
import { parseHeader, parseRequestTarget } from '../trace/request.js';
import { runTrace } from '../trace/run-trace.js';
import { renderHopTable } from '../trace/render-table.js';
import { renderTraceSvg, wrapHtml } from '../trace/render-svg.js';

export const traceCommand = {
  command: 'trace <src> <target>',
  describe: 'Make one request from a pod and show every hop it took: interfaces, tunnels, marks, routes, rules',
  builder: (y: Argv) =>
    y
      .positional('src', { type: 'string', describe: 'source pod (`sleep`, `default/sleep`)', demandOption: true })
      .positional('target', { type: 'string', describe: 'URL (curl) or IP:PORT (TCP connect and a short write)', demandOption: true })
      .option('lab', { type: 'string' })
      .option('json', { type: 'boolean', describe: 'print the hops as JSON' })
      .option('out', { type: 'string', describe: 'directory for per-hop pcaps, merged.pcapng, keys.log, trace.json' })
      .option('svg', { type: 'string', describe: 'draw the path on the topology into this SVG file' })
      .option('html', { type: 'string', describe: 'the drawing and the hop table as one HTML page' })
      .option('method', { alias: 'X', type: 'string', describe: 'HTTP method of the request (URLs only), e.g. POST' })
      .option('header', { alias: 'H', type: 'string', array: true, describe: 'extra request header "Name: value" (URLs only); repeatable' })
      .example('$0 trace sleep http://httpbin:8000/ip', 'follow a request through both ztunnels')
      .example('$0 trace sleep 10.244.1.3:80 --out /tmp/t', 'keep the captures; open /tmp/t/merged.pcapng in Wireshark')
      .example('$0 trace sleep http://reviews:9080/hostname -X POST', 'through a waypoint: its route, backend, or its 403')
      .example('$0 trace sleep-sc http://httpbin-mtls:8000/ip', 'from a sidecar pod: REDIRECT to 15001, Istio mTLS, REDIRECT to 15006'),
  handler: async (argv: { src: string; target: string; lab?: string; json?: boolean; out?: string; svg?: string; html?: string; method?: string; header?: string[] }) => {
    checkedLabArg(argv.lab);
    const target = parseRequestTarget(argv.target);
    if (!target) throw new UserError(`"${argv.target}" is neither a URL nor IP:PORT`, 'e.g. http://httpbin:8000/ip or 10.96.0.11:8000');
    if (argv.method !== undefined || argv.header?.length) {
      if (target.kind !== 'url') throw new UserError(`--method and --header need a URL, not "${argv.target}"`, 'e.g. lab trace sleep http://reviews:9080/hostname -X POST');
      if (argv.method !== undefined) {
        if (!/^[A-Za-z]+$/.test(argv.method)) throw new UserError(`--method "${argv.method}" is not an HTTP method`, 'e.g. GET, POST, DELETE');
        target.method = argv.method.toUpperCase();
      }
      for (const h of argv.header ?? []) {
        const kv = parseHeader(String(h));
        if (!kv) throw new UserError(`--header "${h}" is not a header`, 'the form is "Name: value", e.g. -H "end-user: jason"');
        target.headers = { ...target.headers, [kv[0]]: kv[1] };
      }
    }
    const { plan, state } = loadLab(await resolveLab(argv.lab));
    const src = resolveTarget(plan, argv.src);
    if (src.kind !== 'pod' || !src.pod) throw new UserError(`"${argv.src}" is not a pod`, 'the source of a trace is a pod, e.g. sleep');
    // The proxies' logs say what packets cannot: a waypoint's or sidecar's route, backend and verdict, the tunnels' identities.
    const proxyLogs = state.processes.filter((p) => p.role === 'ztunnel' || p.role === 'waypoint' || p.role === 'sidecar').map((p) => ({ netns: p.netns, file: p.log }));
    const report = await runTrace({ plan, source: src.pod, target, proxyLogs, ...(argv.out ? { outDir: argv.out } : {}) });
    if (argv.svg) writeFileSync(argv.svg, renderTraceSvg(plan, report));
    if (argv.html) writeFileSync(argv.html, wrapHtml(`lab trace ${argv.src} ${argv.target}`, renderTraceSvg(plan, report), renderHopTable(report)));
    process.stdout.write(argv.json ? `${JSON.stringify(report, null, 2)}\n` : renderHopTable(report));
    if (!report.hops.length) process.exitCode = 1;
  },
};
