#ifndef ARGSERVE_SERVER_MEMORY_H_
#define ARGSERVE_SERVER_MEMORY_H_

#include <string>

namespace argserve {

// The allocator behind malloc in this process: "jemalloc" when the binary is
// linked with it (the default build), otherwise "glibc".
std::string AllocatorName();

// Hands memory that has been freed but is still held by the allocator back to
// the OS: jemalloc purges the unused pages of all its arenas, glibc trims its
// arenas (malloc_trim).
void ReleaseFreedMemory();

}  // namespace argserve

#endif  // ARGSERVE_SERVER_MEMORY_H_
