// Process- and thread-level LibTorch settings the classifier needs, kept apart
// from the classifier itself. No Torch headers here.
#ifndef ARGSERVE_MODEL_TORCH_RUNTIME_H_
#define ARGSERVE_MODEL_TORCH_RUNTIME_H_

#include <mutex>

namespace argserve {

// Torch intra-op threads and OpenBLAS threads (both process-wide); 0 leaves
// either as it is. Debian's LibTorch calls OpenBLAS (through libblas.so.3) for
// fp32 matrix products; when another BLAS is the libblas.so.3 alternative there
// is nothing to set.
void ApplyThreadSettings(int intra_op_threads, int blas_threads);

// Enables bfloat16 autocast on this thread for one forward, as torch.autocast
// does in Python.
class AutocastScope {
 public:
  AutocastScope(bool enabled, bool cuda);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  const bool enabled_;
  const bool cuda_;
};

// LibTorch runs bfloat16 matrix products on CPU through oneDNN (libdnnl 2.6),
// which caches a primitive per matrix shape. Evicting from that cache fails
// when the primitive was created on another thread (std::bad_alloc, "Broken
// promise", or a crash), even with forwards taking turns; filling it from
// several threads at once is safe. So the cache never evicts: its capacity is
// doubled whenever it is half full, which it can be without evicting.
class OneDnnCache {
 public:
  static constexpr int kInitialCapacity = 16384;

  // Finds the cache's controls and enlarges it; false when this oneDNN lacks
  // them, and forwards must run one at a time.
  bool Init();

  // Doubles the capacity if the cache is half full, so that the forwards
  // running meanwhile cannot fill it; false if it cannot. The capacity is read
  // each time: it is process-wide, and anyone may change it.
  bool KeepRoom();

 private:
  using Getter = int (*)(int*);
  using Setter = int (*)(int);
  Setter set_capacity_ = nullptr;
  Getter get_capacity_ = nullptr;
  Getter get_size_ = nullptr;
  std::mutex mu_;
};

}  // namespace argserve

#endif  // ARGSERVE_MODEL_TORCH_RUNTIME_H_
