const t0 = performance.now();
const mods = process.argv.slice(2);
const out = [`node start->script ${t0.toFixed(0)}`];
for (const m of mods) { const a = performance.now(); await import(m); out.push(`${m} ${(performance.now()-a).toFixed(0)}`); }
console.log(out.join(' | '));
