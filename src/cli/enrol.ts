// `lab enrol POD`, `lab unenrol POD` and `lab label namespace NS istio.io/dataplane-mode=ambient|-`:
// a running pod into or out of the ambient mesh, live, as istio-cni does (src/lab/enrol.ts).
import type { Argv } from 'yargs';
import { setEnrolment, selectPod, selectNamespace, parseDataplaneLabel, type EnrolResult } from '../lab/enrol.js';
import { resolveLab } from './select.js';
import { printJson } from './output.js';
import { UserError } from '../util/errors.js';

function report(r: EnrolResult, enrol: boolean, json: boolean, header?: string): void {
  if (json) return printJson(r);
  const out: string[] = header ? [header] : [];
  for (const c of r.changed) out.push(`pod ${c.pod} (${c.node}, ${c.ip}) ${enrol ? 'enrolled: mode ambient, ztunnels send it HBONE' : 'unenrolled: mode none, plain TCP'}`);
  for (const p of r.unchanged) out.push(`pod ${p} already ${enrol ? 'enrolled' : 'not enrolled'} (unchanged)`);
  for (const s of r.skipped) out.push(`skipped ${s.why}`);
  for (const k of r.kernel) out.push(`  ${k.netns}: ${k.command}`);
  if (r.reloaded.length) out.push(`config pushed to ${r.reloaded.map((p) => `${p.id}${p.version !== undefined ? ` (v${p.version})` : ''}`).join(', ')}`);
  process.stdout.write(out.join('\n') + '\n');
}

const common = (y: Argv) => y
  .option('lab', { type: 'string', describe: 'lab name (default: the only lab that is up)' })
  .option('json', { type: 'boolean', describe: 'print the result as JSON' })
  .option('timeout', { type: 'number', default: 10, describe: 'seconds to wait for every ztunnel to report the new config' });

const podVerb = (enrol: boolean) => ({
  command: `${enrol ? 'enrol' : 'unenrol'} <pod>`,
  describe: enrol
    ? 'Enrol a running pod in ambient, live (ipset, table 100 route, ztunnel config), as istio-cni does; no restart'
    : 'Take a running pod out of ambient, live (its traffic goes plain again); no restart',
  builder: (y: Argv) => common(y).positional('pod', { type: 'string', describe: 'pod: NAME or NAMESPACE/NAME' }),
  handler: async (argv: { pod: string; lab?: string; json?: boolean; timeout: number }) => {
    const lab = await resolveLab(argv.lab);
    report(await setEnrolment(lab, `pod/${argv.pod}`, (plan) => selectPod(plan, argv.pod), enrol, argv.timeout * 1000), enrol, !!argv.json);
  },
});

export const enrolCommand = podVerb(true);
export const unenrolCommand = podVerb(false);

export const labelCommand = {
  command: 'label <kind> <name> <label>',
  describe: `Label a namespace as kubectl does; istio.io/dataplane-mode=ambient enrols its pods live, istio.io/dataplane-mode- unenrols them`,
  builder: (y: Argv) => common(y)
    .positional('kind', { type: 'string', describe: 'namespace (ns)' })
    .positional('name', { type: 'string', describe: 'the namespace' })
    .positional('label', { type: 'string', describe: 'istio.io/dataplane-mode=ambient or istio.io/dataplane-mode-' })
    .example('$0 label namespace default istio.io/dataplane-mode-', "take default's pods out of the mesh"),
  handler: async (argv: { kind: string; name: string; label: string; lab?: string; json?: boolean; timeout: number }) => {
    if (!['namespace', 'namespaces', 'ns'].includes(argv.kind)) {
      throw new UserError(`lab label acts on namespaces, not "${argv.kind}"`, 'lab label namespace NAME istio.io/dataplane-mode=ambient (or lab enrol POD for one pod)');
    }
    const enrol = parseDataplaneLabel(argv.label);
    const lab = await resolveLab(argv.lab);
    const r = await setEnrolment(lab, `namespace/${argv.name}`, (plan) => selectNamespace(plan, argv.name), enrol, argv.timeout * 1000);
    report(r, enrol, !!argv.json, `namespace/${argv.name} ${enrol ? 'labeled' : 'unlabeled'}`);
  },
};
