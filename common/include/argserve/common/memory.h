#ifndef ARGSERVE_COMMON_MEMORY_H_
#define ARGSERVE_COMMON_MEMORY_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace argserve {

// The allocator behind malloc in this process: "jemalloc" when the binary is
// linked with it (the default build), otherwise "glibc".
std::string AllocatorName();

// Hands memory that has been freed but is still held by the allocator back to
// the OS: jemalloc purges the unused pages of all its arenas, glibc trims its
// arenas (malloc_trim).
void ReleaseFreedMemory();

// ReleaseFreedMemory at most once per interval, from any number of threads:
// jemalloc returns unused pages by itself, glibc's arenas keep them unless
// trimmed (bench/results/*-soak*.md).
class PeriodicMemoryRelease {
 public:
  explicit PeriodicMemoryRelease(std::chrono::nanoseconds interval)
      : interval_ns_(interval.count()) {}

  // Releases if the interval has passed since the last release; returns
  // whether this call did.
  bool MaybeRelease();

 private:
  static constexpr int64_t kNever = INT64_MIN;
  const int64_t interval_ns_;
  std::atomic<int64_t> last_ns_{kNever};
};

}  // namespace argserve

#endif  // ARGSERVE_COMMON_MEMORY_H_
