/**
 * `check` and `can-i`, run as users run them.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type IssuerStandIn } from '../../dev/standins/issuer.js';
import { CLI, runCli, writeConfig } from '../helpers/proxy-process.js';
import { DEFAULT_RULES, PREDICT_PATH, PROJECT, LOCATION } from '../helpers/world.js';

let issuer: IssuerStandIn;
let goodConfig: string;
beforeAll(async () => {
  issuer = await startIssuer({ kind: 'kubernetes' });
  goodConfig = writeConfig({
    issuers: [{ name: 'cluster', type: 'kubernetes', issuer: issuer.issuer, audiences: ['kube-vertex-proxy'] }],
    vertex: { projects: [PROJECT], locations: [LOCATION] },
    kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' } } },
    policy: { rules: DEFAULT_RULES },
  });
});
afterAll(async () => {
  await issuer?.close();
});

describe('kube-vertex-proxy check', () => {
  it('accepts a valid file', async () => {
    const result = await runCli(['check', '--config', goodConfig]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/OK \(1 issuer, 3 rules, policy version [0-9a-f]{12}\)/);
  });

  it('lists every problem with its path and line, and exits 1', async () => {
    const bad = writeConfig(`server:
  port: 99999
  bodyLimit: lots
issuers:
  - name: cluster
    type: kubernetes
    issuer: https://issuer.example
    audiences: []
vertex:
  projects: [p]
  locations: [us-central1]
  unknownField: 1
policy:
  rules:
    - id: r1
      effect: permit
      subjects: { serviceAccounts: ["ml/*"] }
      permissions: [predict]
`);
    const result = await runCli(['check', '--config', bad]);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n').slice(1);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/:2: server\.port: must be <= 65535$/),
        expect.stringMatching(/:3: server\.bodyLimit: has an invalid format \(expected a size like 512KiB or 10MiB\)$/),
        expect.stringMatching(/:8: issuers\[0\]\.audiences: must NOT have fewer than 1 items$/),
        expect.stringMatching(/:12: vertex\.unknownField: unknown field$/),
        expect.stringMatching(/:16: policy\.rules\[0\]\.effect: must be one of "allow", "deny"$/),
      ]),
    );
    expect(lines.length).toBe(5);
  });

  it('lists schema problems and semantic problems of the other sections in the same run', async () => {
    const bad = writeConfig(`server:
  port: 99999
issuers:
  - name: cluster
    type: kubernetes
    issuer: ${issuer.issuer}
    audiences: [kube-vertex-proxy]
vertex:
  projects: [${PROJECT}]
  locations: [${LOCATION}]
policy:
  rules:
    - id: r1
      effect: allow
      subjects: { serviceAccounts: ["ml/*"] }
      permissions: [aiplatform.endpoints.predcit]
    - id: r1
      effect: allow
      subjects: { serviceAccounts: ["ml/*"] }
      permissions: [predict]
`);
    const result = await runCli(['check', '--config', bad]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/:2: server\.port: must be <= 65535$/m);
    expect(result.stderr).toContain('policy.rules[0].permissions[0]');
    expect(result.stderr).toContain('policy.rules[1].id');
  });

  it('warns loudly about a PostgreSQL password written inline, and still accepts the file', async () => {
    const inline = writeConfig({
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: issuer.issuer, audiences: ['a'] }],
      vertex: { projects: [PROJECT], locations: [LOCATION] },
      audit: { sinks: [{ type: 'stdout' }, { type: 'postgres', url: 'postgres://kvp:s3cret@db.example:5432/audit' }] },
    });
    const result = await runCli(['check', '--config', inline]);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/:\d+: audit\.sinks\[1\]\.url: WARNING: this PostgreSQL URL carries a password/);
    expect(result.stderr).not.toContain('s3cret');
    const withoutPassword = writeConfig({
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: issuer.issuer, audiences: ['a'] }],
      vertex: { projects: [PROJECT], locations: [LOCATION] },
      audit: { sinks: [{ type: 'stdout' }, { type: 'postgres', url: 'postgres://kvp@db.example:5432/audit' }] },
    });
    expect((await runCli(['check', '--config', withoutPassword])).stderr).toBe('');
  });

  it('reports semantic problems (unknown permission, duplicate rule id) all at once', async () => {
    const bad = writeConfig({
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: issuer.issuer, audiences: ['a'] }],
      vertex: { projects: [PROJECT], locations: [LOCATION] },
      policy: {
        rules: [
          { id: 'a', effect: 'allow', subjects: { serviceAccounts: ['ml/*'] }, permissions: ['aiplatform.endpoints.predcit'] },
          { id: 'a', effect: 'allow', subjects: { serviceAccounts: ['ml/*'] }, permissions: ['predict'] },
        ],
      },
    });
    const result = await runCli(['check', '--config', bad]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('policy.rules[0].permissions[0]');
    expect(result.stderr).toContain('policy.rules[1].id');
  });

  it('serve logs the inline-password warning as a structured WARNING line at start, without the password', async () => {
    const inline = writeConfig({
      server: { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0 },
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: issuer.issuer, audiences: ['a'] }],
      vertex: { projects: [PROJECT], locations: [LOCATION] },
      // A port nobody listens on: the warning comes before the store is opened, whatever happens to it then.
      audit: { durability: 'relaxed', sinks: [{ type: 'stdout' }, { type: 'postgres', url: 'postgres://kvp:s3cret@127.0.0.1:9/audit' }] },
    });
    const child = spawn(process.execPath, [CLI, 'serve', '--config', inline], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const seen: string[] = [];
    const warning = await new Promise<Record<string, unknown> | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 20_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        seen.push(line);
        if (line.includes('"severity":"WARNING"')) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as Record<string, unknown>);
        }
      });
      child.once('exit', () => resolve(undefined));
    });
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    expect(warning, seen.join('\n')).toMatchObject({ path: 'audit.sinks[1].url' });
    expect(String(warning?.['message'])).toContain('carries a password');
    expect(seen.join('\n')).not.toContain('s3cret');
  });

  it('serve refuses to start on an invalid file, listing the problems', async () => {
    const result = await runCli(['serve', '--config', writeConfig('issuers: 3\n')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('issuers');
  });
});

describe('kube-vertex-proxy can-i', () => {
  it('says allowed with the rule, exit 0', async () => {
    const result = await runCli(['can-i', '--config', goodConfig, '--as', 'system:serviceaccount:ml:trainer', 'POST', PREDICT_PATH]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^allowed\n/);
    expect(result.stdout).toContain('permission: aiplatform.endpoints.predict');
    expect(result.stdout).toContain(`resource:   projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`);
    expect(result.stdout).toContain('rule:       ml-predict (allowed-by-rule)');
  });

  it('says denied, exit 1, for a namespace without the label', async () => {
    const result = await runCli(['can-i', '--config', goodConfig, '--as', 'system:serviceaccount:web:frontend', 'POST', PREDICT_PATH]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^denied\n/);
    expect(result.stdout).toContain('(none: default deny) (no-matching-rule)');
  });

  it('takes labels from --namespace-labels', async () => {
    const result = await runCli([
      'can-i',
      '--config',
      goodConfig,
      '--as',
      'system:serviceaccount:web:frontend',
      '--namespace-labels',
      'team=ml',
      'POST',
      PREDICT_PATH,
    ]);
    expect(result.code).toBe(0);
  });

  it('names the deny rule', async () => {
    const result = await runCli(['can-i', '--config', goodConfig, '--as', 'system:serviceaccount:ml:intern', 'POST', PREDICT_PATH]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('rule:       no-intern (denied-by-rule)');
  });

  it('prints the permission and the groups of a method of the generated table (vector search)', async () => {
    const path = `/v1/projects/${PROJECT}/locations/${LOCATION}/indexEndpoints/42:findNeighbors`;
    const result = await runCli(['can-i', '--config', goodConfig, '--as', 'system:serviceaccount:ml:trainer', 'POST', path]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('operation:  indexEndpoints.findNeighbors (google.cloud.aiplatform.v1.MatchService.FindNeighbors)');
    expect(result.stdout).toContain('permission: aiplatform.indexEndpoints.queryVectors');
    expect(result.stdout).toContain('groups:     vectorSearch');
  });

  it('exits 2 for a path that is not a Vertex AI method', async () => {
    const result = await runCli(['can-i', '--config', goodConfig, '--as', 'system:serviceaccount:ml:trainer', 'GET', PREDICT_PATH]);
    expect(result.code).toBe(2);
    expect(result.stdout).toContain('ERR_REQUEST_METHOD_NOT_ALLOWED');
  });

  it('shows dry-run verdicts and job conditions apart from the decision', async () => {
    const config = writeConfig({
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: issuer.issuer, audiences: ['kube-vertex-proxy'] }],
      vertex: { projects: [PROJECT], locations: [LOCATION] },
      kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' } } },
      policy: {
        rules: [
          ...DEFAULT_RULES,
          {
            id: 'ml-training',
            effect: 'allow',
            subjects: { namespaces: ['ml'] },
            permissions: ['training'],
            conditions: { jobs: { maxAccelerators: 4 } },
          },
          { id: 'freeze-predict', effect: 'deny', mode: 'dryRun', subjects: { serviceAccounts: ['ml/*'] }, permissions: ['predict'] },
          {
            id: 'tight-gpus',
            effect: 'allow',
            mode: 'dryRun',
            subjects: { namespaces: ['ml'] },
            permissions: ['training'],
            conditions: { jobs: { maxAccelerators: 2 } },
          },
        ],
      },
    });
    const predict = await runCli(['can-i', '--config', config, '--as', 'system:serviceaccount:ml:trainer', 'POST', PREDICT_PATH]);
    expect(predict.code).toBe(0);
    expect(predict.stdout).toMatch(/^allowed\n/);
    expect(predict.stdout).toContain('  dry-run:    freeze-predict would deny');
    const job = await runCli([
      'can-i',
      '--config',
      config,
      '--as',
      'system:serviceaccount:ml:trainer',
      'POST',
      `/v1/projects/${PROJECT}/locations/${LOCATION}/customJobs`,
    ]);
    expect(job.code).toBe(0);
    expect(job.stdout).toContain('  conditions: only if the job in the request body satisfies the conditions.jobs of ml-training');
    expect(job.stdout).toContain('  dry-run:    tight-gpus would allow only if the job satisfies its conditions.jobs');
  });
});

describe('usage errors', () => {
  it.each([
    [['serve', '--bogus'], 'serve: '],
    [['serve'], 'serve: --config FILE is required'],
    [['check', '--bogus'], 'check: '],
    [['can-i', '--config', 'x', '--as', 'nobody', 'GET', '/'], 'can-i: --as: "nobody" is not system:serviceaccount:NAMESPACE:NAME'],
    // The dev command lives in dev/ (npm start), not in the installed CLI.
    [['dev', '--bogus'], 'kube-vertex-proxy: "dev" is not part of the installed proxy'],
    [['audit', 'query', '--decision', 'maybe'], 'audit query: decision must be "allow" or "deny"\nUsage:'],
    [['audit', 'query', '--proxy', 'not a url'], 'audit query: --proxy must be a URL'],
  ])('%j: the command and the problem on stderr, exit 2', async (argv, stderr) => {
    const result = await runCli(argv);
    expect(result.stderr.startsWith(stderr), result.stderr).toBe(true);
    expect(result.code).toBe(2);
  });
});
