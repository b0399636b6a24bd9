import { bounded } from '../text/bounded.js'

/**
 * Kubernetes Events for what nlb-guard did, off the admission's hot path. An admission only puts a
 * note in a bounded map keyed by involved object and reason (a DaemonSet creating 300 pods makes one
 * key whose count grows, like client-go's EventCorrelator); one worker sends the notes one at a time,
 * at most one per `minIntervalMs`, and a key sent before is PATCHed (count, lastTimestamp, message)
 * instead of creating a new Event. Nothing here waits for, or fails on, the apiserver.
 */

/** The closed set of reasons (and of the metric's `reason` label). */
export const EVENT_REASONS = ['Mutated', 'Denied', 'WouldMutate', 'WouldDeny'] as const
export type EventReason = (typeof EVENT_REASONS)[number]

/** What `kubectl describe` matches an Event by: all four, uid included (kubectl's searchEvents). */
export interface InvolvedObject {
  readonly apiVersion: string
  readonly kind: string
  readonly namespace: string
  readonly name: string
  readonly uid: string
}

export interface EventNote {
  readonly involved: InvolvedObject
  readonly reason: EventReason
  readonly message: string
}

/** A core/v1 Event to create or (when `existing` names one) to patch. */
export interface OutgoingEvent extends EventNote {
  readonly count: number
  /** Set when an Event for this key was created before: patch it rather than create another. */
  readonly existing?: string | undefined
}

/** Sends one Event; resolves with the Event's name. A rejection is counted and logged, never retried. */
export type EventSink = (event: OutgoingEvent) => Promise<string>

export type EventResult = 'emitted' | 'aggregated' | 'dropped' | 'failed'

export interface EventRecorderOptions {
  readonly sink: EventSink
  /**
   * Where a note's Event goes, decided by the worker just before sending (a ReplicaSet's Deployment:
   * events/owners.ts); notes of two objects resolved to one share its Event. Never rejects.
   */
  readonly resolveInvolved?: (involved: InvolvedObject) => Promise<InvolvedObject>
  /** Notes waiting to be sent, at most (distinct keys; repeats of a waiting key cost nothing). */
  readonly maxPending?: number
  /** Keys remembered after sending (to patch their Event), at most; the oldest is forgotten first. */
  readonly maxRemembered?: number
  /** Least time between two requests to the apiserver. */
  readonly minIntervalMs?: number
  readonly onResult?: (result: EventResult, reason: EventReason) => void
  readonly onError?: (error: unknown, event: OutgoingEvent) => void
  /** Waits `ms` (tests pass one that resolves at once). */
  readonly sleep?: (ms: number) => Promise<void>
}

export interface EventRecorder {
  /** Never blocks, never throws: queues the note, adds it to a waiting one, or drops it when full. */
  record(note: EventNote): void
  /** Resolves when nothing is waiting or being sent (tests). */
  idle(): Promise<void>
  /**
   * At shutdown: sends what waits without the pause between requests, for at most `withinMs`, then
   * stops. What is still unsent then is counted `dropped`. New notes are refused from the start.
   */
  flush(withinMs: number): Promise<FlushResult>
  /** Stops sending; waiting notes are dropped. */
  stop(): void
}

export interface FlushResult {
  /** Notes waiting (or being sent) when the flush began. */
  readonly pending: number
  /** Of those, not sent by the deadline (counted `dropped`; one in flight may still arrive). */
  readonly unsent: number
}

/** The message of an Event: kubectl prints it whole; a rule's explanation can quote user data. */
export const MAX_MESSAGE = 1024

const keyOf = (involved: InvolvedObject, reason: EventReason): string => `${involved.uid}\u0000${reason}`

const unrefSleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref()
  })

export function createEventRecorder(options: EventRecorderOptions): EventRecorder {
  const maxPending = options.maxPending ?? 256
  const maxRemembered = options.maxRemembered ?? 4096
  const minIntervalMs = options.minIntervalMs ?? 100
  const sleep = options.sleep ?? unrefSleep
  const pending = new Map<string, { note: EventNote; count: number }>()
  // Insertion order is age: a Map re-set after delete moves the key to the end.
  const sent = new Map<string, { name: string; count: number }>()
  let running: Promise<void> | undefined
  let stopped = false
  let inFlight = false
  // A flush ends the pause between requests: the worker may be in one when it begins.
  let flushing = false
  let endPause: (() => void) | undefined
  const pause = (): Promise<void> =>
    flushing
      ? Promise.resolve()
      : Promise.race([sleep(minIntervalMs), new Promise<void>((resolve) => (endPause = resolve))])

  const work = async (): Promise<void> => {
    for (;;) {
      const next = pending.entries().next()
      if (next.done === true || stopped) return
      const [waitingKey, { note, count }] = next.value
      pending.delete(waitingKey)
      inFlight = true
      const involved = options.resolveInvolved === undefined ? note.involved : await options.resolveInvolved(note.involved).catch(() => note.involved)
      if (stopped) {
        inFlight = false
        return
      }
      const key = keyOf(involved, note.reason)
      const before = sent.get(key)
      const event: OutgoingEvent = { ...note, involved, message: bounded(note.message, MAX_MESSAGE), count: (before?.count ?? 0) + count, existing: before?.name }
      try {
        const name = await options.sink(event)
        sent.delete(key)
        sent.set(key, { name, count: event.count })
        if (sent.size > maxRemembered) sent.delete(sent.keys().next().value as string)
        options.onResult?.('emitted', note.reason)
      } catch (error: unknown) {
        options.onResult?.('failed', note.reason)
        options.onError?.(error, event)
      } finally {
        inFlight = false
      }
      await pause()
    }
  }

  // Restarted when the worker finished with a note added after its last look at the map.
  const kick = (): void => {
    running ??= work().finally(() => {
      running = undefined
      if (pending.size > 0 && !stopped) kick()
    })
  }

  const idle = async (): Promise<void> => {
    while (running !== undefined) await running
  }
  const stop = (): void => {
    stopped = true
    pending.clear()
  }

  return {
    record(note) {
      if (stopped || flushing) return
      const key = keyOf(note.involved, note.reason)
      const waiting = pending.get(key)
      if (waiting !== undefined) {
        waiting.count++
        waiting.note = note
        options.onResult?.('aggregated', note.reason)
        return
      }
      if (pending.size >= maxPending) {
        options.onResult?.('dropped', note.reason)
        return
      }
      pending.set(key, { note, count: 1 })
      kick()
    },
    idle,
    async flush(withinMs) {
      const pendingAtStart = pending.size + (inFlight ? 1 : 0)
      flushing = true
      endPause?.()
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, withinMs)
      })
      await Promise.race([idle(), deadline])
      clearTimeout(timer)
      const unsent = pending.size + (inFlight ? 1 : 0)
      for (const { note } of pending.values()) options.onResult?.('dropped', note.reason)
      stop()
      return { pending: pendingAtStart, unsent }
    },
    stop,
  }
}
