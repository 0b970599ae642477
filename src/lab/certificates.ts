// istiod's part at `lab up`: the lab CA, and the certificates of every proxy's identities.
import type { LabBuild } from '../plan/lab-build.js';
import { createLabCa } from '../mesh/ca.js';

export async function issueCertificates(build: LabBuild): Promise<void> {
  if (!build.ca) return;
  await createLabCa(build.ca.dir);
  // Per-proxy issuance (build.certificates) lands with the proxy core: until then each
  // ztunnel signs its workloads' certificates from the CA directory itself.
}
