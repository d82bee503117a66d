#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "argserve/model/classifier.h"
#include "model/torch_runtime.h"

namespace argserve {
namespace {

// Torch error messages span many lines with C++ stack traces; the first line
// says what happened.
std::string FirstLine(const std::string& text) {
  std::string line(text.substr(0, text.find('\n')));
  return line.empty() ? "unknown error" : line;
}

// bf16 on CPU: column counts that are multiples of this keep oneDNN's matrix
// shapes, and so its cache entries, few.
constexpr int64_t kBf16CpuColumnMultiple = 32;
constexpr char kReferencesFile[] = "references.tsv";

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

bool DeviceIsGpu(const std::string& device) {
  if (device == "auto") return torch::cuda::is_available();
  return device.rfind("cuda", 0) == 0;
}

absl::StatusOr<std::unique_ptr<Classifier>> LoadTorchClassifier(
    const std::string& path, const TorchClassifierOptions& options) {
  auto device = ResolveDevice(options.device);
  if (!device.ok()) return device.status();
  if (!std::ifstream(path).good()) {
    return absl::NotFoundError(absl::StrCat(
        "model file '", path, "': cannot be opened (missing or unreadable)"));
  }
  ApplyThreadSettings(options.intra_op_threads, options.blas_threads);

  torch::jit::ExtraFilesMap extra_files{{"model.json", ""},
                                        {kReferencesFile, ""}};
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
  if (metadata->references.has_value()) {
    if (metadata->references->file != kReferencesFile) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model file '", path, "': model.json names the reference set '",
          metadata->references->file, "'; this server reads '", kReferencesFile,
          "'"));
    }
    if (extra_files[kReferencesFile].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model file '", path, "': model.json describes ",
                       kReferencesFile, " but the file is not inside"));
    }
    metadata->references_table = std::move(extra_files[kReferencesFile]);
  }
  for (const char* method : {"forward", "embed"}) {
    if (!module.find_method(method)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model file '", path, "': has no '", method, "' method"));
    }
  }
  module.eval();
  torch::jit::getProfilingMode() = options.executor == Executor::kProfiling;
  try {
    if (options.graph_passes == GraphPasses::kFreeze) {
      module = torch::jit::freeze(module);
    } else if (options.graph_passes == GraphPasses::kOptimize) {
      module = torch::jit::freeze(module);
      module = torch::jit::optimize_for_inference(module);
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("model file '", path, "': ", NameOf(options.graph_passes),
                     " failed: ", FirstLine(e.what())));
  }
  return std::unique_ptr<Classifier>(
      new TorchClassifier(module, *std::move(metadata), *device,
                          options.precision == Precision::kBf16,
                          options.grad_mode == GradMode::kInference));
}

}  // namespace argserve
