/**
 * Limit counters in Redis, shared by every replica: one Lua script per
 * admission (checks and counts all of a request's counters atomically, so N
 * replicas enforce one limit, not N) and one MULTI per finished request
 * (charges tokens, frees concurrency slots).
 *
 * Counters: a string per (rule, bucket, kind, window), expiring after its
 * window. Concurrency: a sorted set per (rule, bucket) of in-flight requests,
 * scored by a lease expiry; this process renews its leases while the
 * requests run, so the slots of a replica that died free themselves within
 * {@link LEASE_MS}. All keys of one request are used in one script: a Redis
 * Cluster needs them in one hash slot, so use a standalone Redis (Memorystore
 * for Redis "basic" or "standard" tier), not Redis Cluster.
 *
 * Availability: the client never queues commands while disconnected
 * (`enableOfflineQueue: false`) and gives up after `timeoutMs`, so an outage
 * fails fast; it reconnects by itself, and `onAvailability` reports each
 * change once.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { LEASE_MS, type AcquireResult, type LimitStore, type SettleCharge, type StoreCheck } from './store.js';

export { LEASE_MS };
const RENEW_EVERY_MS = 20_000;

/**
 * KEYS: one counter per check. ARGV: now, member, leaseMs, then per check
 * type, limit, enforce (1/0), ttlMs. Returns {blocked (1-based, 0 = admitted),
 * ok1, used1, ok2, used2, …}.
 */
const ACQUIRE_LUA = `
local now = tonumber(ARGV[1])
local member = ARGV[2]
local lease = tonumber(ARGV[3])
local n = #KEYS
local ok = {}
local used = {}
local blocked = 0
for i = 1, n do
  local b = 3 + (i - 1) * 4
  local t = ARGV[b + 1]
  local limit = tonumber(ARGV[b + 2])
  local u
  if t == 'c' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    u = redis.call('ZCARD', KEYS[i])
  else
    u = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  ok[i] = u < limit
  used[i] = u
  if (not ok[i]) and ARGV[b + 3] == '1' and blocked == 0 then blocked = i end
end
if blocked == 0 then
  for i = 1, n do
    local b = 3 + (i - 1) * 4
    local t = ARGV[b + 1]
    local ttl = tonumber(ARGV[b + 4])
    if t == 'r' then
      used[i] = redis.call('INCR', KEYS[i])
      redis.call('PEXPIRE', KEYS[i], ttl)
    elseif t == 'c' then
      redis.call('ZADD', KEYS[i], now + lease, member)
      redis.call('PEXPIRE', KEYS[i], ttl)
      used[i] = used[i] + 1
    end
  end
end
local out = { blocked }
for i = 1, n do
  out[#out + 1] = ok[i] and 1 or 0
  out[#out + 1] = used[i]
end
return out
`;

export interface RedisStoreOptions {
  readonly url?: string | undefined;
  readonly urlFile?: string | undefined;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  /** Called once per change: false when Redis stopped answering, true when it is back. */
  readonly onAvailability: (available: boolean, error?: unknown) => void;
}

type WithAcquire = Redis & { kvpAcquire(numberOfKeys: number, ...args: Array<string | number>): Promise<number[]> };

export async function openRedisStore(options: RedisStoreOptions): Promise<LimitStore> {
  const url = options.url ?? (await readFile(options.urlFile as string, 'utf8')).trim();
  const client = new Redis(url, {
    keyPrefix: options.keyPrefix,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.timeoutMs,
    connectTimeout: Math.max(1000, options.timeoutMs * 4),
    // Keep trying, at most every 2 s: enforcement resumes by itself when Redis is back.
    retryStrategy: (times) => Math.min(100 * times, 2000),
    lazyConnect: true,
  }) as WithAcquire;
  client.defineCommand('kvpAcquire', { lua: ACQUIRE_LUA });

  let available = false;
  const set = (now: boolean, error?: unknown) => {
    if (now === available) return;
    available = now;
    options.onAvailability(now, error);
  };
  client.on('ready', () => set(true));
  client.on('error', (error: unknown) => set(false, error));
  client.on('close', () => set(false));
  // Connecting in the background: a Redis that is down at start is an outage like any other.
  client.connect().catch(() => undefined);

  /** This process's slots in flight: key → members, renewed while they run. */
  const held = new Map<string, Set<string>>();
  const renew = setInterval(() => {
    if (held.size === 0 || !available) return;
    const expiry = Date.now() + LEASE_MS;
    const pipeline = client.pipeline();
    for (const [key, members] of held) for (const member of members) pipeline.zadd(key, 'XX', expiry, member);
    pipeline.exec().catch(() => undefined);
  }, RENEW_EVERY_MS);
  renew.unref();

  const failed = (error: unknown): never => {
    set(false, error);
    throw error;
  };

  return {
    kind: 'redis',
    async acquire(checks: readonly StoreCheck[], member: string, nowMs: number): Promise<AcquireResult> {
      const args: Array<string | number> = [...checks.map((c) => c.key), nowMs, member, LEASE_MS];
      for (const c of checks) args.push(c.type, c.limit, c.enforce ? 1 : 0, c.ttlMs);
      let reply: number[];
      try {
        reply = await client.kvpAcquire(checks.length, ...args);
      } catch (error) {
        return failed(error);
      }
      set(true);
      const ok: boolean[] = [];
      const used: number[] = [];
      for (let i = 0; i < checks.length; i++) {
        ok.push(reply[1 + i * 2] === 1);
        used.push(Number(reply[2 + i * 2]));
      }
      const blocked = Number(reply[0]) - 1;
      if (blocked === -1) {
        for (const c of checks) {
          if (c.type !== 'c') continue;
          let members = held.get(c.key);
          if (members === undefined) held.set(c.key, (members = new Set()));
          members.add(member);
        }
      }
      return { blocked, ok, used };
    },
    async settle(charges: readonly SettleCharge[], slots: readonly string[], member: string): Promise<void> {
      for (const key of slots) {
        const members = held.get(key);
        members?.delete(member);
        if (members?.size === 0) held.delete(key);
      }
      const multi = client.multi();
      let commands = 0;
      for (const charge of charges) {
        if (charge.tokens <= 0) continue;
        multi.incrby(charge.key, charge.tokens).pexpire(charge.key, charge.ttlMs);
        commands++;
      }
      for (const key of slots) {
        multi.zrem(key, member);
        commands++;
      }
      // Nothing is sent before exec: an empty MULTI is simply dropped.
      if (commands === 0) return;
      try {
        await multi.exec();
      } catch (error) {
        failed(error);
      }
    },
    available: () => available,
    // eslint-disable-next-line @typescript-eslint/require-await -- the store interface is async; keep a throw a rejection
    async close() {
      clearInterval(renew);
      client.disconnect();
    },
  };
}
