const out = [];
for (const m of ['./dist/host/sys.js', 'pino', './dist/ztunnel/ztunnel.js']) {
  const c0 = process.cpuUsage(); const w=performance.now(); await import(m); const c = process.cpuUsage(c0); out.push(`${m.replace('./dist/','')} ${((c.user+c.system)/1000).toFixed(0)} cpu ${(performance.now()-w).toFixed(0)} wall`);
}
console.log(out.join(' | '));
