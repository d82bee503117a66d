#include "model/torch_runtime.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <dlfcn.h>

#include <limits>

namespace argserve {

void ApplyThreadSettings(int intra_op_threads, int blas_threads) {
  if (intra_op_threads > 0) at::set_num_threads(intra_op_threads);
  if (blas_threads <= 0) return;
  // Looked up at run time: OpenBLAS sizes its pool from the environment at
  // start-up, and may not be the BLAS in use.
  using SetThreads = void (*)(int);
  if (auto* set = reinterpret_cast<SetThreads>(
          dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(blas_threads);
  }
}

AutocastScope::AutocastScope(bool enabled, bool cuda)
    : enabled_(enabled), cuda_(cuda) {
  if (!enabled_) return;
  if (cuda_) {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(false);
  } else {
    at::autocast::set_cpu_enabled(false);
  }
}

bool OneDnnCache::Init() {
  set_capacity_ = reinterpret_cast<Setter>(
      dlsym(RTLD_DEFAULT, "dnnl_set_primitive_cache_capacity"));
  get_capacity_ = reinterpret_cast<Getter>(
      dlsym(RTLD_DEFAULT, "dnnl_get_primitive_cache_capacity"));
  // dnnl::impl::get_primitive_cache_size(int*), exported by libdnnl 2.x.
  get_size_ = reinterpret_cast<Getter>(
      dlsym(RTLD_DEFAULT, "_ZN4dnnl4impl24get_primitive_cache_sizeEPi"));
  if (set_capacity_ == nullptr || get_capacity_ == nullptr ||
      get_size_ == nullptr)
    return false;
  int capacity = 0;
  if (get_capacity_(&capacity) != 0) return false;
  return capacity >= kInitialCapacity || set_capacity_(kInitialCapacity) == 0;
}

bool OneDnnCache::KeepRoom() {
  std::lock_guard<std::mutex> lock(mu_);
  int size = 0;
  int capacity = 0;
  if (get_size_(&size) != 0 || get_capacity_(&capacity) != 0) return false;
  if (2 * size < capacity) return true;
  return capacity <= std::numeric_limits<int>::max() / 2 &&
         set_capacity_(2 * capacity) == 0;
}

}  // namespace argserve
