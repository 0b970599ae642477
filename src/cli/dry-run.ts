// `lab up --dry-run`: the whole build as a person reads it: per namespace the ip batch and the
// config script that `up` would run there, then files, certificates and processes.
import type { LabBuild } from '../plan/lab-build.js';
import { configScript, isEmptyConfig } from '../host/netns-config.js';

const indent = (text: string, by = '    '): string => text.trimEnd().split('\n').map((l) => by + l).join('\n');

export function renderBuild(build: LabBuild): string {
  const out: string[] = [];
  out.push(`lab "${build.lab}": dry run, nothing was created (${build.tunnel ? `Geneve: ${build.tunnel}` : 'no mesh'})`, '');
  out.push(`== ${build.netns.length} network namespaces`);
  for (const n of build.netns) {
    out.push('', `netns ${n.netns} (${n.kind})`, '  ip -batch:', indent(n.links.join('\n')));
    if (!isEmptyConfig(n.config)) out.push('  config (sh, nsenter\'d):', indent(configScript(n.config)));
  }
  out.push('', `== ${build.files.length} files`);
  for (const f of build.files) out.push(`  ${f.path} (${Buffer.byteLength(f.content)} bytes)`);
  if (build.ca) out.push('', `== lab CA in ${build.ca.dir}`);
  if (build.certificates.length) {
    out.push('', `== certificates (${build.certificates.reduce((n, c) => n + c.identities.length, 0)} identities)`);
    for (const c of build.certificates) out.push(`  ${c.owner} -> ${c.dir}`, ...c.identities.map((i) => `    ${i}`));
  }
  out.push('', `== ${build.processes.length} processes`);
  for (const p of build.processes) {
    const user = p.user ? ` uid ${p.user.uid} gid ${p.user.gid}` : '';
    out.push(`  ${p.id} (${p.role}) in ${p.netns}${user}`, `    ${p.argv.join(' ')}`);
  }
  return out.join('\n') + '\n';
}
