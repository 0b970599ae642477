// Applies a NetnsConfig (sysctls, ipsets, iptables, ip rules and routes) inside one
// netns with a single nsenter'd shell: one process per namespace keeps `lab up` fast.
import type { NetnsConfig } from '../plan/types.js';
import { renderIptablesRestore, renderIpsetRestore, ipRuleArgs, ipRouteArgs } from '../plan/iptables-render.js';
import { run } from './run.js';

const heredoc = (cmd: string, body: string, tag: string): string => `${cmd} <<'${tag}'\n${body.trimEnd()}\n${tag}`;

/** The shell script that applies `config`; pure, so it can be shown by `lab up --dry-run`. */
export function configScript(config: NetnsConfig): string {
  const parts: string[] = ['set -e'];
  const sysctls = Object.entries(config.sysctls);
  if (sysctls.length) parts.push(`sysctl -q -w ${sysctls.map(([k, v]) => `${k}=${v}`).join(' ')} >/dev/null`);
  if (config.ipsets?.length) parts.push(heredoc('ipset restore -exist', renderIpsetRestore(config.ipsets), 'IPSET_EOF'));
  if (config.ruleset && config.ruleset.rules.length + config.ruleset.chains.length > 0) {
    parts.push(heredoc('iptables-restore -w 5', renderIptablesRestore(config.ruleset), 'IPT_EOF'));
  }
  const ipLines = [
    ...config.rules.map((r) => ['rule', ...ipRuleArgs(r)].join(' ')),
    ...config.routes.map((r) => ['route', ...ipRouteArgs(r)].join(' ')),
  ];
  if (ipLines.length) parts.push(heredoc('ip -batch -', ipLines.join('\n'), 'IP_EOF'));
  return parts.join('\n') + '\n';
}

export const isEmptyConfig = (c: NetnsConfig): boolean =>
  !Object.keys(c.sysctls).length && !c.rules.length && !c.routes.length && !c.ipsets?.length && !c.ruleset?.rules.length;

export async function applyNetnsConfig(netns: string, config: NetnsConfig): Promise<void> {
  if (isEmptyConfig(config)) return;
  await run('sh', ['-c', configScript(config)], { netns });
}
