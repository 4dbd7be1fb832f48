/**
 * The `limits` config section → {@link LimitSettings}: rules compiled (with
 * the policy's checks), the Redis URL file resolved (read at start, never
 * here), problems reported through the loader's `add`.
 *
 * @module
 */
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { PolicyContext, PolicyProblem } from '../policy/compile.js';
import { compileLimits, type CompiledLimit } from './rules.js';

export type LimitStoreSettings =
  | { readonly type: 'memory' }
  | {
      readonly type: 'redis';
      readonly url: string | undefined;
      readonly urlFile: string | undefined;
      readonly keyPrefix: string;
      readonly onUnavailable: 'failClosed' | 'failOpen';
      readonly timeoutMs: number;
    };

export interface LimitSettings {
  readonly rules: readonly CompiledLimit[];
  readonly store: LimitStoreSettings;
}

export function deriveLimitSettings(
  limits: Config['limits'],
  configDir: string,
  context: PolicyContext,
  add: (path: (string | number)[], message: string) => void,
  addProblem: (problem: PolicyProblem) => void,
): LimitSettings {
  const { limits: rules, problems } = compileLimits(limits.rules, context);
  for (const problem of problems) addProblem(problem);
  const store = limits.store;
  if (store.type === 'memory') return { rules, store: { type: 'memory' } };
  if ((store.url === undefined) === (store.urlFile === undefined)) add(['limits', 'store'], 'give exactly one of url or urlFile');
  if (store.url !== undefined && !/^rediss?:\/\//.test(store.url)) add(['limits', 'store', 'url'], 'must be a redis:// or rediss:// URL');
  return {
    rules,
    store: {
      type: 'redis',
      url: store.url,
      urlFile: store.urlFile === undefined ? undefined : resolve(configDir, store.urlFile),
      keyPrefix: store.keyPrefix ?? 'kvp:limits:',
      onUnavailable: store.onUnavailable ?? 'failClosed',
      timeoutMs: Math.max(1, parseDuration(store.timeout ?? '250ms')),
    },
  };
}
