#include "argserve/common/memory.h"

#if defined(ARGSERVE_JEMALLOC)
#include <jemalloc/jemalloc.h>
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

namespace argserve {

std::string AllocatorName() {
#if defined(ARGSERVE_JEMALLOC)
  return "jemalloc";
#else
  return "glibc";
#endif
}

void ReleaseFreedMemory() {
#if defined(ARGSERVE_JEMALLOC)
  static_assert(MALLCTL_ARENAS_ALL == 4096, "arena index for all arenas");
  mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
#elif defined(__GLIBC__)
  malloc_trim(0);
#endif
}

bool PeriodicMemoryRelease::MaybeRelease() {
  using std::chrono::duration_cast;
  using std::chrono::nanoseconds;
  const int64_t now = duration_cast<nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = last_ns_.load(std::memory_order_relaxed);
  if (last != kNever && now - last < interval_ns_) return false;
  if (!last_ns_.compare_exchange_strong(last, now)) return false;
  ReleaseFreedMemory();
  return true;
}

}  // namespace argserve
