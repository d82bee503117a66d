#include "argserve/common/memory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ARGSERVE_SANITIZER_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ARGSERVE_SANITIZER_ALLOCATOR 1
#endif
#endif

namespace argserve {
namespace {

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t total_pages = 0;
  int64_t resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * sysconf(_SC_PAGESIZE);
}

TEST(MemoryTest, AllocatorIsNamed) {
  const std::string name = AllocatorName();
  EXPECT_TRUE(name == "jemalloc" || name == "glibc") << name;
}

// Freed blocks the size of model activations must not stay resident after a
// release: jemalloc would keep them as dirty pages for seconds, glibc in its
// arenas.
TEST(MemoryTest, ReleaseReturnsFreedBlocksToTheOs) {
#if defined(ARGSERVE_SANITIZER_ALLOCATOR)
  GTEST_SKIP() << "sanitizers keep freed memory in their own quarantine";
#endif
  constexpr size_t kBlock = 256 << 10;
  constexpr int kBlocks = 256;  // 64 MiB in all
  ReleaseFreedMemory();
  const int64_t before = ResidentBytes();
  {
    std::vector<std::unique_ptr<char[]>> blocks;
    for (int i = 0; i < kBlocks; ++i) {
      blocks.emplace_back(new char[kBlock]);
      std::memset(blocks.back().get(), i, kBlock);  // make the pages resident
    }
    ASSERT_GT(ResidentBytes(), before + int64_t{kBlocks} * kBlock / 2);
  }
  ReleaseFreedMemory();
  EXPECT_LT(ResidentBytes(), before + int64_t{kBlocks} * kBlock / 8)
      << "resident before " << before << " bytes";
}

TEST(MemoryTest, PeriodicReleaseRunsAtMostOncePerInterval) {
  PeriodicMemoryRelease hourly(std::chrono::hours(1));
  EXPECT_TRUE(hourly.MaybeRelease());
  EXPECT_FALSE(hourly.MaybeRelease());
  EXPECT_FALSE(hourly.MaybeRelease());
  PeriodicMemoryRelease always(std::chrono::nanoseconds(0));
  EXPECT_TRUE(always.MaybeRelease());
  EXPECT_TRUE(always.MaybeRelease());
}

}  // namespace
}  // namespace argserve
