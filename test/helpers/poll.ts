/**
 * Waiting for something a running proxy will do (no timing assertions: only a
 * generous upper bound), and reading one metric from its admin port.
 */
import type { World } from './world.js';

/** Polls until `check` returns something other than undefined/false. */
export async function until<T>(check: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The first sample of a metric (any labels), or undefined when it is not exposed. */
export async function metric(world: World, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}
