/**
 * The chart and shared limits: the Redis URL comes from a Secret mounted
 * read-only (`limits.redis.existingSecret`), never from the ConfigMap, and a
 * chart with limit rules for several replicas but per-pod counters refuses
 * to render.
 */
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseKubeYaml, type KubeObject } from '../helpers/kube-validate.js';
import { REPO_ROOT } from '../helpers/proxy-process.js';
import { findHelm, runTool } from '../helpers/tools.js';

const CHART = join(REPO_ROOT, 'helm', 'kube-vertex-proxy');
const helm = findHelm();
const RULES = [{ id: 'ml-tokens', subjects: { namespaces: ['ml'] }, permissions: ['generate'], tokensPerMinute: 200000 }];

function template(args: readonly string[]) {
  return runTool(helm, ['template', 'kube-vertex-proxy', CHART, '--namespace', 'vertex-system', ...args]);
}

interface Deployment extends KubeObject {
  spec: {
    template: {
      spec: {
        volumes: Array<{ name: string; secret?: { secretName: string } }>;
        containers: Array<{ volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }> }>;
      };
    };
  };
}

describe('helm chart: shared limits', () => {
  it('reads the Redis URL from a Secret mounted read-only, keeping the store settings the config gave', () => {
    const result = template([
      '--set',
      'replicaCount=3',
      '--set',
      'limits.redis.existingSecret=kvp-limits-redis',
      '--set-json',
      `config.limits=${JSON.stringify({ store: { type: 'redis', url: 'redis://ignored:6379', onUnavailable: 'failOpen' }, rules: RULES })}`,
    ]);
    expect(result.status, result.stderr).toBe(0);
    const objects = parseKubeYaml(result.stdout);
    const deployment = objects.find((o) => o.kind === 'Deployment') as Deployment;
    const pod = deployment.spec.template.spec;
    const volume = pod.volumes.find((v) => v.secret?.secretName === 'kvp-limits-redis');
    expect(volume).toBeDefined();
    const mount = pod.containers[0]!.volumeMounts.find((m) => m.name === volume!.name);
    expect(mount?.readOnly).toBe(true);
    const configMap = objects.find((o) => o.kind === 'ConfigMap') as KubeObject & { data: Record<string, string> };
    const config = parse(Object.values(configMap.data)[0]!) as { limits: { store: Record<string, string> } };
    expect(config.limits.store).toEqual({ type: 'redis', urlFile: `${mount!.mountPath}/url`, onUnavailable: 'failOpen' });
    expect(Object.values(configMap.data)[0]).not.toContain('redis://');
  });

  it('refuses limit rules on several replicas (or an autoscaler) with per-pod counters', () => {
    expect(template(['--set-json', `config.limits=${JSON.stringify({ rules: RULES })}`]).status).not.toBe(0);
    const result = template([
      '--set',
      'autoscaling.enabled=false',
      '--set',
      'replicaCount=2',
      '--set-json',
      `config.limits=${JSON.stringify({ rules: RULES })}`,
    ]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('limits.redis.existingSecret');
    // One replica may count in memory.
    expect(
      template([
        '--set',
        'autoscaling.enabled=false',
        '--set',
        'replicaCount=1',
        '--set-json',
        `config.limits=${JSON.stringify({ rules: RULES })}`,
      ]).status,
    ).toBe(0);
  });
});
