// SPIFFE identities as Istio spells them: spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>.
// Certificates carry the URI form; RBAC principals drop the scheme ("cluster.local/ns/x/sa/y").

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

export interface SpiffeId {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

export const formatSpiffe = (id: SpiffeId): string => `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;

/** The RBAC principal form: the URI without `spiffe://`. */
export const principalOf = (id: SpiffeId): string => `${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;

const SPIFFE_RE = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** Parses `spiffe://td/ns/x/sa/y`; undefined for anything else (other URI shapes are not Istio identities). */
export function parseSpiffe(uri: string): SpiffeId | undefined {
  const m = SPIFFE_RE.exec(uri);
  return m ? { trustDomain: m[1], namespace: m[2], serviceAccount: m[3] } : undefined;
}

export const sameIdentity = (a: SpiffeId, b: SpiffeId): boolean =>
  a.trustDomain === b.trustDomain && a.namespace === b.namespace && a.serviceAccount === b.serviceAccount;

export const inTrustDomain = (id: SpiffeId, trustDomain: string): boolean => id.trustDomain === trustDomain;

/**
 * The SPIFFE identity of a peer certificate as Node reports it (`subjectaltname` is
 * "URI:spiffe://..., DNS:..."). Istio certs carry exactly one URI SAN; we take the first SPIFFE one.
 */
export function identityFromSubjectAltName(san: string | undefined): SpiffeId | undefined {
  if (!san) return undefined;
  for (const part of san.split(/,\s*/)) {
    if (part.startsWith('URI:')) {
      const id = parseSpiffe(part.slice(4));
      if (id) return id;
    }
  }
  return undefined;
}
