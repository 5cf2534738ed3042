/**
 * `DataDir` on a `MemoryDisk`: the replica id is made on first use of an empty disk
 * (`fresh: true`) and is the same on every later start; a second holder of the same disk
 * in the same incarnation is refused with `DataDirError` reason `Locked`. A crashed
 * incarnation (`disk.crash()`) no longer holds the lock.
 */
import { Effect, Layer } from "effect"
import { makeReplicaId } from "../crdt/ReplicaId.js"
import { DataDir, DataDirError } from "./DataDir.js"
import type { MemoryDisk } from "./MemoryDisk.js"

export const make = (disk: MemoryDisk) =>
  Effect.gen(function*() {
    const generation = disk.generation
    yield* Effect.acquireRelease(
      Effect.suspend(() => {
        if (disk.lockHolder === generation) {
          return Effect.fail(
            new DataDirError({
              reason: "Locked",
              path: disk.path,
              message: `data directory ${disk.path} is in use by another node`
            })
          )
        }
        disk.lockHolder = generation
        return Effect.void
      }),
      () =>
        Effect.sync(() => {
          if (disk.lockHolder === generation) disk.lockHolder = undefined
        })
    )
    const fresh = disk.replicaId === undefined
    const replicaId = disk.replicaId ?? makeReplicaId()
    disk.replicaId = replicaId
    return DataDir.of({ path: disk.path, replicaId, fresh })
  })

export const layer = (disk: MemoryDisk): Layer.Layer<DataDir, DataDirError> => Layer.scoped(DataDir, make(disk))
