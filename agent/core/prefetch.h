// PrefetchForRead: asks for the cache line holding `p`, for a read soon. A hint: no fault, no
// effect on memory.
//
// Not __builtin_prefetch: GCC 12 (Debian 12) drops it from Pipeline::HandleRecords' loop, where
// the address is computed from a record the loop reads (measured: no prefetch instruction in the
// object, and no gain); a volatile asm stays where it is written.
#ifndef TAPIO_AGENT_CORE_PREFETCH_H_
#define TAPIO_AGENT_CORE_PREFETCH_H_

namespace tapio {

inline void PrefetchForRead(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht0 (%0)" : : "r"(p));
#elif defined(__aarch64__)
  asm volatile("prfm pldl1keep, [%0]" : : "r"(p));
#else
  __builtin_prefetch(p);
#endif
}

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_PREFETCH_H_
