/**
 * WAL damage with real node processes (issue 5's documented behaviour):
 *   - a torn tail (the last record cut short, or a bit flipped in it) is cut off at start
 *     with a warning that says how many bytes were dropped; everything before it is there;
 *   - a bit flipped in a record in the middle of the log stops start-up with an error that
 *     names the file and the offset; `dcounter wal check` reports it, `dcounter wal repair`
 *     cuts back to the last intact record, and the node then starts with exactly that;
 *   - a deleted snapshot (segments after it, nothing covering the ones before) is refused,
 *     never started from silently with less;
 *   - a full disk (a 2 MB tmpfs mounted here) fails writes with 503, acknowledges nothing
 *     it did not store, keeps the process up, and works again once space returns; after a
 *     kill -9 and restart the value is exactly what was acknowledged.
 * The tests know the file layout (`<data dir>/wal/<16 digits>.wal`, an 8-byte magic, then
 * records of a 12-byte header `u32le length | crc | crc` and a payload, then zeros the node
 * preallocated) only to damage it.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { registerCleanup } from "./Cleanup.js"
import { Cluster, type NodeService } from "./Cluster.js"
import { request } from "./Http.js"
import { Prng } from "./Prng.js"
import { runCli, sleep } from "./Proc.js"
import type { Summary } from "./Summary.js"

const AREA = "wal"
const MAGIC = 8
const HEADER = 12
const SEGMENT_RE = /^\d{16}\.wal$/
const SNAPSHOT_RE = /^snapshot-\d{16}\.snap$/

interface RecordPos {
  readonly start: number
  readonly length: number
}

const walDirOf = (n: NodeService) => path.join(n.dataDir, "wal")

const segments = (n: NodeService): Array<string> =>
  fs.existsSync(walDirOf(n)) ? fs.readdirSync(walDirOf(n)).filter((f) => SEGMENT_RE.test(f)).sort() : []

const snapshots = (n: NodeService): Array<string> =>
  fs.existsSync(walDirOf(n)) ? fs.readdirSync(walDirOf(n)).filter((f) => SNAPSHOT_RE.test(f)).sort() : []

/** The records of a segment, by walking the length fields. */
export const recordsOf = (file: string): Array<RecordPos> => {
  const buf = fs.readFileSync(file)
  const out: Array<RecordPos> = []
  let at = MAGIC
  while (at + HEADER <= buf.length) {
    const length = buf.readUInt32LE(at)
    // a zero length: the zeros the node preallocates after its last record
    if (length === 0 || at + HEADER + length > buf.length) break
    out.push({ start: at, length })
    at += HEADER + length
  }
  return out
}

const flipBit = (file: string, offset: number, bit: number): void => {
  const fd = fs.openSync(file, "r+")
  try {
    const b = Buffer.alloc(1)
    fs.readSync(fd, b, 0, 1, offset)
    b[0] = b[0]! ^ (1 << bit)
    fs.writeSync(fd, b, 0, 1, offset)
  } finally {
    fs.closeSync(fd)
  }
}

const post = (n: NodeService, p: string, by: number) =>
  request({ host: n.host, port: n.httpPort, method: "POST", path: p, body: JSON.stringify({ by }), timeoutMs: 5000 })

const valueOf = async (n: NodeService, counter: string): Promise<number> =>
  ((await n.getJson(`/counters/${counter}`)) as { value: number }).value

/** Sequential acknowledged increments by 1..count; returns their sum. */
const incrementSeries = async (n: NodeService, counter: string, from: number, count: number): Promise<number> => {
  let sum = 0
  for (let i = from; i < from + count; i++) {
    const r = await post(n, `/counters/${counter}/increment`, i)
    if (r.kind !== "answer" || r.status !== 200) throw new Error(`increment by ${i} failed: ${r.kind === "answer" ? r.status : r.code}`)
    sum += i
  }
  return sum
}

/** Starts a node that may refuse to start: ready, or exited with its output. */
const startMaybe = async (n: NodeService, timeoutMs = 20_000): Promise<{ ready: true } | { ready: false; code: number | null; output: string }> => {
  n.proc.start(true)
  try {
    await n.waitReady(timeoutMs)
    n.proc.watchForCrash()
    return { ready: true }
  } catch {
    const exit = await n.proc.waitExit(5000)
    if (exit === undefined) {
      await n.proc.kill9()
      return { ready: false, code: null, output: `still running but not ready after ${timeoutMs}ms\n${n.proc.logSinceStart()}` }
    }
    return { ready: false, code: exit.code, output: n.proc.logSinceStart() }
  }
}

const singleNode = async (runDir: string, name: string, host: number): Promise<Cluster> =>
  Cluster.create({ runDir: path.join(runDir, name), nodes: 1, discovery: false, gateway: false, firstHost: host })

export interface WalOptions {
  readonly runDir: string
  readonly seed: number
}

export const runWalScenario = async (o: WalOptions, summary: Summary): Promise<void> => {
  const rng = new Prng(o.seed, "wal")
  await tornTail(o.runDir, rng, summary)
  await midLog(o.runDir, rng, summary)
  await deletedSnapshot(o.runDir, summary)
  await fullDisk(o.runDir, summary)
}

const tornTail = async (runDir: string, rng: Prng, summary: Summary): Promise<void> => {
  const c = await singleNode(runDir, "tail", 70)
  const n = c.nodes[0]!
  try {
    await c.start()
    // the increments of each round's damaged record are lost by our hand, not the node's
    const total = await incrementSeries(n, "torn", 1, 30)
    for (let round = 0; round < 3; round++) {
      // one more acknowledged increment, then damage exactly its record
      const by = 1000 + round
      await incrementSeries(n, "torn", by, 1)
      await n.proc.kill9()
      const seg = segments(n).at(-1)
      if (seg === undefined) {
        summary.check(AREA, "torn tail: a WAL segment exists", false, `no segment in ${walDirOf(n)}`)
        return
      }
      const file = path.join(walDirOf(n), seg)
      const last = recordsOf(file).at(-1)!
      const size = HEADER + last.length
      let how: string
      if (round % 2 === 0) {
        const keep = rng.int(1, size - 1)
        fs.truncateSync(file, last.start + keep)
        how = `cut to ${keep} of its ${size} bytes`
      } else {
        const at = last.start + rng.int(0, size - 1)
        flipBit(file, at, rng.int(0, 7))
        how = `bit flipped at offset ${at}`
      }
      const started = await startMaybe(n)
      if (!started.ready) {
        summary.check(AREA, `torn tail (last record ${how}): the node starts`, false, `exit ${started.code}: ${started.output.slice(-600)}`)
        return
      }
      const v = await valueOf(n, "torn")
      summary.check(AREA, `torn tail (last record ${how}): everything before it is there, only it is gone`, v === total, `value ${v}, expected ${total}`)
      // one warning line (not the start banner, whose paths are no evidence) naming the bytes dropped
      const line = n.proc
        .logSinceStart()
        .split("\n")
        .find((l) => !l.startsWith("=====") && /WARN/.test(l) && /torn|cut/i.test(l) && /\d+ bytes/.test(l))
      summary.check(AREA, `torn tail (last record ${how}): a warning says how many bytes were dropped`, line !== undefined, line ?? "(no warning line)")
    }
  } finally {
    await c.stop()
  }
}

const midLog = async (runDir: string, rng: Prng, summary: Summary): Promise<void> => {
  const c = await singleNode(runDir, "midlog", 71)
  const n = c.nodes[0]!
  try {
    await c.start()
    const count = 40
    await incrementSeries(n, "mid", 1, count)
    await n.proc.kill9()
    const seg = segments(n).at(-1)!
    const file = path.join(walDirOf(n), seg)
    const recs = recordsOf(file)
    const oneToOne = recs.length === count
    const k = rng.int(5, recs.length - 6)
    const victim = recs[k]!
    const at = victim.start + HEADER + rng.int(0, victim.length - 1)
    flipBit(file, at, rng.int(0, 7))
    const refused = await startMaybe(n)
    const out = refused.ready ? "" : refused.output
    summary.check(AREA, "mid-log bit flip: the node refuses to start", !refused.ready && refused.code !== 0, refused.ready ? "it started" : `exit ${refused.code}`)
    const namesFile = out.includes(seg) && new RegExp(`offset\\D{0,12}${victim.start}\\b`).test(out)
    summary.check(AREA, "mid-log bit flip: the error names the file and the offset", namesFile, `expected ${seg} and offset ${victim.start} in: ${out.slice(-800)}`)
    summary.check(AREA, "mid-log bit flip: the error says how to proceed (wal repair)", /wal repair/.test(out), out.slice(-400))
    if (refused.ready) return
    const check = await runCli(["wal", "check", "--data-dir", n.dataDir])
    const checkText = check.stdout + check.stderr
    summary.check(AREA, "`wal check` reports the damage with a non-zero exit", check.code !== 0 && checkText.includes(seg), `exit ${check.code}: ${checkText.slice(-400)}`)
    const repair = await runCli(["wal", "repair", "--data-dir", n.dataDir])
    summary.check(AREA, "`wal repair` exits 0", repair.code === 0, `exit ${repair.code}: ${(repair.stdout + repair.stderr).slice(-400)}`)
    const recheck = await runCli(["wal", "check", "--data-dir", n.dataDir])
    summary.check(AREA, "`wal check` after repair exits 0", recheck.code === 0, `exit ${recheck.code}: ${(recheck.stdout + recheck.stderr).slice(-400)}`)
    const again = await startMaybe(n)
    summary.check(AREA, "after `wal repair` the node starts", again.ready, again.ready ? "" : again.output.slice(-600))
    if (!again.ready) return
    const v = await valueOf(n, "mid")
    // records 0..k-1 survive: increments by 1..k when each op is one record
    const expected = (k * (k + 1)) / 2
    summary.check(
      AREA,
      "after repair the value is exactly the records before the damage",
      oneToOne ? v === expected : v < (count * (count + 1)) / 2,
      `value ${v}, expected ${oneToOne ? expected : "less than the total"} (damaged record ${k} of ${recs.length})`
    )
  } finally {
    await c.stop()
  }
}

/**
 * A compacted WAL whose snapshot is lost: the node wrote segment 1; compaction would have
 * folded it into snapshot-2 and deleted it, with new writes going to segment 2. We make
 * that directory (segment 1 moved away, an empty segment 2, no snapshot) — or, if the
 * node has written a real snapshot, delete that — and the node must refuse to start.
 */
const deletedSnapshot = async (runDir: string, summary: Summary): Promise<void> => {
  const c = await singleNode(runDir, "nosnap", 72)
  const n = c.nodes[0]!
  try {
    await c.start()
    const total = await incrementSeries(n, "snap", 1, 20)
    await n.proc.term(5000)
    const snaps = snapshots(n)
    let how: string
    if (snaps.length > 0) {
      for (const s of snaps) fs.rmSync(path.join(walDirOf(n), s))
      how = `deleted ${snaps.join(",")}`
    } else {
      const segs = segments(n)
      const last = segs.at(-1)!
      const next = String(Number(last.slice(0, 16)) + 1).padStart(16, "0")
      for (const s of segs) fs.renameSync(path.join(walDirOf(n), s), path.join(n.dataDir, `${s}.compacted-away`))
      fs.writeFileSync(path.join(walDirOf(n), `${next}.wal`), Buffer.from("DCWAL001", "latin1"))
      how = `segments ${segs.join(",")} compacted away, ${next}.wal started, snapshot lost`
    }
    const r = await startMaybe(n)
    if (r.ready) {
      const v = await valueOf(n, "snap")
      summary.check(AREA, `deleted snapshot (${how}): never a silent loss`, v === total, `the node started with value ${v}, acknowledged ${total}`)
    } else {
      summary.check(AREA, `deleted snapshot (${how}): the node refuses to start, saying why`, r.code !== 0 && /missing|snapshot|corrupt|damaged/i.test(r.output), `exit ${r.code}: ${r.output.slice(-500)}`)
    }
  } finally {
    await c.stop()
  }
}

/** Unmounts tmpfs mounts left by chaos runs whose process is gone (killed with SIGKILL). */
const removeStaleMounts = (): void => {
  let mounts = ""
  try {
    mounts = fs.readFileSync("/proc/mounts", "utf8")
  } catch {
    return
  }
  for (const line of mounts.split("\n")) {
    const [, where, type] = line.split(" ")
    const m = where === undefined ? null : /\/dcounter-chaos-[^/]+\/wal\/tmpfs-(\d+)$/.exec(where)
    if (type !== "tmpfs" || m === null) continue
    const pid = Number(m[1])
    let alive = true
    try {
      process.kill(pid, 0)
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === "EPERM"
    }
    if (!alive) {
      try {
        execFileSync("umount", ["-l", where!])
      } catch {
        // leave it; it is empty and small
      }
    }
  }
}

const mountTmpfs = (dir: string, size: string): (() => void) => {
  removeStaleMounts()
  fs.mkdirSync(dir, { recursive: true })
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir])
  return registerCleanup(`tmpfs ${dir}`, () => {
    try {
      execFileSync("umount", [dir])
    } catch {
      execFileSync("umount", ["-l", dir])
    }
  })
}

/** Fills a filesystem with one file until ENOSPC; returns its size. */
const fill = (file: string): number => {
  const fd = fs.openSync(file, "w")
  const chunk = Buffer.alloc(64 * 1024, 0x5a)
  let size = 0
  try {
    for (;;) {
      try {
        size += fs.writeSync(fd, chunk)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e
        // fill the last partial page too
        for (let n = 4096; n >= 1; n = Math.floor(n / 2)) {
          try {
            for (;;) size += fs.writeSync(fd, chunk.subarray(0, n))
          } catch {
            // next smaller size
          }
        }
        return size
      }
    }
  } finally {
    fs.closeSync(fd)
  }
}

const fullDisk = async (runDir: string, summary: Summary): Promise<void> => {
  const mnt = path.join(runDir, `tmpfs-${process.pid}`)
  let unmount: () => void
  try {
    unmount = mountTmpfs(mnt, "2m")
  } catch (e) {
    summary.check(AREA, "full disk: a 2 MB tmpfs can be mounted (needs root)", false, String(e).split("\n")[0]!)
    return
  }
  try {
    const c = await Cluster.create({ runDir: path.join(runDir, "full"), nodes: 1, discovery: false, gateway: false, firstHost: 73 })
    const n = c.nodes[0]!
    // put the data directory on the tmpfs
    const dataDir = path.join(mnt, "node1")
    n.proc.setArgs(n.proc.argv.map((a) => (a === n.dataDir ? dataDir : a)))
    try {
      await c.start()
      let acked = await incrementSeries(n, "disk", 1, 10)
      // the node keeps writing into the zeros it preallocated after its records (up to 1 MiB)
      // when the disk fills up; a restart gives them back (recovery cuts them off), so the
      // filler takes every free byte and the next write needs space that is not there
      await n.proc.kill9()
      const restarted = await startMaybe(n)
      if (!restarted.ready) {
        summary.check(AREA, "full disk: the node restarts before the disk fills", false, restarted.output.slice(-600))
        return
      }
      const filler = path.join(mnt, "filler")
      fill(filler)
      let failed = 0
      let other = 0
      let ackedWhileFull = 0
      for (let i = 0; i < 300 && failed < 30; i++) {
        const r = await post(n, "/counters/disk/increment", 1)
        if (r.kind === "answer" && r.status === 200) {
          acked += 1
          ackedWhileFull++
        } else if (r.kind === "answer" && r.status === 503 && typeof (r.json as { error?: unknown } | undefined)?.error === "string") failed++
        else other++
      }
      summary.check(AREA, "full disk: writes fail with a 503 JSON error", failed >= 30 && other === 0, `${failed} x 503, ${other} other failures, ${ackedWhileFull} acknowledged while full`)
      const health = await request({ host: n.host, port: n.httpPort, path: "/health", timeoutMs: 3000 })
      summary.check(AREA, "full disk: the node stays up and answers", n.running && health.kind === "answer", health.kind === "answer" ? `/health ${health.status}` : health.code)
      const read = await valueOf(n, "disk").catch(() => Number.NaN)
      summary.check(AREA, "full disk: the value shows only acknowledged writes", read === acked, `value ${read}, acknowledged ${acked}`)
      fs.rmSync(filler)
      let recovered = false
      for (let i = 0; i < 50 && !recovered; i++) {
        const r = await post(n, "/counters/disk/increment", 1)
        if (r.kind === "answer" && r.status === 200) {
          acked += 1
          recovered = true
        } else await sleep(100)
      }
      summary.check(AREA, "full disk: writes work again once space returns (within 5s)", recovered)
      acked += await incrementSeries(n, "disk", 1, 5)
      await n.proc.kill9()
      const again = await startMaybe(n)
      summary.check(AREA, "full disk: after kill -9 the node starts on the same data", again.ready, again.ready ? "" : again.output.slice(-600))
      if (again.ready) {
        const v = await valueOf(n, "disk")
        summary.check(AREA, "full disk: after restart the value is exactly what was acknowledged", v === acked, `value ${v}, acknowledged ${acked}`)
      }
    } finally {
      await c.stop()
    }
  } finally {
    unmount()
  }
}
