/**
 * The options node runs the agent with; every way of starting it passes them (the bin's
 * shebang, `npm start`, the systemd and launchd files; test/fast/node-flags.test.ts checks
 * each carries these).
 *
 * --single-threaded-gc: each socket read of a download allocates a 64 KiB buffer that V8
 * counts as external memory, and that pressure starts a full collection every ~16 MiB
 * received (about 60 per GiB). The heap is small (~11 MiB), so marking it concurrently cost
 * V8's helper threads more than the marking itself: 0.6-0.8 s of CPU per GiB downloaded, more
 * than the whole main thread. Marked on the main thread instead, the same collections cost
 * it nothing measurable (docs/PERFORMANCE.md). Pauses stay a few ms, within what a FUSE
 * callback already waits for a turn of the event loop.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];
