// Istio and Gateway API objects, as users `kubectl apply` them, read into the lab's L7 model.
export { parseResources, mergeParsed, ROOT_NAMESPACE } from './parse.js';
export type { ParsedResources, ResourceRef } from './types.js';
export { validateResources } from './validate.js';
export type { TopologyFacts } from './validate.js';
