/**
 * What a process tree costs, read from /proc: CPU time and resident memory.
 *
 * "Tree" because a proxy may fork (nginx's master and worker, cluster workers); the cost of a
 * contender is the cost of every process it runs.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat's time fields. */
const CLK_TCK = clockTicks();

function clockTicks(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: [0] state, [1] ppid, ... [11] utime, [12] stime, [13] cutime, [14] cstime.
  const num = (i: number) => Number(fields[i] ?? 0);
  return { pid, ppid: num(1), ticks: num(11) + num(12) + num(13) + num(14) };
}

function allStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) stats.push(stat);
  }
  return stats;
}

/** `root` and every live descendant of it. */
export function treePids(root: number): number[] {
  return treeStats(root).map((s) => s.pid);
}

function treeStats(root: number): ProcStat[] {
  const stats = allStats();
  const children = new Map<number, ProcStat[]>();
  for (const s of stats) {
    const list = children.get(s.ppid) ?? [];
    list.push(s);
    children.set(s.ppid, list);
  }
  const rootStat = stats.find((s) => s.pid === root);
  if (!rootStat) return [];
  const tree: ProcStat[] = [];
  const queue = [rootStat];
  for (let s = queue.shift(); s; s = queue.shift()) {
    tree.push(s);
    queue.push(...(children.get(s.pid) ?? []));
  }
  return tree;
}

/**
 * CPU seconds (user + system) the tree has used so far. Reaped children count through their
 * parent's cutime/cstime, so a worker that exits mid-run is not lost. Resolution is one clock
 * tick (10 ms): fine over a load run of seconds, too coarse for idle CPU (see treeRuntimeSeconds).
 */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const s of treeStats(root)) ticks += s.ticks;
  return ticks / CLK_TCK;
}

/**
 * CPU seconds the tree's live threads have run, to the nanosecond, from the scheduler's
 * sum_exec_runtime (/proc/PID/task/TID/sched). Threads that exit take their time with them, so
 * this is only for idle periods where no thread comes or goes. Null when the kernel has no
 * sched files.
 */
export function treeRuntimeSeconds(root: number): number | null {
  let ms = 0;
  for (const pid of treePids(root)) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      let text: string;
      try {
        text = readFileSync(`/proc/${pid}/task/${tid}/sched`, 'utf8');
      } catch {
        return null;
      }
      const match = /se\.sum_exec_runtime\s*:\s*([\d.]+)/.exec(text);
      if (!match?.[1]) return null;
      ms += Number(match[1]);
    }
  }
  return ms / 1000;
}

/** Resident set size of the tree, in bytes (VmRSS summed over its processes). */
export function treeRssBytes(root: number): number {
  let kib = 0;
  for (const pid of treePids(root)) {
    try {
      const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      kib += Number(match?.[1] ?? 0);
    } catch {
      // Exited between the scan and the read.
    }
  }
  return kib * 1024;
}

/** CPU seconds (own user + system) of every process now running, by pid, with its name. */
export function cpuByProcess(): Map<number, { name: string; seconds: number }> {
  const out = new Map<number, { name: string; seconds: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const name = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const seconds = (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / CLK_TCK;
    out.set(Number(entry), { name, seconds });
  }
  return out;
}

/** Seconds CPU number `cpu` has spent busy (anything but idle and iowait) since boot. */
export function cpuBusySeconds(cpu: number): number {
  const line = new RegExp(`^cpu${cpu} (.*)$`, 'm').exec(readFileSync('/proc/stat', 'utf8'))?.[1];
  if (!line) return 0;
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already
  // inside user, so it is left out too.
  const f = line.trim().split(/\s+/).map(Number);
  const busy = f.reduce((sum, v, i) => (i === 3 || i === 4 || i > 7 ? sum : sum + v), 0);
  return busy / CLK_TCK;
}
