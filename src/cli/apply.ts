// `lab apply -f FILE`, `lab delete -f FILE`, `lab get [KIND]`: the Istio and Gateway API objects
// of a running lab, changed live as `kubectl apply` changes a cluster (src/lab/apply.ts).
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { parseDocument } from 'yaml';
import { applyObjects, listObjects, type ApplyResult } from '../lab/apply.js';
import { resolveLab } from './select.js';
import { printJson, table } from './output.js';
import { UserError } from '../util/errors.js';
import { readInputFile } from '../topology/load.js';

function readInput(file: string): { name: string; text: string } {
  if (file === '-') return { name: '<stdin>', text: readFileSync(0, 'utf8') };
  // The same guard as the topology's files: a device (/dev/zero), pipe or huge file is refused, never read forever.
  const r = readInputFile(file);
  if ('why' in r) throw new UserError(`${file}: cannot read it: ${r.why}`, 'give a YAML file of Kubernetes objects, or - for standard input');
  return { name: file, text: r.text };
}

/** `virtualservice.networking.istio.io/reviews configured`, as kubectl says it. */
const GROUPS: Record<string, string> = {
  Gateway: 'gateway.gateway.networking.k8s.io', HTTPRoute: 'httproute.gateway.networking.k8s.io',
  VirtualService: 'virtualservice.networking.istio.io', DestinationRule: 'destinationrule.networking.istio.io',
  AuthorizationPolicy: 'authorizationpolicy.security.istio.io', PeerAuthentication: 'peerauthentication.security.istio.io',
};

function report(r: ApplyResult, json: boolean): void {
  if (json) return printJson(r);
  const out: string[] = [];
  for (const c of r.changes) {
    const [kind, ns, name] = c.key.split('/');
    out.push(`${GROUPS[kind] ?? kind.toLowerCase()}/${name}${ns !== 'default' ? ` (namespace ${ns})` : ''} ${c.action}`);
  }
  for (const s of r.started) out.push(`started ${s}`);
  for (const s of r.stopped) out.push(`stopped ${s}`);
  if (r.reloaded.length) out.push(`config pushed to ${r.reloaded.map((p) => `${p.id}${p.version !== undefined ? ` (v${p.version})` : ''}`).join(', ')}`);
  for (const w of r.warnings) out.push(`warning: ${w}`);
  process.stdout.write(out.join('\n') + '\n');
}

const common = (y: Argv) => y
  .option('f', { alias: 'filename', type: 'string', demandOption: true, describe: 'YAML file of Kubernetes objects (multi-document), or - for standard input' })
  .option('lab', { type: 'string', describe: 'lab name (default: the only lab that is up)' })
  .option('json', { type: 'boolean', describe: 'print the result as JSON' })
  .option('timeout', { type: 'number', default: 10, describe: 'seconds to wait for every affected proxy to report the new config' });

export const applyCommand = {
  command: 'apply',
  describe: 'Apply Istio / Gateway API objects (Gateway, HTTPRoute, VirtualService, DestinationRule, AuthorizationPolicy, PeerAuthentication) to a running lab, live',
  builder: (y: Argv) => common(y)
    .example('$0 apply -f topologies/bookinfo/reviews-90-10-vs.yaml', 'route reviews 90/10; returns once the proxies run it')
    .epilogue('The file is validated first: any error exits 2 and changes nothing. Then the proxies get their new config without a restart, and `apply` returns when each one reports it. A new waypoint Gateway starts its pod; everything else is a config push.'),
  handler: async (argv: { f: string; lab?: string; json?: boolean; timeout: number }) => {
    const lab = await resolveLab(argv.lab);
    const input = readInput(argv.f);
    report(await applyObjects(lab, input.name, input.text, { timeoutMs: argv.timeout * 1000 }), !!argv.json);
  },
};

export const deleteCommand = {
  command: 'delete',
  describe: 'Remove objects that `lab apply` added (named by the same file), live',
  builder: (y: Argv) => common(y).option('ignore-not-found', { type: 'boolean', describe: 'objects that were not applied are not an error' }),
  handler: async (argv: { f: string; lab?: string; json?: boolean; timeout: number; ignoreNotFound?: boolean }) => {
    const lab = await resolveLab(argv.lab);
    const input = readInput(argv.f);
    report(await applyObjects(lab, input.name, input.text, { delete: true, ignoreNotFound: argv.ignoreNotFound, timeoutMs: argv.timeout * 1000 }), !!argv.json);
  },
};

const SHORT: Record<string, string> = { vs: 'VirtualService', dr: 'DestinationRule', gw: 'Gateway', pa: 'PeerAuthentication', ap: 'AuthorizationPolicy' };

/** A kind as kubectl takes it: `VirtualService`, `virtualservices`, `authorizationpolicies`, `vs`, `gateway.gateway.networking.k8s.io`. */
export function kindOf(arg: string): string {
  const want = arg.toLowerCase();
  if (Object.hasOwn(SHORT, want)) return SHORT[want];
  const bare = want.split('.')[0];
  const found = Object.keys(GROUPS).find((k) => {
    const l = k.toLowerCase();
    return [l, `${l}s`, l.replace(/y$/, 'ies')].includes(bare);
  });
  if (!found) throw new UserError(`unknown kind "${arg}"`, `expected one of ${Object.keys(GROUPS).join(', ')} (plural or short forms: ${Object.keys(SHORT).join(', ')})`);
  return found;
}

export const getCommand = {
  command: 'get [kind]',
  describe: 'List the Istio / Gateway API objects of a lab: from its topology file and applied since',
  builder: (y: Argv) => y
    .positional('kind', { type: 'string', describe: 'only this kind (e.g. VirtualService, virtualservices, vs)' })
    .option('lab', { type: 'string' })
    .option('o', { alias: 'output', choices: ['table', 'yaml', 'json'] as const, default: 'table' }),
  handler: async (argv: { kind?: string; lab?: string; o: 'table' | 'yaml' | 'json' }) => {
    const norm = argv.kind === undefined ? undefined : kindOf(argv.kind);
    const lab = await resolveLab(argv.lab);
    const objs = listObjects(lab).filter((o) => !norm || o.kind === norm);
    if (argv.o === 'json') return printJson(objs);
    if (argv.o === 'yaml') {
      // An object is kept as the user wrote it, indented as it was in a list: print it at column 0.
      return void process.stdout.write(objs.map((o) => (o.text !== undefined ? parseDocument(o.text).toString() : `# ${o.kind} ${o.namespace}/${o.name}: defined in ${o.source}\n`)).join('---\n'));
    }
    if (!objs.length) return void process.stdout.write(`no objects${norm ? ` of kind ${argv.kind}` : ''} in lab "${lab}"\n`);
    process.stdout.write(table(['kind', 'namespace', 'name', 'source'], objs.map((o) => [o.kind, o.namespace, o.name, o.source])) + '\n');
  },
};
