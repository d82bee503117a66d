#include "server/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/metrics_http.h"

namespace argserve {
namespace {

prometheus::Histogram::BucketBoundaries Exponential(double start, double factor,
                                                    int count) {
  prometheus::Histogram::BucketBoundaries bounds;
  double value = start;
  for (int i = 0; i < count; ++i, value *= factor) bounds.push_back(value);
  return bounds;
}

}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry =
      std::make_shared<prometheus::Registry>();
  std::unique_ptr<MetricsHttpServer> http;

  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("argserve_requests_total")
          .Help("Finished RPCs by method and gRPC status code")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& cancelled =
      prometheus::BuildCounter()
          .Name("argserve_calls_cancelled_total")
          .Help(
              "Calls seen cancelled before they finished (client cancel or "
              "disconnect, deadline, shutdown), by method")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& sequences =
      prometheus::BuildCounter()
          .Name("argserve_sequences_total")
          .Help("Sequences answered, by method and status code")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& request_seconds =
      prometheus::BuildHistogram()
          .Name("argserve_request_duration_seconds")
          .Help("End-to-end RPC duration in the server")
          .Register(*registry);
  prometheus::Histogram& queue_wait =
      prometheus::BuildHistogram()
          .Name("argserve_queue_wait_seconds")
          .Help("Time a sequence waited for its batch")
          .Register(*registry)
          .Add({}, Exponential(0.0001, 2, 18));
  prometheus::Histogram& inference =
      prometheus::BuildHistogram()
          .Name("argserve_batch_inference_seconds")
          .Help("Model forward time per batch")
          .Register(*registry)
          .Add({}, Exponential(0.0005, 2, 16));
  prometheus::Histogram& batch_size = prometheus::BuildHistogram()
                                          .Name("argserve_batch_size")
                                          .Help("Sequences per batch")
                                          .Register(*registry)
                                          .Add({}, Exponential(1, 2, 10));
  prometheus::Histogram& batch_tokens =
      prometheus::BuildHistogram()
          .Name("argserve_batch_tokens")
          .Help("Padded tokens computed per batch")
          .Register(*registry)
          .Add({}, Exponential(32, 2, 14));
  prometheus::Family<prometheus::Counter>& tokens_family =
      prometheus::BuildCounter()
          .Name("argserve_tokens_total")
          .Help(
              "Tokens through the model: kind=real (sequence tokens) or "
              "computed (incl. padding)")
          .Register(*registry);
  prometheus::Counter& real_tokens = tokens_family.Add({{"kind", "real"}});
  prometheus::Counter& computed_tokens =
      tokens_family.Add({{"kind", "computed"}});
  prometheus::Gauge& padding_efficiency =
      prometheus::BuildGauge()
          .Name("argserve_padding_efficiency")
          .Help(
              "Real tokens / computed tokens over all batches so far (1 = no "
              "padding)")
          .Register(*registry)
          .Add({});
  prometheus::Gauge& queue_depth = prometheus::BuildGauge()
                                       .Name("argserve_queue_depth")
                                       .Help("Sequences waiting for a batch")
                                       .Register(*registry)
                                       .Add({});
  prometheus::Family<prometheus::Counter>& dropped =
      prometheus::BuildCounter()
          .Name("argserve_sequences_dropped_total")
          .Help(
              "Queued sequences not computed because their call was cancelled "
              "or its deadline passed")
          .Register(*registry);
  prometheus::Counter& failed_batches =
      prometheus::BuildCounter()
          .Name("argserve_batch_failures_total")
          .Help("Batches whose model forward failed")
          .Register(*registry)
          .Add({});
  prometheus::Family<prometheus::Gauge>& model_info =
      prometheus::BuildGauge()
          .Name("argserve_model_info")
          .Help("The loaded model (value is always 1)")
          .Register(*registry);
  std::mutex mu;  // Serializes the padding-efficiency ratio update.
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(
    const std::string& address, const std::string& model_name,
    const std::string& model_version, const std::string& device) {
  std::unique_ptr<Metrics> metrics(new Metrics());
  metrics->impl_->model_info
      .Add({{"name", model_name},
            {"version", model_version},
            {"device", device}})
      .Set(1);
  // Series exist from the start, so dashboards and alerts see zeros.
  Impl& m = *metrics->impl_;
  for (const char* rpc : {"Classify", "ClassifyStream"}) {
    m.cancelled.Add({{"rpc", rpc}});
    for (const char* code : {"OK", "INVALID_ARGUMENT", "CANCELLED",
                             "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}) {
      m.requests.Add({{"rpc", rpc}, {"code", code}});
      m.sequences.Add({{"rpc", rpc}, {"code", code}});
    }
  }
  for (const char* reason : {"CANCELLED", "DEADLINE_EXCEEDED"})
    m.dropped.Add({{"reason", reason}});
  if (!address.empty()) {
    auto http = MetricsHttpServer::Start(
        address, [m = metrics.get()] { return m->Render(); });
    if (!http.ok()) return http.status();
    metrics->impl_->http = *std::move(http);
  }
  return metrics;
}

void Metrics::OnRequest(const std::string& rpc, const std::string& code,
                        int sequences, double seconds) {
  impl_->requests.Add({{"rpc", rpc}, {"code", code}}).Increment();
  if (sequences > 0)
    impl_->sequences.Add({{"rpc", rpc}, {"code", code}}).Increment(sequences);
  impl_->request_seconds.Add({{"rpc", rpc}}, Exponential(0.001, 2, 16))
      .Observe(seconds);
}

void Metrics::OnCancelled(const std::string& rpc) {
  impl_->cancelled.Add({{"rpc", rpc}}).Increment();
}

void Metrics::OnSequences(const std::string& rpc, const std::string& code,
                          int sequences) {
  if (sequences > 0)
    impl_->sequences.Add({{"rpc", rpc}, {"code", code}}).Increment(sequences);
}

void Metrics::OnBatch(const BatchStats& stats) {
  for (double wait : stats.queue_wait_seconds) impl_->queue_wait.Observe(wait);
  impl_->inference.Observe(stats.inference_seconds);
  impl_->batch_size.Observe(stats.rows);
  impl_->batch_tokens.Observe(static_cast<double>(stats.computed_tokens));
  if (!stats.ok) impl_->failed_batches.Increment();
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->real_tokens.Increment(static_cast<double>(stats.real_tokens));
  impl_->computed_tokens.Increment(static_cast<double>(stats.computed_tokens));
  const double computed = impl_->computed_tokens.Value();
  if (computed > 0)
    impl_->padding_efficiency.Set(impl_->real_tokens.Value() / computed);
}

void Metrics::OnQueueDepth(int64_t depth) {
  impl_->queue_depth.Set(static_cast<double>(depth));
}

void Metrics::OnDropped(const absl::Status& reason, int count) {
  impl_->dropped.Add({{"reason", absl::StatusCodeToString(reason.code())}})
      .Increment(count);
}

std::string Metrics::Render() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

int Metrics::port() const { return impl_->http ? impl_->http->port() : 0; }

}  // namespace argserve
