// gc_workload.js, run as: node gc_workload.js LIVE_MIB GARBAGE_MIB_PER_S KEPT_KIB_PER_S
const liveMib = Number(process.argv[2]), rateMib = Number(process.argv[3]);
const keptKib = Number(process.argv[4]);
const piece = 32768;  // doubles: 256 KiB on the V8 heap
const live = new Array(liveMib * 4).fill(null);
const kept = [];
let keptDebt = 0, sink = 0, tick = 0;
function second() {
  const start = Date.now();
  for (let i = 0; i < rateMib * 4; i++) {
    const b = new Array(piece).fill(i + tick + 0.5);
    if (live.length && Math.random() < 0.125) live[Math.floor(Math.random() * live.length)] = b;
    sink += b[i % piece];
  }
  for (keptDebt += keptKib; keptDebt >= 256; keptDebt -= 256) kept.push(new Array(piece).fill(tick));
  ++tick;
  if (sink === 42) console.log(sink);
  setTimeout(second, Math.max(0, 1000 - (Date.now() - start)));
}
second();