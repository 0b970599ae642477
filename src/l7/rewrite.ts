// Redirects and rewrites of a matched rule: the Location a redirect answers with, and the
// path and Host the upstream sees after a rewrite. "prefixPath" replaces the part of the path
// the rule's path match consumed (Envoy prefix_rewrite; Gateway API ReplacePrefixMatch, which
// keeps exactly one '/' at the seam); "path" replaces the whole path. The query string is kept
// unless the new path brings its own.
import type { HttpMatch, Redirect, Rewrite } from './model.js';
import { splitPath } from './route-match.js';

/** The path prefix a match consumed: its Prefix/PathPrefix/Exact value; "/" for anything else (Istio's implicit prefix "/"). */
export function matchedPrefix(match: HttpMatch | undefined): { value: string; segmentWise: boolean } {
  const p = match?.path;
  if (!p || p.kind === 'RegularExpression') return { value: '/', segmentWise: false };
  if (p.kind === 'PathPrefix') return { value: p.value.length > 1 && p.value.endsWith('/') ? p.value.slice(0, -1) : p.value, segmentWise: true };
  return { value: p.value, segmentWise: false };
}

export function replacePrefix(path: string, match: HttpMatch | undefined, replacement: string): string {
  const { value, segmentWise } = matchedPrefix(match);
  if (!path.startsWith(value)) return path;
  const rest = path.slice(value.length);
  if (!segmentWise) return replacement + rest;
  // Gateway API: /foo -> /bar turns /foo/x into /bar/x, and /foo -> / turns /foo/x into /x.
  if (replacement.endsWith('/') && rest.startsWith('/')) return replacement + rest.slice(1) || '/';
  const joined = replacement + rest;
  return joined === '' ? '/' : joined.startsWith('/') ? joined : `/${joined}`;
}

/** New :path (with query) after path replacement. */
function withNewPath(fullPath: string, match: HttpMatch | undefined, path?: string, prefixPath?: string): string {
  const { path: p, query } = splitPath(fullPath);
  let next: string;
  if (path !== undefined) next = path;
  else if (prefixPath !== undefined) next = replacePrefix(p, match, prefixPath);
  else return fullPath;
  if (next.includes('?')) return next;
  return query ? `${next}?${query}` : next;
}

export interface RewriteResult {
  /** :path the upstream sees, query included. */
  path: string;
  /** Host header the upstream sees. */
  authority: string;
}

export function applyRewrite(rewrite: Rewrite | undefined, match: HttpMatch | undefined, path: string, authority: string): RewriteResult {
  if (!rewrite) return { path, authority };
  return { path: withNewPath(path, match, rewrite.path, rewrite.prefixPath), authority: rewrite.hostname ?? authority };
}

function splitAuthority(authority: string): { host: string; port?: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(authority);
  if (!m) return { host: authority };
  return { host: m[1], port: m[2] ? Number(m[2]) : undefined };
}

const DEFAULT_PORT: Record<string, number> = { http: 80, https: 443 };

/**
 * The Location of a redirect. Host and port are the request's unless replaced; a changed
 * scheme with no explicit port drops the request's port (the new scheme's well-known port,
 * as Gateway API specifies); a port equal to the scheme's default is left out.
 */
export function redirectLocation(redirect: Redirect, match: HttpMatch | undefined, req: { scheme: string; authority: string; path: string }): string {
  const scheme = redirect.scheme ?? req.scheme;
  const orig = splitAuthority(req.authority);
  const host = redirect.hostname ?? orig.host;
  let port = redirect.port ?? (redirect.scheme && redirect.scheme !== req.scheme ? undefined : orig.port);
  if (port === DEFAULT_PORT[scheme]) port = undefined;
  const path = withNewPath(req.path, match, redirect.path, redirect.prefixPath);
  return `${scheme}://${host}${port !== undefined ? `:${port}` : ''}${path}`;
}
