#include "server/memory.h"

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

}  // namespace argserve
