import type { Argv } from 'yargs';
import { writeFileSync } from 'node:fs';
import { resolveLab, loadLab } from './select.js';
import { topologyDot, topologyMermaid } from '../trace/render-graph.js';
import { renderTraceSvg } from '../trace/render-svg.js';

export const graphCommand = {
  command: 'graph',
  describe: 'Draw the lab: nodes, pods with their modes, ztunnels, Services (Mermaid, Graphviz dot or SVG)',
  builder: (y: Argv) =>
    y
      .option('lab', { type: 'string' })
      .option('mermaid', { type: 'boolean', describe: 'Mermaid flowchart (default)' })
      .option('dot', { type: 'boolean', describe: 'Graphviz dot' })
      .option('svg', { type: 'string', describe: 'write an SVG drawing to this file' })
      .conflicts('mermaid', 'dot')
      .example('$0 graph --svg lab.svg', 'a picture of the lab'),
  handler: async (argv: { lab?: string; mermaid?: boolean; dot?: boolean; svg?: string }) => {
    const { plan } = loadLab(await resolveLab(argv.lab));
    if (argv.svg) {
      writeFileSync(argv.svg, renderTraceSvg(plan));
      if (!argv.dot && !argv.mermaid) return;
    }
    process.stdout.write(argv.dot ? topologyDot(plan) : topologyMermaid(plan));
  },
};
