/**
 * The scheduler of handler fibers: one FIFO queue drained in a microtask, yielding to the
 * event loop (`setImmediate`) after 2048 drains in a row.
 *
 * Effect's default scheduler keeps a runner per fiber (a WeakMap entry, a task bucket and a
 * promise for every resumption); a request handler that suspends once (a WAL append, a call
 * to a node) resumes through it once, and with thousands of such fibers a second that
 * bookkeeping shows up in the profile and in the young-generation GC. Scheduling priorities
 * are not used by the handlers and are ignored here.
 *
 * @internal
 */
import { Scheduler } from "effect"

const MAX_DRAINS_BEFORE_YIELD = 2048

export const makeHandlerScheduler = (): Scheduler.Scheduler => {
  let tasks: Array<Scheduler.Task> = []
  let scheduled = false
  let drains = 0
  const drain = () => {
    const batch = tasks
    tasks = []
    for (let i = 0; i < batch.length; i++) batch[i]!()
    if (tasks.length === 0) {
      scheduled = false
      drains = 0
    } else if (++drains >= MAX_DRAINS_BEFORE_YIELD) {
      drains = 0
      setImmediate(drain)
    } else {
      queueMicrotask(drain)
    }
  }
  return Scheduler.make((task) => {
    tasks.push(task)
    if (!scheduled) {
      scheduled = true
      queueMicrotask(drain)
    }
  })
}
