const out = [];
for (const m of ['pino', './dist/mesh/hbone-server.js', './dist/mesh/pool.js', './dist/proxy/inputs.js', './dist/ztunnel/admin.js', './dist/ztunnel/ztunnel.js', './dist/ztunnel/config.js', './dist/apps/app-cli.js']) {
  const c0 = process.cpuUsage(); await import(m); const c = process.cpuUsage(c0); out.push(`${m.replace('./dist/','')} ${((c.user+c.system)/1000).toFixed(0)}`);
}
console.log(out.join(' | '));
