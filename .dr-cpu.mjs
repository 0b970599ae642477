const c0 = process.cpuUsage(); const w0 = performance.now();
await import('./dist/ztunnel/ztunnel.js'); await import('pino'); await import('./dist/apps/app-cli.js'); await import('./dist/proxy/crash.js'); await import('./dist/ztunnel/config.js');
const c = process.cpuUsage(c0); const all = process.cpuUsage();
console.log(`boot cpu ${((all.user+all.system-c.user-c.system)/1000).toFixed(0)} ms (wall ${w0.toFixed(0)}), modules cpu ${((c.user+c.system)/1000).toFixed(0)} ms wall ${(performance.now()-w0).toFixed(0)}`);
