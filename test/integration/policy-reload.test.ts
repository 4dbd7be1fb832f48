/**
 * Live policy reload against the real proxy process: the config file is a
 * mounted-ConfigMap layout (`config.yaml -> ..data/config.yaml`, `..data ->
 * ..<timestamp>`), updated the way the kubelet updates it (new directory,
 * `..data` swapped by an atomic rename), while requests keep flowing.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RULES, PREDICT_PATH, startWorld, type World } from '../helpers/world.js';
import { metric, until } from '../helpers/poll.js';

const predictBody = JSON.stringify({ instances: [{ feature: 1 }] });

async function policyCheck(world: World) {
  const body = (await (await fetch(`${world.proxy.adminUrl}/readyz`)).json()) as {
    status: string;
    checks: Array<{
      name: string;
      ready: boolean;
      detail: { version: string; lastAttempt: { result: string; problems?: string[] } | null };
    }>;
  };
  return { status: body.status, policy: body.checks.find((c) => c.name === 'policy')! };
}

/** A directory laid out like a mounted ConfigMap, updated like the kubelet's atomic writer does. */
class ConfigMapDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'kvp-configmap-'));
  readonly path = join(this.dir, 'config.yaml');
  #generation = 0;
  #current: string | undefined;

  write(text: string): void {
    const generation = join(this.dir, `..2026_11_27_04_00_00.${++this.#generation}`);
    mkdirSync(generation);
    writeFileSync(join(generation, 'config.yaml'), text);
    const tmpLink = join(this.dir, '..data_tmp');
    symlinkSync(generation.split('/').at(-1)!, tmpLink);
    renameSync(tmpLink, join(this.dir, '..data'));
    if (this.#current === undefined) symlinkSync('..data/config.yaml', this.path);
    else rmSync(this.#current, { recursive: true });
    this.#current = generation;
  }
}

const webRule = {
  id: 'web-predict',
  effect: 'allow',
  subjects: { namespaceSelector: { matchLabels: { team: 'web' } } },
  permissions: ['predict'],
};

describe('policy reload from a ConfigMap symlink swap', () => {
  const mount = new ConfigMapDir();
  let world: World;
  let base: Record<string, unknown>;
  beforeAll(async () => {
    world = await startWorld({
      writeConfig: (config) => {
        // The full audit line: it carries the policy version (the compact one leaves it to the store).
        base = { ...config, reload: { debounce: '100ms' }, audit: { stdout: { format: 'full' } } };
        mount.write(stringify(base));
        return mount.path;
      },
    });
  });
  afterAll(async () => {
    await world?.close();
    rmSync(mount.dir, { recursive: true, force: true });
  });

  it('applies a valid policy and refuses an invalid one, with no request failing because of either swap', async () => {
    // Requests flow the whole time; every policy version allows ml/trainer to predict.
    const statuses: number[] = [];
    let flowing = true;
    const token = world.token('ml', 'trainer');
    const flow = (async () => {
      while (flowing) statuses.push((await world.call(PREDICT_PATH, { token, body: predictBody })).status);
    })();
    try {
      const webToken = world.token('web', 'frontend');
      expect((await world.call(PREDICT_PATH, { token: webToken, body: predictBody })).status).toBe(403);
      const v1 = (await policyCheck(world)).policy.detail.version;

      mount.write(stringify({ ...base, policy: { rules: [...DEFAULT_RULES, webRule] } }));
      await until(
        async () => (await world.call(PREDICT_PATH, { token: webToken, body: predictBody })).status === 200 || undefined,
        'the new policy to apply',
      );
      const v2 = (await policyCheck(world)).policy.detail.version;
      expect(v2).not.toBe(v1);
      const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.ruleId === 'web-predict');
      expect(entry.kubeVertexProxy.policyVersion).toBe(v2);
      expect(world.proxy.lines.some((l) => l.message === 'policy reloaded' && l.policyVersion === v2)).toBe(true);

      mount.write(
        stringify({
          ...base,
          policy: { rules: [...DEFAULT_RULES, webRule, { id: 'broken', effect: 'maybe', subjects: {}, permissions: [] }] },
        }),
      );
      const refused = await until(async () => {
        const check = await policyCheck(world);
        return check.policy.detail.lastAttempt?.result === 'invalid' ? check : undefined;
      }, 'the invalid policy to be refused');
      expect(refused.status).toBe('ready');
      expect(refused.policy.detail.version).toBe(v2);
      expect(refused.policy.detail.lastAttempt?.problems?.join('\n')).toContain(`policy.rules[${DEFAULT_RULES.length + 1}].effect`);
      expect(await metric(world, 'kube_vertex_proxy_policy_reload_failing')).toBe(1);
      expect(await metric(world, 'kube_vertex_proxy_policy_reloads_total{result="invalid"}')).toBeGreaterThanOrEqual(1);
      expect(world.proxy.lines.some((l) => l.message === 'config reload refused; the previous policy keeps serving')).toBe(true);
      // The previous (valid) policy keeps serving.
      expect((await world.call(PREDICT_PATH, { token: webToken, body: predictBody })).status).toBe(200);
    } finally {
      flowing = false;
      await flow;
    }
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });
});

describe('SIGHUP', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvp-sighup-'));
  const path = join(dir, 'config.yaml');
  let world: World;
  let base: Record<string, unknown>;
  beforeAll(async () => {
    world = await startWorld({
      writeConfig: (config) => {
        // File watching off: only the signal can make the new policy apply.
        base = { ...config, reload: { watch: false } };
        writeFileSync(path, stringify(base));
        return path;
      },
    });
  });
  afterAll(async () => {
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reloads the config file', async () => {
    const webToken = world.token('web', 'frontend');
    writeFileSync(path, stringify({ ...base, policy: { rules: [...DEFAULT_RULES, webRule] } }));
    expect((await world.call(PREDICT_PATH, { token: webToken, body: predictBody })).status).toBe(403);
    world.proxy.child.kill('SIGHUP');
    await until(
      async () => (await world.call(PREDICT_PATH, { token: webToken, body: predictBody })).status === 200 || undefined,
      'the reload on SIGHUP',
    );
    expect((await policyCheck(world)).policy.detail.lastAttempt).toMatchObject({ result: 'applied', trigger: 'signal' });
  });
});
