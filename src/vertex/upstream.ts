/**
 * Upstream host selection: which Vertex AI base URL serves a location.
 *
 * Every URL is computed once, at construction, from the configured template
 * and the configured locations; the request path only looks one up. A
 * location that is not configured has no URL, so a caller-chosen string never
 * becomes part of a host name.
 *
 * @module
 */

/** The default upstream template: Vertex AI's regional hosts. */
export const DEFAULT_UPSTREAM_TEMPLATE = 'https://{location}-aiplatform.googleapis.com';

const PLACEHOLDER = '{location}';
const LOCATION = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Google's hosts for the locations that are not `{location}-aiplatform`:
 * the global endpoint and the multi-region data-residency endpoints.
 */
const GOOGLE_SPECIAL_HOSTS: ReadonlyMap<string, string> = new Map([
  ['global', 'https://aiplatform.googleapis.com'],
  ['us', 'https://aiplatform.us.rep.googleapis.com'],
  ['eu', 'https://aiplatform.eu.rep.googleapis.com'],
]);

/** Parses a substituted template into its origin, or throws a TypeError naming the problem. */
function originOf(url: string, template: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`upstream template ${JSON.stringify(template)} is not a valid URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new TypeError(`upstream template ${JSON.stringify(template)} must be an http or https URL`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new TypeError(`upstream template ${JSON.stringify(template)} must not carry credentials`);
  }
  // The proxy appends the caller's `/v1/…` path; a base path or query would silently change what is called.
  // `?` and `#` are checked on the text too: the URL parser drops an empty query or fragment.
  if (parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '' || /[?#]/.test(template)) {
    throw new TypeError(`upstream template ${JSON.stringify(template)} must be an origin only (no path, query or fragment)`);
  }
  if (/[{}]/.test(parsed.host))
    throw new TypeError(`upstream template ${JSON.stringify(template)} has a placeholder other than {location}`);
  return parsed.origin;
}

/**
 * Builds the location → base URL function. The base URL is an origin without
 * a trailing slash (`https://us-central1-aiplatform.googleapis.com`).
 *
 * - The default template maps `global`, `us` and `eu` to Google's special
 *   hosts and every other location to `https://{location}-aiplatform.googleapis.com`.
 * - Any other template with `{location}` gets the location substituted as is.
 * - A template without `{location}` sends every configured location to itself.
 * - `null` (the location-less `publishers/…` and `endpoints/…` forms) goes to
 *   the global host: Google's global endpoint for the default template, the
 *   template with `global` substituted for a custom one, or the fixed URL.
 * - A location that is not configured resolves to `undefined`.
 *
 * Throws a TypeError at construction for an invalid template or location.
 */
export function createUpstreamResolver(template: string, locations: readonly string[]): (location: string | null) => string | undefined {
  const normalized = template.endsWith('/') ? template.slice(0, -1) : template;
  const isDefault = normalized === DEFAULT_UPSTREAM_TEMPLATE;
  const templated = normalized.includes(PLACEHOLDER);

  const urlFor = (location: string): string => {
    if (isDefault) {
      const special = GOOGLE_SPECIAL_HOSTS.get(location);
      if (special !== undefined) return special;
    }
    return originOf(templated ? normalized.replaceAll(PLACEHOLDER, location) : normalized, template);
  };

  // Validate the template even when no location is configured.
  const globalUrl = urlFor('global');
  const byLocation = new Map<string, string>();
  for (const location of locations) {
    if (!LOCATION.test(location)) throw new TypeError(`location ${JSON.stringify(location)} is not a valid Vertex AI location`);
    byLocation.set(location, urlFor(location));
  }

  return (location) => (location === null ? globalUrl : byLocation.get(location));
}
