/**
 * What a process costs, read from Linux `/proc`: CPU time (user + system,
 * the process and its descendants, e.g. nginx's workers) and peak resident
 * memory (`VmHWM`). CPU time is the robust number on a shared machine:
 * other load slows a process down but does not add to its own CPU time.
 *
 * In: a pid. Out: {@link CpuSample} / bytes. Throws nothing: a process that
 * is gone reads as zero.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second for the `/proc/PID/stat` times (almost always 100). */
export const CLOCK_TICKS: number = (() => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

export interface CpuSample {
  /** User + system CPU seconds of the process tree. */
  readonly cpuSeconds: number;
  /** Wall clock (ms) when sampled. */
  readonly at: number;
}

interface StatFields {
  readonly ppid: number;
  readonly ticks: number;
}

function readStat(pid: number): StatFields | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
    return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) };
  } catch {
    return undefined;
  }
}

/** The pid and every descendant of it (nginx master → workers). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat === undefined) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(name));
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift() as number;
    out.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return out;
}

/** CPU seconds used so far by the given processes (pass {@link processTree} for a tree). */
export function cpuSample(pids: readonly number[]): CpuSample {
  let ticks = 0;
  for (const pid of pids) ticks += readStat(pid)?.ticks ?? 0;
  return { cpuSeconds: ticks / CLOCK_TICKS, at: Date.now() };
}

/** Peak resident set size (VmHWM) in bytes, summed over the processes. */
export function peakRssBytes(pids: readonly number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match) kib += Number(match[1]);
    } catch {
      // gone
    }
  }
  return kib * 1024;
}

/** Current resident set size (VmRSS) in bytes, summed over the processes. */
export function currentRssBytes(pids: readonly number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match) kib += Number(match[1]);
    } catch {
      // gone
    }
  }
  return kib * 1024;
}

/** Whether CPU pinning is possible here (`taskset` installed and at least two cores). */
export function pinningAvailable(cores: number): boolean {
  return cores >= 2 && ['/usr/bin/taskset', '/bin/taskset', '/usr/local/bin/taskset'].some((p) => existsSync(p));
}

/** The 1, 5 and 15 minute load averages. */
export function loadAverage(): [number, number, number] {
  try {
    const [a, b, c] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
    return [a ?? 0, b ?? 0, c ?? 0];
  } catch {
    return [0, 0, 0];
  }
}
