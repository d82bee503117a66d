#include <ATen/autocast_mode.h>
#include <dlfcn.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "argserve/model/classifier.h"

namespace argserve {
namespace {

// Torch error messages span many lines with C++ stack traces; the first line
// says what happened.
std::string FirstLine(const std::string& text) {
  std::string line(text.substr(0, text.find('\n')));
  return line.empty() ? "unknown error" : line;
}

// Enables bfloat16 autocast on this thread for one forward, as torch.autocast
// does in Python.
class AutocastScope {
 public:
  AutocastScope(bool enabled, bool cuda) : enabled_(enabled), cuda_(cuda) {
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
  ~AutocastScope() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    if (cuda_) {
      at::autocast::set_enabled(false);
    } else {
      at::autocast::set_cpu_enabled(false);
    }
  }
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
// doubled whenever it is half full, which it can be without evicting. Batches
// whose column count is a multiple of kBf16CpuColumnMultiple keep the shapes
// few: 1,024-token batches come in a few hundred.
class OneDnnCache {
 public:
  static constexpr int kInitialCapacity = 16384;

  // Finds the cache's controls and enlarges it; false when this oneDNN lacks
  // them, and forwards must run one at a time.
  bool Init() {
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

  // Doubles the capacity if the cache is half full, so that the forwards
  // running meanwhile cannot fill it; false if it cannot. The capacity is read
  // each time: it is process-wide, and anyone may change it.
  bool KeepRoom() {
    std::lock_guard<std::mutex> lock(mu_);
    int size = 0;
    int capacity = 0;
    if (get_size_(&size) != 0 || get_capacity_(&capacity) != 0) return false;
    if (2 * size < capacity) return true;
    return capacity <= std::numeric_limits<int>::max() / 2 &&
           set_capacity_(2 * capacity) == 0;
  }

 private:
  using Getter = int (*)(int*);
  using Setter = int (*)(int);
  Setter set_capacity_ = nullptr;
  Getter get_capacity_ = nullptr;
  Getter get_size_ = nullptr;
  std::mutex mu_;
};

constexpr int64_t kBf16CpuColumnMultiple = 32;

class TorchClassifier final : public Classifier {
 public:
  // A Module is a handle to the loaded script module; copying it is cheap.
  TorchClassifier(const torch::jit::Module& module, ModelMetadata metadata,
                  torch::Device device, bool bf16, bool inference_mode)
      : module_(module),
        metadata_(std::move(metadata)),
        device_(device),
        bf16_(bf16),
        inference_mode_(inference_mode),
        // bf16 on CPU: forwards run side by side while oneDNN's cache can be
        // kept from evicting (OneDnnCache); otherwise one at a time.
        guard_onednn_(bf16 && !device.is_cuda()),
        alone_(guard_onednn_ && !onednn_cache_.Init()) {}

  const ModelMetadata& metadata() const override { return metadata_; }

  std::string device() const override { return device_.str(); }

  int64_t preferred_column_multiple() const override {
    return guard_onednn_ ? kBf16CpuColumnMultiple : 1;
  }

  bool forwards_side_by_side() const override { return !alone_.load(); }

  absl::StatusOr<std::vector<float>> Predict(const TokenBatch& batch) override {
    if (batch.rows <= 0 || batch.cols <= 0 ||
        static_cast<int64_t>(batch.tokens.size()) != batch.rows * batch.cols) {
      return absl::InvalidArgumentError("malformed token batch");
    }
    if (!guard_onednn_) return Forward(batch);
    if (!alone_.load()) {
      std::shared_lock<std::shared_mutex> side_by_side(onednn_mu_);
      if (!alone_.load() && !onednn_cache_.KeepRoom()) alone_.store(true);
      if (!alone_.load()) return Forward(batch);
    }
    std::unique_lock<std::shared_mutex> alone(onednn_mu_);
    return Forward(batch);
  }

 private:
  absl::StatusOr<std::vector<float>> Forward(const TokenBatch& batch) {
    try {
      std::optional<c10::InferenceMode> inference_mode;
      std::optional<torch::NoGradGuard> no_grad;
      if (inference_mode_) {
        inference_mode.emplace();
      } else {
        no_grad.emplace();
      }
      AutocastScope autocast(bf16_, device_.is_cuda());
      // from_blob does not copy; the batch outlives this call.
      auto tokens = torch::from_blob(const_cast<int64_t*>(batch.tokens.data()),
                                     {batch.rows, batch.cols}, torch::kInt64);
      if (device_.is_cuda())
        tokens = tokens.pin_memory().to(device_, /*non_blocking=*/true);
      auto logits = module_.forward({tokens}).toTensor();
      auto probabilities = torch::softmax(logits.to(torch::kFloat32), /*dim=*/1)
                               .to(torch::kCPU)
                               .contiguous();
      if (probabilities.size(0) != batch.rows ||
          probabilities.size(1) !=
              static_cast<int64_t>(metadata_.classes.size())) {
        return absl::InternalError(
            absl::StrCat("model returned shape [", probabilities.size(0), ", ",
                         probabilities.size(1), "], expected [", batch.rows,
                         ", ", metadata_.classes.size(), "]"));
      }
      const float* data = probabilities.data_ptr<float>();
      return std::vector<float>(data, data + probabilities.numel());
    } catch (const std::exception& e) {
      return absl::InternalError(
          absl::StrCat("model forward failed: ", FirstLine(e.what())));
    }
  }

  torch::jit::Module module_;
  ModelMetadata metadata_;
  torch::Device device_;
  const bool bf16_;
  const bool inference_mode_;
  const bool guard_onednn_;
  OneDnnCache onednn_cache_;
  std::atomic<bool> alone_{false};
  std::shared_mutex onednn_mu_;
};

// Debian's LibTorch calls OpenBLAS (through libblas.so.3) for fp32 matrix
// products. OpenBLAS sizes its thread pool from the environment at start-up;
// the setter is looked up at run time because another BLAS may be installed as
// the libblas.so.3 alternative, in which case there is nothing to set.
void SetBlasThreads(int threads) {
  using SetThreads = void (*)(int);
  if (auto* set = reinterpret_cast<SetThreads>(
          dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(threads);
  }
}

// OK if `value` is one of `choices`; else "<what> must be a, b or c, not 'x'".
absl::Status CheckChoice(const std::string& what, const std::string& value,
                         const std::vector<std::string>& choices) {
  if (std::find(choices.begin(), choices.end(), value) != choices.end())
    return absl::OkStatus();
  std::string listed;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) listed += i + 1 == choices.size() ? " or " : ", ";
    listed += choices[i];
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, " must be ", listed, ", not '", value, "'"));
}

absl::StatusOr<torch::Device> ResolveDevice(const std::string& name) {
  if (name == "auto")
    return torch::cuda::is_available() ? torch::Device("cuda:0")
                                       : torch::Device("cpu");
  try {
    torch::Device device(name);
    if (device.is_cuda() && !torch::cuda::is_available()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device '", name,
          "' requested but this build of LibTorch sees no CUDA device"));
    }
    if (!device.is_cuda() && !device.is_cpu()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported device '", name, "'"));
    }
    return device;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid device '", name, "' (use auto, cpu, cuda or cuda:N)"));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Classifier>> LoadTorchClassifier(
    const std::string& path, const TorchClassifierOptions& options) {
  auto device = ResolveDevice(options.device);
  if (!device.ok()) return device.status();
  for (const absl::Status& status :
       {CheckChoice("precision", options.precision, {"fp32", "bf16"}),
        CheckChoice("graph passes", options.graph_passes,
                    {"none", "freeze", "optimize"}),
        CheckChoice("grad mode", options.grad_mode, {"inference", "no_grad"}),
        CheckChoice("executor", options.executor, {"profiling", "legacy"})}) {
    if (!status.ok()) return status;
  }
  if (!std::ifstream(path).good()) {
    return absl::NotFoundError(absl::StrCat(
        "model file '", path, "': cannot be opened (missing or unreadable)"));
  }
  if (options.intra_op_threads > 0)
    at::set_num_threads(options.intra_op_threads);
  if (options.blas_threads > 0) SetBlasThreads(options.blas_threads);

  torch::jit::ExtraFilesMap extra_files{{"model.json", ""}};
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, *device, extra_files);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("model file '", path,
                     "': not a TorchScript archive: ", FirstLine(e.what())));
  }
  if (extra_files["model.json"].empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model file '", path, "': has no model.json inside"));
  }
  auto metadata = ParseModelMetadata(extra_files["model.json"]);
  if (!metadata.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model file '", path, "': ", metadata.status().message()));
  }
  for (const char* method : {"forward", "embed"}) {
    if (!module.find_method(method)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model file '", path, "': has no '", method, "' method"));
    }
  }
  module.eval();
  torch::jit::getProfilingMode() = options.executor == "profiling";
  try {
    if (options.graph_passes == "freeze") {
      module = torch::jit::freeze(module);
    } else if (options.graph_passes == "optimize") {
      module = torch::jit::freeze(module);
      module = torch::jit::optimize_for_inference(module);
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("model file '", path, "': ", options.graph_passes,
                     " failed: ", FirstLine(e.what())));
  }
  return std::unique_ptr<Classifier>(new TorchClassifier(
      module, *std::move(metadata), *device, options.precision == "bf16",
      options.grad_mode == "inference"));
}

}  // namespace argserve
