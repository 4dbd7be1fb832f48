/**
 * Live policy reload. The config file is re-read when its directory changes
 * (a mounted ConfigMap is updated by swapping the `..data` symlink, which
 * the file itself never sees: watching the directory catches it, and plain
 * in-place edits too) and on SIGHUP; events closer than the debounce are
 * read once.
 *
 * A valid file whose policy differs replaces the policy in one assignment,
 * so a request sees either the old or the new policy, never a mix: the
 * authorize step reads the holder once per request. An invalid file (or one
 * that cannot be read mid-swap) changes nothing: the old policy keeps
 * serving, and a log line, the `policy_reloads_total{result="invalid"}`
 * metric and the /readyz details say why.
 *
 * What reloads: `policy.rules` and `kubernetes.static`. Everything else
 * (listeners, issuers, Vertex settings, modes) is read at start only; a
 * change there is logged as needing a restart and otherwise ignored.
 *
 * In: the path, the settings in force, a loader. Out: the current
 * {@link PolicySnapshot}, status for /readyz. Throws nothing.
 *
 * @module
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ConfigError, type Settings } from '../config/load.js';
import { METRIC_PREFIX } from '../metrics/metrics.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { compileLabelIndependent } from '../policy/label-independent.js';

export interface PolicySnapshot {
  readonly policy: CompiledPolicy;
  /** The same rules as applied on a stale label view (see label-independent.ts). */
  readonly labelIndependent: CompiledPolicy;
  readonly static: Settings['config']['kubernetes']['static'];
  /** The rules as written (the audit console shows the rule that decided a record). */
  readonly rules?: Settings['config']['policy']['rules'];
}

export type ReloadResult = 'applied' | 'unchanged' | 'invalid';

export interface ReloadStatus {
  readonly version: string;
  readonly ruleCount: number;
  readonly appliedAt: string;
  readonly lastAttempt: {
    readonly at: string;
    readonly trigger: string;
    readonly result: ReloadResult;
    readonly problems?: readonly string[];
  } | null;
}

export interface PolicyReloaderOptions {
  readonly path: string;
  readonly initial: Settings;
  readonly load: (path: string) => Promise<Settings>;
  readonly watch: boolean;
  readonly debounceMs: number;
  readonly logger: Logger;
  readonly registry?: Registry;
  /** Called after a new snapshot is in force. */
  readonly onApplied?: (snapshot: PolicySnapshot) => void;
}

export function snapshotOf(settings: Settings): PolicySnapshot {
  return Object.freeze({
    policy: settings.policy,
    labelIndependent: compileLabelIndependent(settings.config.policy.rules),
    static: settings.config.kubernetes.static,
    rules: settings.config.policy.rules,
  });
}

export class PolicyReloader {
  readonly #options: PolicyReloaderOptions;
  #current: PolicySnapshot;
  #appliedAt = new Date();
  #lastAttempt: ReloadStatus['lastAttempt'] = null;
  #restartOnly: string;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<ReloadResult> | undefined;
  #again = false;
  readonly #reloads: Counter<'result'> | undefined;

  constructor(options: PolicyReloaderOptions) {
    this.#options = options;
    this.#current = snapshotOf(options.initial);
    this.#restartOnly = restartOnlyPart(options.initial);
    if (options.registry) {
      const registers = [options.registry];
      this.#reloads = new Counter({
        name: `${METRIC_PREFIX}policy_reloads_total`,
        help: 'Config reloads by result: applied (new policy in force), unchanged, invalid (refused; the old policy keeps serving).',
        labelNames: ['result'] as const,
        registers,
      });
      const lastAttempt = () => this.#lastAttempt;
      new Gauge({
        name: `${METRIC_PREFIX}policy_reload_failing`,
        help: '1 when the last reload attempt was refused as invalid (the policy in force is older than the file).',
        registers,
        collect() {
          this.set(lastAttempt()?.result === 'invalid' ? 1 : 0);
        },
      });
    }
  }

  /** The snapshot in force. One read per request. */
  get current(): PolicySnapshot {
    return this.#current;
  }

  start(): void {
    if (!this.#options.watch) return;
    const dir = dirname(this.#options.path);
    const name = basename(this.#options.path);
    try {
      this.#watcher = watch(dir, { persistent: false }, (_event, file) => {
        // The ConfigMap swap shows up as `..data` / `..data_tmp`; an edit as the file itself; some platforms give no name.
        if (file === null || file === name || file.startsWith('..')) this.#schedule();
      });
      this.#watcher.on('error', (error) =>
        this.#options.logger.warn({ err: error, dir }, 'config directory watch failed; SIGHUP still reloads'),
      );
    } catch (error) {
      this.#options.logger.warn({ err: error, dir }, 'cannot watch the config directory; SIGHUP still reloads');
    }
  }

  stop(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  status(): ReloadStatus {
    return {
      version: this.#current.policy.version,
      ruleCount: this.#current.policy.ruleCount,
      appliedAt: this.#appliedAt.toISOString(),
      lastAttempt: this.#lastAttempt,
    };
  }

  /** Re-reads the file now (SIGHUP). Concurrent calls share one read, plus one more if a change came in meanwhile. */
  reload(trigger = 'signal'): Promise<ReloadResult> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#reloadOnce(trigger).finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        void this.reload(trigger);
      }
    });
    return this.#running;
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.reload('file-change');
    }, this.#options.debounceMs);
    this.#timer.unref();
  }

  async #reloadOnce(trigger: string): Promise<ReloadResult> {
    const { logger } = this.#options;
    const at = new Date().toISOString();
    let settings: Settings;
    try {
      settings = await this.#options.load(this.#options.path);
    } catch (error) {
      const problems = error instanceof ConfigError ? error.format().split('\n') : [(error as Error).message];
      this.#lastAttempt = { at, trigger, result: 'invalid', problems };
      this.#reloads?.inc({ result: 'invalid' });
      logger.error(
        { trigger, problems, policyVersion: this.#current.policy.version },
        'config reload refused; the previous policy keeps serving',
      );
      return 'invalid';
    }
    const restartOnly = restartOnlyPart(settings);
    if (restartOnly !== this.#restartOnly) {
      logger.warn({ trigger }, 'config changes outside policy and kubernetes.static take effect at the next restart');
      this.#restartOnly = restartOnly;
    }
    const next = snapshotOf(settings);
    const unchanged =
      next.policy.version === this.#current.policy.version && JSON.stringify(next.static) === JSON.stringify(this.#current.static);
    if (unchanged) {
      this.#lastAttempt = { at, trigger, result: 'unchanged' };
      this.#reloads?.inc({ result: 'unchanged' });
      return 'unchanged';
    }
    const previous = this.#current.policy.version;
    this.#current = next;
    this.#appliedAt = new Date();
    this.#lastAttempt = { at, trigger, result: 'applied' };
    this.#reloads?.inc({ result: 'applied' });
    this.#options.onApplied?.(next);
    logger.info(
      { trigger, previousPolicyVersion: previous, policyVersion: next.policy.version, rules: next.policy.ruleCount },
      'policy reloaded',
    );
    return 'applied';
  }
}

/** The config minus what reloads, to notice changes that need a restart. */
function restartOnlyPart(settings: Settings): string {
  const { policy: _policy, kubernetes, ...rest } = settings.config;
  const { static: _static, ...kube } = kubernetes;
  return JSON.stringify({ ...rest, kubernetes: kube });
}
