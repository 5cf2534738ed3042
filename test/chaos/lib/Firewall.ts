/**
 * Network partitions between loopback addresses with iptables: one chain of our own
 * (`DCCHAOS-<pid>`), jumped to from OUTPUT (every loopback packet passes there), holding
 * DROP or REJECT rules for (source, destination) pairs of node addresses. Only addresses
 * in 127.0.0.0/8 are ever written into a rule. The chain and its jump are removed on
 * `close()`, and by the exit handlers if the run dies first; chains left by a dead run
 * (their pid is gone) are removed when a new firewall is made.
 */
import { execFile, execFileSync } from "node:child_process"
import { promisify } from "node:util"
import { registerCleanup } from "./Cleanup.js"

const run = promisify(execFile)
const CHAIN_PREFIX = "DCCHAOS-"

export type PartitionMode = "drop" | "reject"

const LOOPBACK = /^127\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)$/

export const assertLoopback = (addr: string): void => {
  if (!LOOPBACK.test(addr)) throw new Error(`refusing a firewall rule for ${addr}: only 127.0.0.0/8 is allowed`)
}

const iptablesSync = (args: ReadonlyArray<string>): void => {
  execFileSync("iptables", ["-w", "5", ...args], { stdio: ["ignore", "ignore", "pipe"] })
}

const tryIptablesSync = (args: ReadonlyArray<string>): boolean => {
  try {
    iptablesSync(args)
    return true
  } catch {
    return false
  }
}

const removeChainSync = (chain: string): void => {
  // delete every jump to the chain (there is one, unless a run was interrupted mid-setup)
  for (let i = 0; i < 16 && tryIptablesSync(["-D", "OUTPUT", "-j", chain]); i++);
  tryIptablesSync(["-F", chain])
  tryIptablesSync(["-X", chain])
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Whether iptables exists and may change rules here (root, kernel support). */
export const firewallAvailable = (): { ok: true } | { ok: false; why: string } => {
  try {
    execFileSync("iptables", ["-w", "5", "-S", "OUTPUT"], { stdio: ["ignore", "ignore", "pipe"] })
  } catch (e) {
    return { ok: false, why: `iptables is not usable: ${String(e).split("\n")[0]}` }
  }
  const probe = `${CHAIN_PREFIX}probe${process.pid}`.slice(0, 28)
  if (!tryIptablesSync(["-N", probe])) return { ok: false, why: "iptables cannot create a chain (not root?)" }
  removeChainSync(probe)
  return { ok: true }
}

export interface PartitionRecord {
  readonly groups: ReadonlyArray<ReadonlyArray<string>>
  readonly mode: PartitionMode
}

export class Firewall {
  readonly chain = `${CHAIN_PREFIX}${process.pid}`
  private readonly unregister: () => void
  private closed = false
  /** every partition installed, for the summary */
  readonly history: Array<PartitionRecord> = []
  current: PartitionRecord | undefined

  private constructor() {
    this.unregister = registerCleanup(`iptables chain ${this.chain}`, () => removeChainSync(this.chain))
  }

  static create(): Firewall {
    Firewall.removeStaleChains()
    const fw = new Firewall()
    removeChainSync(fw.chain)
    iptablesSync(["-N", fw.chain])
    iptablesSync(["-I", "OUTPUT", "1", "-j", fw.chain])
    return fw
  }

  /** Removes DCCHAOS-<pid> chains whose process is gone. */
  static removeStaleChains(): void {
    let rules = ""
    try {
      rules = execFileSync("iptables", ["-w", "5", "-S"], { encoding: "utf8" })
    } catch {
      return
    }
    for (const m of rules.matchAll(/^-N (DCCHAOS-(\d+))$/gm)) {
      const pid = Number(m[2])
      if (pid !== process.pid && !pidAlive(pid)) removeChainSync(m[1]!)
    }
  }

  /**
   * Cuts every pair of addresses in different groups, both ways. Replaces any partition in
   * place. Addresses in no group keep talking to everyone.
   */
  async partition(groups: ReadonlyArray<ReadonlyArray<string>>, mode: PartitionMode): Promise<void> {
    if (this.closed) throw new Error("firewall closed")
    for (const g of groups) for (const a of g) assertLoopback(a)
    await this.heal()
    const target = mode === "drop" ? ["-j", "DROP"] : ["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"]
    if (mode === "reject") {
      // the resets REJECT sends pass this chain too: let them through, or they are dropped
      await run("iptables", ["-w", "5", "-A", this.chain, "-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "RETURN"])
    }
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue
        for (const src of groups[i]!) {
          for (const dst of groups[j]!) {
            await run("iptables", ["-w", "5", "-A", this.chain, "-s", `${src}/32`, "-d", `${dst}/32`, ...target])
            if (mode === "reject") {
              // non-TCP traffic between the two is dropped as well
              await run("iptables", ["-w", "5", "-A", this.chain, "-s", `${src}/32`, "-d", `${dst}/32`, "-j", "DROP"])
            }
          }
        }
      }
    }
    this.current = { groups: groups.map((g) => [...g]), mode }
    this.history.push(this.current)
  }

  /** Removes every partition rule (the chain stays, empty). */
  async heal(): Promise<void> {
    if (this.closed) return
    await run("iptables", ["-w", "5", "-F", this.chain])
    this.current = undefined
  }

  /** The rules now in the chain, as `iptables -S` prints them. */
  async rules(): Promise<Array<string>> {
    const { stdout } = await run("iptables", ["-w", "5", "-S", this.chain])
    return stdout.split("\n").filter((l) => l.startsWith("-A "))
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.unregister()
  }
}
