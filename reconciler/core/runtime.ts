// The V8 flags every HostKit process starts with: the `hostkit` shebang, the
// agent's unit, the npm scripts and the benchmarks all use this list (a test
// holds the shebang and the scripts to it).
//
// --max-semi-space-size=4 caps each of V8's young-generation semi-spaces at
// 4 MB. A run allocates mostly short-lived garbage (parsed YAML, rendered
// files, diffs) around a live set of 30 to 55 MB; left alone, V8 grows the
// semi-spaces to 16 MB once allocation is brisk, and the process keeps ~35 MB
// more resident that is empty most of the time. Measured 2026-11-29: the
// 1,000-project plan benchmark peaks at 114 instead of 168 MB for about 0.1 s
// more CPU; bench:converge at N = 300 applies in 116 instead of 163 MB.
// 1 and 2 MB promote more to the old generation and were no smaller.
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
