import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig } from './load.js';

const minimal = `
issuers:
  - name: cluster
    type: kubernetes
    issuer: https://container.googleapis.com/v1/projects/p/locations/l/clusters/c
    audiences: [kube-vertex-proxy]
vertex:
  projects: [my-proj]
  locations: [us-central1, global]
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'config.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).format().split('\n');
  }
  return [];
}

describe('parseConfig', () => {
  it('fills every default and converts units once', () => {
    const settings = parseConfig(minimal, 'config.yaml');
    expect(settings.server).toEqual({
      host: '0.0.0.0',
      port: 8080,
      adminHost: '0.0.0.0',
      adminPort: 9090,
      bodyLimitBytes: 10 * 1024 * 1024,
      shutdownGraceMs: 25_000,
      keepAliveTimeoutMs: 65_000,
      requestTimeoutMs: 300_000,
      bodyIdleTimeoutMs: 10_000,
      maxInFlightPerCaller: 64,
      readyzDetails: false,
      drainPeriodMs: 0,
    });
    expect(settings.authentication).toEqual({
      clockSkewSec: 30,
      tokenCacheMaxEntries: 100_000,
      negativeTtlMs: 10_000,
      jwksRefreshIntervalMs: 600_000,
      jwksMinRefreshIntervalMs: 30_000,
      jwksFetchTimeoutMs: 5_000,
    });
    expect(settings.issuers[0]).toMatchObject({ algorithms: ['RS256', 'ES256'], maxTokenLifetimeSec: 48 * 3600 });
    expect(settings.vertex.upstreamFor('us-central1')).toBe('https://us-central1-aiplatform.googleapis.com');
    expect(settings.vertex.upstreamFor('global')).toBe('https://aiplatform.googleapis.com');
    expect(settings.vertex.upstreamFor('asia-east1')).toBeUndefined();
    expect(settings.policy.ruleCount).toBe(0);
  });

  it('freezes the configuration', () => {
    const settings = parseConfig(minimal, 'config.yaml');
    expect(Object.isFrozen(settings)).toBe(true);
    expect(Object.isFrozen(settings.issuers[0]?.audiences)).toBe(true);
    expect(() => {
      (settings.policyRules as unknown[]).push('x');
    }).toThrow();
  });

  it('refuses symmetric algorithms at the schema level', () => {
    expect(problems(minimal.replace('audiences: [kube-vertex-proxy]', 'audiences: [a]\n    algorithms: [HS256]'))).toEqual([
      expect.stringMatching(/^config\.yaml:\d+: issuers\[0\]\.algorithms\[0\]: must be one of "RS256", /),
    ]);
  });

  it('reports YAML syntax errors with a line', () => {
    expect(problems('issuers: [\n')[0]).toMatch(/^config\.yaml:\d+: YAML: /);
  });

  it('reports duplicate keys (a second `policy:` must not silently win)', () => {
    expect(problems(`${minimal}\npolicy: {}\npolicy: {}\n`)[0]).toMatch(/YAML: .*[Mm]ap keys must be unique/);
  });

  it('accepts the informer, TokenReview and UID revocation modes and converts their durations', () => {
    const settings = parseConfig(
      `${minimal}\nkubernetes:\n  namespaceLabels: watch\n  kubeconfig: kube/config\n  maxStaleness: 90s\n  tokenReview: ` +
        `true\n  tokenReviewTtl: 1m\n  tokenReviewConcurrency: 4\n  uidRevocation: serviceAccountsAndPods\nreload:\n  ` +
        `debounce: 250ms\n`,
      '/etc/kvp/config.yaml',
    );
    expect(settings.kubernetes).toEqual({
      namespaceLabels: 'watch',
      kubeconfig: '/etc/kvp/kube/config',
      maxStalenessMs: 90_000,
      apiTimeoutMs: 10_000,
      tokenReview: true,
      tokenReviewTtlMs: 60_000,
      tokenReviewConcurrency: 4,
      uidRevocation: 'serviceAccountsAndPods',
      usesApi: true,
      static: {},
    });
    expect(settings.reload).toEqual({ watch: true, debounceMs: 250 });
  });

  it('refuses a zero staleness bound or review TTL', () => {
    expect(problems(`${minimal}\nkubernetes:\n  maxStaleness: 0s\n  tokenReview: true\n  tokenReviewTtl: 0s\n`)).toEqual([
      expect.stringContaining('kubernetes.maxStaleness: must be greater than 0'),
      expect.stringContaining('kubernetes.tokenReviewTtl: must be greater than 0 when tokenReview is on'),
    ]);
  });

  it('refuses an upstream template that is not a URL', () => {
    expect(
      problems(minimal.replace('locations: [us-central1, global]', 'locations: [us-central1]\n  upstream: "not a url/{location}"')),
    ).toEqual([expect.stringMatching(/^config\.yaml:\d+: vertex\.upstream: /)]);
  });

  it('refuses the same issuer listed twice', () => {
    const twice = minimal.replace(
      'vertex:',
      '  - name: cluster\n    type: kubernetes\n    issuer: ' +
        'https://container.googleapis.com/v1/projects/p/locations/l/clusters/c\n    audiences: [x]\nvertex:',
    );
    expect(problems(twice)).toEqual([
      expect.stringContaining('issuers[1].name: duplicate issuer name "cluster"'),
      expect.stringContaining(
        'issuers[1].issuer: issuer "https://container.googleapis.com/v1/projects/p/locations/l/clusters/c" is listed twice',
      ),
    ]);
  });

  it('lists schema problems and the checks that follow them in one run (fix once, not three times)', () => {
    const secondIssuer = '\n  - name: cluster\n    type: kubernetes\n    issuer: https://other.example\n    audiences: [a]';
    const text = `${minimal.replace('audiences: [kube-vertex-proxy]', `audiences: [kube-vertex-proxy]${secondIssuer}`)}
server:
  port: eighty
kubernetes:
  maxStaleness: 0s
policy:
  rules:
    - id: r1
      effect: allow
      subjects: { namespaces: [ml] }
      permissions: [no-such-permission]
`;
    const found = problems(text);
    expect(found.some((p) => p.includes('server.port'))).toBe(true); // schema
    expect(found.some((p) => p.includes('duplicate issuer name "cluster"'))).toBe(true); // issuers check
    expect(found.some((p) => p.includes('kubernetes.maxStaleness'))).toBe(true); // kubernetes check
    expect(found.some((p) => p.includes('policy.rules[0].permissions'))).toBe(true); // policy compile
  });

  it('skips the checks of a section the schema refused, instead of running them on values of the wrong type', () => {
    const found = problems(`${minimal}policy:\n  rules: 7\n`);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/policy\.rules: /);
  });

  it('reports a missing file as a config problem', async () => {
    const { loadConfigFile } = await import('./load.js');
    await expect(loadConfigFile('/nonexistent/kvp.yaml')).rejects.toThrow(ConfigError);
  });
});

describe('issuers[].caFile', () => {
  const withCa = (caFile: string) =>
    minimal.replace('    audiences: [kube-vertex-proxy]\n', `    audiences: [kube-vertex-proxy]\n    caFile: ${caFile}\n`);
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

  it('reads the PEM bundle at load, relative to the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-ca-'));
    writeFileSync(join(dir, 'ca.crt'), PEM);
    const settings = parseConfig(withCa('ca.crt'), join(dir, 'config.yaml'));
    expect(settings.issuers[0]?.ca).toBe(PEM);
  });

  it('leaves the system CAs in place without it', () => {
    expect(parseConfig(minimal, 'config.yaml').issuers[0]?.ca).toBeUndefined();
  });

  it('reports a file that is missing or holds no certificate, with its line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-ca-'));
    writeFileSync(join(dir, 'not-a-cert.pem'), 'hello\n');
    expect(problems(withCa(join(dir, 'missing.crt')))).toEqual([
      `config.yaml:7: issuers[0].caFile: cannot read ${join(dir, 'missing.crt')}: ENOENT`,
    ]);
    expect(problems(withCa(join(dir, 'not-a-cert.pem')))).toEqual([
      `config.yaml:7: issuers[0].caFile: ${join(dir, 'not-a-cert.pem')} holds no PEM certificate`,
    ]);
  });
});
