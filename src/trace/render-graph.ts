// The lab's topology as text diagrams: Mermaid (renders on GitHub) and Graphviz dot.
import type { LabPlan, PlannedPod } from '../topology/address-plan.js';

const id = (s: string): string => s.replace(/[^A-Za-z0-9_]/g, '_');

function podLabel(p: PlannedPod): string {
  if (p.role === 'ztunnel') return `${p.name}\\n${p.ip}\\nztunnel`;
  const mode = p.role === 'workload' ? `mode ${p.mode}` : p.role;
  return `${p.namespace}/${p.name}\\n${p.ip}\\n${mode}`;
}

export function topologyMermaid(plan: LabPlan): string {
  const L: string[] = ['flowchart TB'];
  L.push(`  underlay[["underlay ${plan.underlay.bridge}\\n${plan.underlay.cidr}"]]`);
  for (const n of plan.nodes) {
    L.push(`  subgraph ${id(`node_${n.name}`)}["node ${n.name}  eth0 ${n.ip}  pods ${n.podCidr}"]`);
    for (const p of plan.pods.filter((q) => q.node === n.name)) {
      const shape = p.role === 'ztunnel' ? ['{{', '}}'] : ['(', ')'];
      L.push(`    ${id(`pod_${p.key}`)}${shape[0]}"${podLabel(p).replace(/\\n/g, '<br/>')}"${shape[1]}`);
    }
    L.push('  end');
    L.push(`  ${id(`node_${n.name}`)} --- underlay`);
  }
  for (const s of plan.services) {
    const ports = s.ports.map((p) => `${p.port}->${p.targetPort}/${p.protocol}`).join(' ');
    L.push(`  ${id(`svc_${s.key}`)}[/"Service ${s.key}<br/>${s.vip} ${ports}"/]`);
    for (const e of s.endpoints) L.push(`  ${id(`svc_${s.key}`)} -.-> ${id(`pod_${e.pod}`)}`);
  }
  return `${L.join('\n')}\n`;
}

export function topologyDot(plan: LabPlan): string {
  const L: string[] = ['digraph lab {', '  rankdir=TB; compound=true; node [fontname="Helvetica", fontsize=10];'];
  L.push(`  underlay [shape=box, style=filled, fillcolor="#eeeeee", label="underlay ${plan.underlay.bridge}\\n${plan.underlay.cidr}"];`);
  for (const n of plan.nodes) {
    L.push(`  subgraph cluster_${id(n.name)} {`, `    label="node ${n.name}\\neth0 ${n.ip}, pods ${n.podCidr}"; style=rounded;`);
    L.push(`    ${id(`eth0_${n.name}`)} [shape=point, label=""];`);
    for (const p of plan.pods.filter((q) => q.node === n.name)) {
      const style = p.role === 'ztunnel' ? 'shape=hexagon, style=filled, fillcolor="#dbe9ff"' : p.mode === 'ambient' ? 'shape=box, style="rounded,filled", fillcolor="#e3f5e1"' : 'shape=box, style=rounded';
      L.push(`    ${id(`pod_${p.key}`)} [${style}, label="${podLabel(p)}"];`);
    }
    L.push('  }');
    L.push(`  ${id(`eth0_${n.name}`)} -> underlay [dir=none, label="eth0"];`);
  }
  for (const s of plan.services) {
    const ports = s.ports.map((p) => `${p.port}->${p.targetPort}/${p.protocol}`).join(' ');
    L.push(`  ${id(`svc_${s.key}`)} [shape=parallelogram, label="Service ${s.key}\\n${s.vip}\\n${ports}"];`);
    for (const e of s.endpoints) L.push(`  ${id(`svc_${s.key}`)} -> ${id(`pod_${e.pod}`)} [style=dashed];`);
  }
  L.push('}');
  return `${L.join('\n')}\n`;
}
