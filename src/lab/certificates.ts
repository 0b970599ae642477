// istiod's part at `lab up`: the lab CA, then each proxy's certificates for the identities the
// build gives it (CertSpec). The CA's private key stays in its directory; proxies read only
// their own cert directory.
import { chownSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LabBuild, ProcessSpec } from '../plan/lab-build.js';
import { parseSpiffe, type SpiffeId } from '../mesh/identity.js';

/**
 * Istio's 24 h certificates live because istiod rotates them; nothing rotates here, and a lab
 * left up over a weekend must keep working.
 */
export const LAB_CERT_TTL_MS = 30 * 24 * 3600_000;

export async function issueCertificates(build: LabBuild): Promise<void> {
  if (!build.ca) return;
  // Loaded here, not by whoever imports this module: `lab up` issues in a worker
  // (cert-worker.ts), so the X.509 library stays out of the CLI's main thread.
  const { createLabCa, issueProxyCerts } = await import('../mesh/ca.js');
  const ca = await createLabCa(build.ca.dir);
  for (const spec of build.certificates) {
    const ids = spec.identities.map((uri): SpiffeId => {
      const id = parseSpiffe(uri);
      if (!id) throw new Error(`${spec.owner}: ${uri} is not a SPIFFE identity`);
      return id;
    });
    await issueProxyCerts(ca, spec.dir, ids, { ttlMs: LAB_CERT_TTL_MS });
    if (spec.user) chownTree(spec.dir, spec.user);
  }
}

/** Hands a directory (and what is in it) to a proxy's user; paths come from the build, inside the state dir. */
export function chownTree(dir: string, user: { uid: number; gid: number }): void {
  chownSync(dir, user.uid, user.gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p, user);
    else chownSync(p, user.uid, user.gid);
  }
}

/** The directories processes own (ownDirs), created and handed to their users before they start. */
export function prepareOwnDirs(specs: ProcessSpec[]): void {
  for (const s of specs) {
    for (const d of s.ownDirs ?? []) {
      mkdirSync(d, { recursive: true });
      if (s.user) chownSync(d, s.user.uid, s.user.gid);
    }
  }
}
