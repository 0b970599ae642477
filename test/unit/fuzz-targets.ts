// The two inputs a user hands the lab, each with its seeds and the pipeline it goes through:
// topology files (`lab up FILE`) and object files (`lab apply -f FILE`).
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { CLASSICS, mutatedDocs, seedOf, seedsFrom, type FuzzDoc, type Seed } from './fuzz-mutate.js';
import { applyPlan, classify, upDryRun, type Outcome } from './fuzz-pipeline.js';

export type TargetName = 'topology' | 'apply';

export interface Target {
  seeds: Seed[];
  docs: fc.Arbitrary<FuzzDoc>;
  run: (doc: FuzzDoc) => Outcome;
}

/** Where a seed topology lives decides how its relative manifests resolve: keep its path. */
const topologyFileOf = (doc: FuzzDoc): string => (doc.seed.endsWith('.yaml') ? doc.seed : 'topologies/fuzz.yaml');

/** Istio's own samples as pasted in test/unit/istio-samples.test.ts (template literals). */
function istioSamples(): Seed[] {
  const src = readFileSync('test/unit/istio-samples.test.ts', 'utf8');
  return [...src.matchAll(/`(apiVersion:[^`]*)`/g)].map((m) => m[1]).filter((x) => !x.includes('${')).map((text, i) => seedOf(`istio-samples#${i + 1}`, text));
}

/** The lab each object file is applied to: the topology its objects were written for. */
function baseTopologyOf(seed: string): string {
  if (seed.startsWith('test/fixtures/apply/')) return 'test/fixtures/topologies/apply.yaml';
  return 'topologies/bookinfo.yaml';
}

/**
 * Mostly the good files mutated (a few mutations leave most of a document valid, so the deep
 * checks and the planner are reached), some of the known-bad ones, and the classics.
 */
const withClassics = (good: Seed[], bad: Seed[]): fc.Arbitrary<FuzzDoc> => fc.oneof(
  { weight: 14, arbitrary: mutatedDocs(good) },
  { weight: 5, arbitrary: mutatedDocs(bad) },
  { weight: 1, arbitrary: fc.constantFrom(...CLASSICS).map((c) => ({ seed: `classic: ${c.name}`, ops: [], text: c.text })) },
);

/** `maxMs`: the bound on one document (generous: the machine may be loaded; a hang is minutes). */
export function fuzzTargets(maxMs = 10_000): Record<TargetName, Target> {
  const topologySeeds = [...seedsFrom('topologies'), ...seedsFrom('test/fixtures/topologies')];
  const badTopologies = seedsFrom('test/golden/bad-topologies');
  const applySeeds = [...seedsFrom('test/fixtures/apply'), ...seedsFrom('topologies/bookinfo'), ...istioSamples()];
  const badResources = seedsFrom('test/golden/bad-resources');
  return {
    topology: {
      seeds: [...topologySeeds, ...badTopologies],
      docs: withClassics(topologySeeds, badTopologies),
      run: (doc) => classify(() => upDryRun(doc.text, topologyFileOf(doc)), maxMs),
    },
    apply: {
      seeds: [...applySeeds, ...badResources],
      docs: withClassics(applySeeds, badResources),
      run: (doc) => classify(() => applyPlan(doc.text, 'fuzz-apply.yaml', baseTopologyOf(doc.seed)), maxMs),
    },
  };
}
