/**
 * Multi-threaded Wasm kernels for jax-js on Node.
 *
 * jax-js's Wasm backend has a worker pool (`WasmWorkerPool`) that splits each kernel's output range
 * into one chunk per worker, all sharing one `WebAssembly.Memory`. It is only created when
 * `typeof Worker !== "undefined"`, which is false on Node, so on Node every kernel runs on the main
 * thread. {@link enableThreads} installs a minimal browser-`Worker` shim over `node:worker_threads`
 * and sets `navigator.hardwareConcurrency` (the pool size jax-js uses).
 *
 * ORDERING: jax-js creates its Wasm backend (and decides whether to use the pool) when the module
 * `@jax-js/jax` is first *evaluated*. Call `enableThreads` before that: from a module that does not
 * itself import jax-js and is imported before anything that does, or before a dynamic
 * `await import(...)` of the code that uses jax-js. Called later, it installs the shim but jax-js
 * stays single-threaded ({@link threadStatus} then reports `workers: 0` after a computation).
 *
 * Reading results: only the async paths (`await a.data()`, `await a.blockUntilReady()`) dispatch to
 * the pool. `dataSync()`/`js()` compile and run on the main thread as before; they still work, but
 * throw "cannot dispatch synchronously with pending async work" / "cannot read synchronously from a
 * slot with async work" if an input is still being computed by the pool.
 *
 * Scheduling (measured on 2 cores, Node 20): a round trip to a worker thread costs ~0.1 ms per
 * kernel, and a training step is dozens of kernels, most of them tiny. So by default the pool's
 * first worker runs on the main thread (n - 1 threads are started; the main thread computes chunk 0
 * of every kernel instead of idling, and kernels too small for jax-js to split run with no round
 * trip), and a chunk meant for a thread runs on the main thread instead when that kernel's measured
 * cost says the chunk takes less than `inlineMs`.
 *
 * The event loop is held open only while a request to a worker is outstanding (jax-js's pool
 * protocol is one reply per message; the threads themselves are unref'd), so `await x.data()` at
 * top level works and the process still exits when the work is done.
 */
import { Worker as NodeWorker } from "node:worker_threads";
import { resolveObjectURL } from "node:buffer";

/** How the shim maps jax-js's pool onto threads. */
export interface ThreadOptions {
  /**
   * Run the pool's first worker on the main thread (default true): `enableThreads(n)` then starts
   * n - 1 threads.
   */
  mainThread?: boolean;
  /**
   * Run a kernel chunk addressed to a thread on the main thread when it is predicted (from earlier
   * runs of the same kernel on the main thread) to take less than this many milliseconds — about
   * the cost of a thread round trip. Default 0.1; 0 disables. Needs `mainThread`.
   */
  inlineMs?: number;
}

/** Key of the one message that carries the worker's source text (sent before any caller message). */
const SOURCE_KEY = "__bayesdlWorkerSource";

/**
 * Worker-thread bootstrap: browser-style `self`/`postMessage`/`self.onmessage` over `parentPort`.
 * Caller messages that arrive before the source text are queued and replayed after it.
 */
const BOOTSTRAP = `
const { parentPort } = require("node:worker_threads");
globalThis.self = globalThis;
globalThis.postMessage = (data) => parentPort.postMessage(data);
let queue = [];
function deliver(data) {
  const handler = globalThis.onmessage;
  if (typeof handler === "function") handler.call(globalThis, { data });
}
parentPort.on("message", (msg) => {
  if (queue === null) return deliver(msg);
  if (msg !== null && typeof msg === "object" && typeof msg.${SOURCE_KEY} === "string") {
    (0, eval)('"use strict";\\n' + msg.${SOURCE_KEY});
    const pending = queue;
    queue = null;
    for (const m of pending) deliver(m);
  } else {
    queue.push(msg);
  }
});
`;

/** What a browser `ErrorEvent` offers and jax-js reads (`e.message`). */
interface ShimErrorEvent {
  type: "error";
  message: string;
  error: unknown;
}

/** jax-js 0.1.25 pool messages, as far as the scheduler looks at them. */
interface KernelMessage {
  type: "kernel";
  kernelHash: string;
  begin: number;
  end: number;
}

function isKernelMessage(m: unknown): m is KernelMessage {
  const k = m as Partial<KernelMessage> | null;
  return (
    typeof k === "object" &&
    k !== null &&
    k.type === "kernel" &&
    typeof k.kernelHash === "string" &&
    typeof k.begin === "number" &&
    typeof k.end === "number" &&
    k.end > k.begin
  );
}

type Listener = (data: unknown) => void;

let installedThreads = 0;
let threadsStarted = 0;
/** Kernel chunks addressed to a thread: how many ran there and how many ran on the main thread. */
let chunksToThreads = 0;
let chunksInlined = 0;
let options: Required<ThreadOptions> = { mainThread: true, inlineMs: 0.1 };
/** Shim workers created per blob: URL (jax-js creates its whole pool from one URL). */
const createdPerUrl = new Map<string, number>();
/**
 * Requests (messages to a worker, main-thread or not) not yet answered, over all workers. While
 * > 0, a timer keeps the event loop alive: neither the threads (unref'd) nor an in-flight
 * `Blob.text()` do, and a process awaiting a result must not exit as if nothing were pending.
 */
let outstanding = 0;
let keepAlive: ReturnType<typeof setInterval> | null = null;

function requestSent(): void {
  if (outstanding++ === 0) {
    keepAlive ??= setInterval(() => {}, 1 << 30);
    keepAlive.ref();
  }
}

function replyReceived(): void {
  if (outstanding > 0 && --outstanding === 0) keepAlive?.unref();
}

/** Measured main-thread cost per kernel: milliseconds per output element of a chunk. */
const msPerElement = new Map<string, number>();

/**
 * The worker script run on the main thread: `self`/`postMessage` are parameters of a function
 * wrapping the source, and every delivery is a microtask, so `postMessage` returns at once (jax-js
 * posts to the other workers before this one computes) and replies arrive asynchronously.
 */
class MainThreadScope {
  readonly #reply: Listener;
  readonly #fail: (error: unknown) => void;
  #queue: unknown[] | null = [];
  readonly #self: { onmessage?: unknown } = {};

  constructor(reply: Listener, fail: (error: unknown) => void) {
    this.#reply = reply;
    this.#fail = fail;
  }

  load(source: string): void {
    try {
      const run = new Function("self", "postMessage", '"use strict";\n' + source) as (
        self: object,
        post: Listener,
      ) => void;
      run(this.#self, (data) => queueMicrotask(() => this.#reply(data)));
    } catch (error) {
      this.#fail(error);
      return;
    }
    const pending = this.#queue ?? [];
    this.#queue = null;
    for (const data of pending) this.post(data);
  }

  post(data: unknown): void {
    if (this.#queue !== null) {
      this.#queue.push(data);
      return;
    }
    queueMicrotask(() => {
      const handler = this.#self.onmessage;
      if (typeof handler !== "function") return;
      const t0 = performance.now();
      try {
        handler.call(this.#self, { data });
      } catch (error) {
        this.#fail(error);
      }
      if (isKernelMessage(data)) msPerElement.set(data.kernelHash, (performance.now() - t0) / (data.end - data.begin));
    });
  }
}

/** A browser-`Worker`-compatible wrapper around a `node:worker_threads` Worker (or the main thread). */
class ShimWorker {
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onerror: ((e: ShimErrorEvent) => void) | null = null;
  readonly #thread: NodeWorker | null;
  /** Runs this worker's messages on the main thread (all of them if there is no thread). */
  readonly #scope: MainThreadScope | null;
  /** Requests of this worker not yet answered (released on terminate). */
  #outstanding = 0;
  /** Replies of the scope to drop (its "ready" when it only shadows a thread). */
  #swallow = 0;
  #terminated = false;

  constructor(url: string | URL, _options?: { type?: string; name?: string }) {
    const href = String(url);
    const blob = href.startsWith("blob:") ? resolveObjectURL(href) : undefined;
    if (!blob) throw new TypeError(`Worker shim: only blob: URLs are supported, got ${href}`);
    const index = createdPerUrl.get(href) ?? 0;
    createdPerUrl.set(href, index + 1);
    const reply = (data: unknown) => {
      if (this.#terminated) return;
      if (this.#outstanding > 0) {
        this.#outstanding--;
        replyReceived();
      }
      this.onmessage?.({ data });
    };
    const fail = (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      this.onerror?.({ type: "error", message, error });
    };
    const onMain = options.mainThread && index === 0;
    this.#scope =
      onMain || (options.mainThread && options.inlineMs > 0)
        ? new MainThreadScope((data) => {
            if (this.#swallow > 0) {
              this.#swallow--;
              this.#outstanding--;
              replyReceived();
            } else reply(data);
          }, fail)
        : null;
    if (onMain) {
      this.#thread = null;
    } else {
      const thread = new NodeWorker(BOOTSTRAP, { eval: true });
      thread.unref();
      threadsStarted++;
      thread.on("message", reply);
      thread.on("error", fail);
      this.#thread = thread;
    }
    blob.text().then(
      (source) => {
        if (this.#terminated) return;
        this.#thread?.postMessage({ [SOURCE_KEY]: source });
        this.#scope?.load(source);
      },
      (error: unknown) => fail(new Error(`Worker shim: cannot read worker source: ${String(error)}`)),
    );
  }

  #sent(): void {
    this.#outstanding++;
    requestSent();
  }

  postMessage(data: unknown): void {
    if (this.#terminated) return;
    const thread = this.#thread;
    const scope = this.#scope;
    this.#sent();
    if (thread === null) return scope?.post(data);
    if (scope !== null) {
      if ((data as { type?: unknown } | null)?.type === "init") {
        this.#swallow++; // the scope needs the memory too; the thread's "ready" is the one reported
        this.#sent();
        scope.post(data);
      } else if (isKernelMessage(data)) {
        const cost = msPerElement.get(data.kernelHash);
        if (cost !== undefined && cost * (data.end - data.begin) < options.inlineMs) {
          chunksInlined++;
          return scope.post(data);
        }
        chunksToThreads++;
      }
    }
    thread.postMessage(data);
  }

  terminate(): void {
    if (this.#terminated) return;
    this.#terminated = true;
    for (; this.#outstanding > 0; this.#outstanding--) replyReceived();
    if (this.#thread) void this.#thread.terminate();
  }
}

function setHardwareConcurrency(n: number): void {
  const g = globalThis as { navigator?: object };
  let nav: object | undefined;
  try {
    nav = g.navigator; // Node 21+: a lazily created Navigator; Node 20: undefined
  } catch {
    nav = undefined;
  }
  if (nav !== undefined && nav !== null) {
    try {
      Object.defineProperty(nav, "hardwareConcurrency", { value: n, configurable: true });
      if ((nav as { hardwareConcurrency?: unknown }).hardwareConcurrency === n) return;
    } catch {
      // fall through: replace the global
    }
  }
  Object.defineProperty(globalThis, "navigator", {
    value: Object.assign(Object.create(nav ?? null) as object, { hardwareConcurrency: n }),
    configurable: true,
    writable: true,
    enumerable: false,
  });
}

/**
 * Let jax-js's Wasm backend split each kernel over `n` threads (the main thread and n - 1 worker
 * threads by default). Must run before `@jax-js/jax` is first evaluated (see the module comment).
 * `n === 1` does nothing. Does nothing if a global `Worker` already exists (browsers, Deno, Node
 * with a Worker global, or a previous call) or there is no `SharedArrayBuffer`.
 */
export function enableThreads(n: number, opts: ThreadOptions = {}): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`enableThreads: n must be a positive integer, got ${n}`);
  const inlineMs = opts.inlineMs ?? 0.1;
  if (!(inlineMs >= 0)) throw new RangeError(`enableThreads: inlineMs must be >= 0, got ${inlineMs}`);
  if (n === 1) return;
  if (typeof SharedArrayBuffer === "undefined") return;
  if ((globalThis as { Worker?: unknown }).Worker !== undefined) return;
  options = { mainThread: opts.mainThread ?? true, inlineMs };
  Object.defineProperty(globalThis, "Worker", { value: ShimWorker, configurable: true, writable: true });
  setHardwareConcurrency(n);
  installedThreads = n;
}

/**
 * `threads`: the `n` installed by {@link enableThreads} (0 if none); `workers`: pool workers created
 * so far (`threadsStarted` of them are OS threads). jax-js creates its pool at the first async
 * dispatch, so `workers === 0` after `await x.data()` means jax-js was evaluated before
 * `enableThreads` ran. `chunksToThreads`/`chunksInlined`: kernel chunks jax-js addressed to a thread
 * that ran there / on the main thread (see `inlineMs`).
 */
export function threadStatus(): {
  threads: number;
  workers: number;
  threadsStarted: number;
  chunksToThreads: number;
  chunksInlined: number;
} {
  let workers = 0;
  for (const c of createdPerUrl.values()) workers += c;
  return { threads: installedThreads, workers, threadsStarted, chunksToThreads, chunksInlined };
}
