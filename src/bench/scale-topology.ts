// Generated topologies for scale figures: N nodes x M pods, half httpbin (behind one
// Service per node) and half sleep, so growth per node and per pod is visible.
export function scaleTopologyYaml(nodes: number, podsPerNode: number, name = `scale-${nodes}x${podsPerNode}`): string {
  const lines = [`name: ${name}`, 'nodes:'];
  for (let n = 0; n < nodes; n++) lines.push(`  - name: n${n}`);
  lines.push('pods:');
  for (let n = 0; n < nodes; n++) {
    for (let p = 0; p < podsPerNode; p++) {
      const app = p % 2 === 0 ? 'httpbin' : 'sleep';
      lines.push(`  - {name: ${app}-${n}-${p}, node: n${n}, app: ${app}, labels: {app: ${app}-${n}}}`);
    }
  }
  lines.push('services:');
  for (let n = 0; n < nodes; n++) {
    lines.push(`  - {name: httpbin-${n}, selector: {app: httpbin-${n}}, ports: [{port: 8000, targetPort: 80}]}`);
  }
  return lines.join('\n') + '\n';
}
