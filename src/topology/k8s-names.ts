// Kubernetes' name and label rules (apimachinery validation), phrased so the user
// learns which rule a value broke. Each check returns the problem, or undefined.

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// Label keys' name part and label values: alphanumeric ends, '-', '_' and '.' inside, mixed case.
const QUALIFIED = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

const tooLong = (s: string, max: number): string => (s.length > max ? ` (it has ${s.length})` : '');

/** DNS-1123 label: what Namespace, Service and (here) node and lab names must be. */
export function dns1123LabelProblem(value: string, max = 63): string | undefined {
  if (value.length <= max && LABEL.test(value)) return undefined;
  return `invalid name "${value}": must be a DNS-1123 label: lowercase letters, digits and '-', ` +
    `start and end with a letter or digit, at most ${max} characters${tooLong(value, max)}`;
}

/** DNS-1123 subdomain: what Pod, ServiceAccount and AuthorizationPolicy names must be. */
export function dns1123SubdomainProblem(value: string, max = 253): string | undefined {
  if (value.length <= max && SUBDOMAIN.test(value)) return undefined;
  return `invalid name "${value}": must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', ` +
    `start and end with a letter or digit (also around each '.'), at most ${max} characters${tooLong(value, max)}`;
}

/** Service port names follow IANA_SVC_NAME rules. */
export function portNameProblem(value: string): string | undefined {
  if (value.length <= 15 && LABEL.test(value) && /[a-z]/.test(value) && !value.includes('--')) return undefined;
  return `invalid port name "${value}": must be an IANA service name: lowercase letters, digits and '-', ` +
    `at least one letter, no '--', start and end with a letter or digit, at most 15 characters${tooLong(value, 15)}`;
}

/** Label key: optional DNS-1123 subdomain prefix and '/', then a name of at most 63 characters. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const rule = `must be an optional DNS-1123 subdomain prefix and '/', then a name of at most 63 characters: ` +
    `letters, digits, '-', '_' and '.', starting and ending with a letter or digit`;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !SUBDOMAIN.test(prefix))) {
    return `invalid label key "${key}": the prefix "${prefix}" ${rule}`;
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED.test(name)) return `invalid label key "${key}": ${rule}`;
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (value === '' || (value.length <= 63 && QUALIFIED.test(value))) return undefined;
  return `invalid label value "${value}": must be empty or at most 63 characters: letters, digits, '-', '_' and '.', ` +
    `starting and ending with a letter or digit${tooLong(value, 63)}`;
}
