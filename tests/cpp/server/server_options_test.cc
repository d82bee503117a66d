#include "server/server_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace argserve {
namespace {

using ::testing::HasSubstr;

ServerOptions WithModel() {
  ServerOptions options;
  options.model_path = "model.pt";
  return options;
}

TEST(ServerOptions, CpuDefaultsRunOneSingleThreadedWorkerPerCore) {
  ServerOptions options = WithModel();
  ASSERT_TRUE(ResolveServerOptions(options, {/*cores=*/4, /*gpu=*/false}).ok());
  EXPECT_EQ(options.batcher.num_workers, 4);
  EXPECT_EQ(options.model.intra_op_threads, 1);
  EXPECT_EQ(options.batcher.max_batch_tokens, kCpuMaxBatchTokens);
}

TEST(ServerOptions, FewerWorkersThanCoresShareTheCores) {
  ServerOptions options = WithModel();
  options.batcher.num_workers = 2;
  ASSERT_TRUE(ResolveServerOptions(options, {8, false}).ok());
  EXPECT_EQ(options.batcher.num_workers, 2);
  EXPECT_EQ(options.model.intra_op_threads, 4);
}

TEST(ServerOptions, GpuDefaultsRunOneWorkerWithLargeBatches) {
  ServerOptions options = WithModel();
  ASSERT_TRUE(ResolveServerOptions(options, {16, true}).ok());
  EXPECT_EQ(options.batcher.num_workers, 1);
  EXPECT_EQ(options.batcher.max_batch_tokens,
            BatcherOptions().max_batch_tokens);
}

TEST(ServerOptions, ExplicitValuesAreKept) {
  ServerOptions options = WithModel();
  options.batcher.num_workers = 3;
  options.batcher.max_batch_tokens = 4096;
  options.model.intra_op_threads = 2;
  ASSERT_TRUE(ResolveServerOptions(options, {2, true}).ok());
  EXPECT_EQ(options.batcher.num_workers, 3);
  EXPECT_EQ(options.batcher.max_batch_tokens, 4096);
  EXPECT_EQ(options.model.intra_op_threads, 2);
}

TEST(ServerOptions, ErrorsNameTheFlag) {
  struct Case {
    void (*set)(ServerOptions&);
    const char* message;
  };
  const Case cases[] = {
      {[](ServerOptions& o) { o.model_path.clear(); }, "no model given"},
      {[](ServerOptions& o) { o.batcher.max_batch_size = 0; },
       "--max_batch_size must be at least 1"},
      {[](ServerOptions& o) { o.batcher.max_batch_tokens = -1; },
       "--max_batch_tokens must not be negative"},
      {[](ServerOptions& o) { o.batcher.num_workers = -1; },
       "--workers must not be negative"},
      {[](ServerOptions& o) {
         o.memory_release_interval = std::chrono::milliseconds(-1);
       },
       "--memory_release_interval must not be negative"},
      {[](ServerOptions& o) {
         o.batcher.max_queue_delay = std::chrono::microseconds(-1);
       },
       "--max_queue_delay must not be negative"},
      {[](ServerOptions& o) { o.service.max_sequences_per_request = 0; },
       "--max_sequences_per_request must be at least 1"},
      {[](ServerOptions& o) { o.service.max_stream_in_flight = 0; },
       "--max_stream_in_flight must be at least 1"},
      {[](ServerOptions& o) { o.batcher.max_queue_size = 10; },
       "--max_queue_size must be at least --max_sequences_per_request"},
      {[](ServerOptions& o) { o.model.blas_threads = -1; },
       "--blas_threads must not be negative"},
      {[](ServerOptions& o) { o.model.intra_op_threads = -1; },
       "--intra_op_threads must not be negative"},
      {[](ServerOptions& o) { o.max_upload_memory = 1 << 20; },
       "--max_upload_memory must be 0 (unbounded) or at least "
       "--max_message_bytes"},
      {[](ServerOptions& o) { o.tls.cert = "cert.pem"; },
       "--tls_cert and --tls_key go together"},
      {[](ServerOptions& o) { o.tls.client_ca = "ca.pem"; },
       "--tls_client_ca needs --tls_cert and --tls_key"},
  };
  for (const Case& c : cases) {
    ServerOptions options = WithModel();
    c.set(options);
    const absl::Status status = ResolveServerOptions(options, {2, false});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace argserve
