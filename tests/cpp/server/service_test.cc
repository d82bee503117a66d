// The gRPC service in-process, on loopback, with a fake model: unary and
// streaming answers, validation, flow control and cancellation, without Torch
// (so it also runs under sanitizers).
#include "server/service.h"

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <thread>

#include "absl/strings/match.h"
#include "tests/cpp/support/fake_classifier.h"
#include "tests/cpp/support/random_protein.h"

namespace argserve {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class ServiceTest : public ::testing::Test {
 protected:
  void Start(const ServiceOptions& service_options = {},
             const BatcherOptions& batcher_options = {},
             const NearestReferenceFinder* references = nullptr) {
    model_.as_distribution = true;
    auto metrics = Metrics::Create("", "test", "1", "cpu");
    metrics_ = *std::move(metrics);
    batcher_ =
        std::make_unique<Batcher>(batcher_options, &model_, metrics_.get());
    service_ = std::make_unique<ArgClassifierService>(
        service_options, &model_, batcher_.get(), metrics_.get(), references);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    target_ = absl::StrCat("127.0.0.1:", port);
    channel_ = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
    stub_ = v1::ArgClassifier::NewStub(channel_);
  }

  void TearDown() override {
    model_.Open();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 5s);
    if (batcher_) batcher_->Stop();
  }

  // Closes the model and starts a call whose one row waits inside it, so that
  // rows submitted next stay queued until model_.Open().
  std::thread BlockTheModel() {
    model_.Close();
    std::thread blocker([this] {
      v1::ClassifyRequest request;
      Add(request, "b", "MK");
      v1::ClassifyResponse response;
      grpc::ClientContext context;
      EXPECT_TRUE(stub_->Classify(&context, request, &response).ok());
    });
    while (model_.batches().empty()) std::this_thread::sleep_for(1ms);
    return blocker;
  }

  // Waits (bounded, for hangs) until /metrics shows `line`.
  bool WaitForMetric(const std::string& line) {
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (!absl::StrContains(metrics_->Render(), line)) {
      if (std::chrono::steady_clock::now() > give_up) return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }

  static void Add(v1::ClassifyRequest& request, const std::string& id,
                  const std::string& residues) {
    auto* s = request.add_sequences();
    s->set_id(id);
    s->set_residues(residues);
  }

  testing::FakeClassifier model_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Batcher> batcher_;
  std::unique_ptr<ArgClassifierService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ArgClassifier::Stub> stub_;
};

TEST_F(ServiceTest, ClassifyAnswersEverySequenceInOrder) {
  Start();
  v1::ClassifyRequest request;
  for (int i = 0; i < 50; ++i) {
    Add(request, absl::StrCat("p", i), std::string(1 + (i * 13) % 70, 'M'));
  }
  request.mutable_options()->set_top_k(2);
  v1::ClassifyResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->Classify(&context, request, &response).ok());
  ASSERT_EQ(response.predictions_size(), 50);
  EXPECT_EQ(response.model_name(), "test");
  for (int i = 0; i < 50; ++i) {
    const v1::Prediction& p = response.predictions(i);
    const int residues = 1 + (i * 13) % 70;
    EXPECT_EQ(p.id(), absl::StrCat("p", i));
    EXPECT_EQ(p.length(), static_cast<uint32_t>(residues));
    // The fake model gives class 0 probability n/(n+1), n = residues + 2.
    EXPECT_EQ(p.predicted_class(), "aminoglycoside");
    EXPECT_NEAR(p.probability(), (residues + 2.0) / (residues + 3.0), 1e-6);
    EXPECT_TRUE(p.is_arg());
    ASSERT_EQ(p.scores_size(), 2);
    EXPECT_EQ(p.scores(1).class_name(), "nonarg");
    EXPECT_NEAR(p.scores(0).probability() + p.scores(1).probability(), 1.0,
                1e-6);
  }
}

TEST_F(ServiceTest, InvalidSequenceFailsTheCallWithItsIdAndPosition) {
  Start();
  v1::ClassifyRequest request;
  Add(request, "good", "MKLV");
  Add(request, "bad", "MKLVZZ1");
  v1::ClassifyResponse response;
  grpc::ClientContext context;
  grpc::Status status = stub_->Classify(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("sequence 'bad' (#2): invalid character '1' at "
                        "position 7"));
  EXPECT_TRUE(model_.batches().empty());  // Nothing reached the model.
}

TEST_F(ServiceTest, StreamAnswersPerMessageAndReportsBadSequences) {
  Start();
  grpc::ClientContext context;
  auto stream = stub_->ClassifyStream(&context);
  for (int m = 0; m < 20; ++m) {
    v1::ClassifyStreamRequest request;
    for (int i = 0; i < 5; ++i) {
      auto* s = request.add_sequences();
      s->set_id(absl::StrCat("m", m, "s", i));
      s->set_residues(i == 3 && m % 4 == 0 ? "MK@" : std::string(10 + i, 'A'));
    }
    ASSERT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  std::map<std::string, v1::Prediction> results;
  v1::ClassifyStreamResponse response;
  while (stream->Read(&response)) {
    ASSERT_EQ(response.predictions_size(), 5);  // One response per message.
    for (const auto& p : response.predictions()) results[p.id()] = p;
  }
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(results.size(), 100u);
  for (int m = 0; m < 20; ++m) {
    for (int i = 0; i < 5; ++i) {
      const v1::Prediction& p = results[absl::StrCat("m", m, "s", i)];
      if (i == 3 && m % 4 == 0) {
        EXPECT_EQ(p.status().code(), grpc::StatusCode::INVALID_ARGUMENT);
        EXPECT_THAT(p.status().message(),
                    HasSubstr("(#4): invalid character '@' at position 3"));
      } else {
        EXPECT_EQ(p.status().code(), 0);
        EXPECT_EQ(p.length(), static_cast<uint32_t>(10 + i));
      }
    }
  }
}

TEST_F(ServiceTest, StreamStopsReadingWhenTooMuchIsInFlight) {
  ServiceOptions options;
  options.max_stream_in_flight = 30;
  BatcherOptions batcher_options;
  batcher_options.max_batch_size = 1;
  Start(options, batcher_options);
  model_.Close();  // Nothing completes until the gate opens.
  grpc::ClientContext context;
  auto stream = stub_->ClassifyStream(&context);
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int m = 0; m < 200; ++m) {
      v1::ClassifyStreamRequest request;
      for (int i = 0; i < 10; ++i) {
        auto* s = request.add_sequences();
        s->set_id(absl::StrCat(m, ":", i));
        s->set_residues("MKLVAAGG");
      }
      if (!stream->Write(request)) break;
      ++written;
    }
    stream->WritesDone();
  });
  std::this_thread::sleep_for(500ms);
  // The server holds at most max_stream_in_flight (+ one message) of this
  // stream: queued plus the one row inside the model.
  EXPECT_LE(batcher_->queue_depth() + 1, 30 + 10);
  model_.Open();
  int answered = 0;
  v1::ClassifyStreamResponse response;
  while (stream->Read(&response)) answered += response.predictions_size();
  writer.join();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(written.load(), 200);
  EXPECT_EQ(answered, 2000);
}

TEST_F(ServiceTest, CancelledCallIsNotComputed) {
  BatcherOptions batcher_options;
  batcher_options.max_batch_size = 1;
  Start({}, batcher_options);
  std::thread first = BlockTheModel();
  v1::ClassifyRequest request;
  for (int i = 0; i < 10; ++i) Add(request, absl::StrCat(i), "MKLV");
  v1::ClassifyResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 200ms);
  grpc::Status status = stub_->Classify(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server's deadline falls a little after the client's (grpc-timeout
  // rounding); rows computed before it are within the contract, so wait
  // until the server has seen the cancellation.
  while (!absl::StrContains(
      metrics_->Render(),
      "argserve_calls_cancelled_total{rpc=\"Classify\"} 1")) {
    std::this_thread::sleep_for(1ms);
  }
  model_.Open();
  first.join();
  batcher_->Stop();
  EXPECT_EQ(model_.computed_rows(), 1);  // Only the blocker ran.
}

// Sends raw messages on ClassifyStream, as a client with a broken encoder
// would, and collects what comes back.
class RawStream final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RawStream(grpc::GenericStub& stub, std::vector<std::string> messages)
      : messages_(std::move(messages)) {
    stub.PrepareBidiStreamingCall(&context_,
                                  "/argserve.v1.ArgClassifier/ClassifyStream",
                                  grpc::StubOptions(), this);
    StartRead(&incoming_);
    WriteNext();
    StartCall();
  }
  void OnWriteDone(bool ok) override {
    if (ok) WriteNext();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    v1::ClassifyStreamResponse response;
    if (grpc::SerializationTraits<v1::ClassifyStreamResponse>::Deserialize(
            &incoming_, &response)
            .ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& p : response.predictions()) ids_.push_back(p.id());
    }
    StartRead(&incoming_);
  }
  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }
  grpc::Status Await(std::vector<std::string>& ids) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    ids = ids_;
    return status_;
  }

 private:
  void WriteNext() {
    if (next_ == messages_.size()) {
      StartWritesDone();
      return;
    }
    const std::string& bytes = messages_[next_++];
    grpc::Slice slice(bytes);
    outgoing_ = grpc::ByteBuffer(&slice, 1);
    StartWrite(&outgoing_);
  }

  grpc::ClientContext context_;
  std::vector<std::string> messages_;
  size_t next_ = 0;
  grpc::ByteBuffer outgoing_;
  grpc::ByteBuffer incoming_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  grpc::Status status_;
  std::vector<std::string> ids_;
};

v1::ClassifyStreamRequest StreamRequest(const std::string& id_prefix,
                                        int count) {
  v1::ClassifyStreamRequest request;
  for (int i = 0; i < count; ++i) {
    auto* s = request.add_sequences();
    s->set_id(absl::StrCat(id_prefix, i));
    s->set_residues("MKLVAAGG");
  }
  return request;
}

std::string StreamMessage(const std::string& id_prefix, int count) {
  return StreamRequest(id_prefix, count).SerializeAsString();
}

TEST_F(ServiceTest, MalformedStreamMessageEndsTheStreamWithItsNumber) {
  Start();
  grpc::GenericStub generic(channel_);
  const std::string good = StreamMessage("a", 3);
  for (const std::string& bad :
       {good.substr(0, good.size() - 4),                        // truncated
        std::string("\x0a\x06\x0a\x02\xff\xfe\x12\x00", 8)}) {  // id not UTF-8
    RawStream stream(generic, {good, bad, StreamMessage("c", 2)});
    std::vector<std::string> ids;
    grpc::Status status = stream.Await(ids);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(),
                HasSubstr("stream message #2 is not a valid"));
    // The message before it was answered; nothing after it was read.
    EXPECT_EQ(ids, (std::vector<std::string>{"a0", "a1", "a2"}));
  }
}

TEST_F(ServiceTest, OverLimitStreamMessageIsRefusedWithOneStatus) {
  ServiceOptions options;
  options.max_sequences_per_request = 10;
  Start(options);
  grpc::GenericStub generic(channel_);
  RawStream stream(generic, {StreamMessage("a", 2), StreamMessage("b", 5000)});
  std::vector<std::string> ids;
  grpc::Status status = stream.Await(ids);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("stream message #2 has 5000 sequences, more than the "
                        "limit of 10"));
  EXPECT_EQ(ids, (std::vector<std::string>{"a0", "a1"}));
  EXPECT_EQ(model_.computed_rows(), 2);
}

TEST_F(ServiceTest, CancelledStreamWithPausedReadsFinishes) {
  ServiceOptions options;
  options.max_stream_in_flight = 30;
  BatcherOptions batcher_options;
  batcher_options.max_batch_size = 1;
  Start(options, batcher_options);
  model_.Close();
  grpc::ClientContext context;
  auto stream = stub_->ClassifyStream(&context);
  const v1::ClassifyStreamRequest request = StreamRequest("", 100);
  ASSERT_TRUE(stream->Write(request));  // 100 in flight > 30: reads pause.
  while (model_.batches().empty()) std::this_thread::sleep_for(1ms);
  context.TryCancel();
  ASSERT_TRUE(WaitForMetric(
      "argserve_calls_cancelled_total{rpc=\"ClassifyStream\"} 1"));
  model_.Open();
  EXPECT_TRUE(WaitForMetric(
      "argserve_requests_total{code=\"CANCELLED\",rpc=\"ClassifyStream\"} 1"))
      << metrics_->Render();
  EXPECT_FALSE(stream->Finish().ok());
  EXPECT_EQ(model_.computed_rows(), 1);  // The rest was dropped, not computed.
}

TEST_F(ServiceTest, ShutdownEndsAStreamWithPausedReadsWithinTheGrace) {
  ServiceOptions options;
  options.max_stream_in_flight = 30;
  Start(options);
  model_.Close();
  grpc::ClientContext context;
  auto stream = stub_->ClassifyStream(&context);
  const v1::ClassifyStreamRequest request = StreamRequest("", 100);
  ASSERT_TRUE(stream->Write(request));
  while (model_.batches().empty()) std::this_thread::sleep_for(1ms);
  std::thread opener([&] {
    // The model's forward ends only once the call is cancelled, as a long
    // batch would.
    WaitForMetric("argserve_calls_cancelled_total{rpc=\"ClassifyStream\"} 1");
    model_.Open();
  });
  const auto begin = std::chrono::steady_clock::now();
  server_->Shutdown(std::chrono::system_clock::now() + 500ms);
  const auto took = std::chrono::steady_clock::now() - begin;
  opener.join();
  EXPECT_LT(took, 5s);
  EXPECT_FALSE(stream->Finish().ok());
  server_.reset();
}

TEST_F(ServiceTest, StreamSequencesAreCountedOnceByTheirOwnStatus) {
  Start();
  {
    grpc::ClientContext context;
    auto stream = stub_->ClassifyStream(&context);
    v1::ClassifyStreamRequest request;
    for (int i = 0; i < 10; ++i) {
      auto* s = request.add_sequences();
      s->set_id(absl::StrCat(i));
      s->set_residues(i < 7 ? "MKLV" : "MK1");
    }
    ASSERT_TRUE(stream->Write(request));
    stream->WritesDone();
    v1::ClassifyStreamResponse response;
    while (stream->Read(&response)) {
    }
    ASSERT_TRUE(stream->Finish().ok());
  }
  ASSERT_TRUE(WaitForMetric(
      "argserve_requests_total{code=\"OK\",rpc=\"ClassifyStream\"} 1"));
  const std::string page = metrics_->Render();
  EXPECT_THAT(page, HasSubstr("argserve_sequences_total{code=\"OK\",rpc="
                              "\"ClassifyStream\"} 7\n"));
  EXPECT_THAT(page, HasSubstr("argserve_sequences_total{code=\"INVALID_"
                              "ARGUMENT\",rpc=\"ClassifyStream\"} 3\n"));
  // Labelled series exist before their first event.
  EXPECT_THAT(page, HasSubstr("argserve_sequences_dropped_total{reason="
                              "\"DEADLINE_EXCEEDED\"} 0"));
}

TEST_F(ServiceTest, UnaryCallPastItsDeadlineIsCountedAsDeadlineExceeded) {
  BatcherOptions batcher_options;
  batcher_options.max_batch_size = 1;
  Start({}, batcher_options);
  std::thread first = BlockTheModel();
  v1::ClassifyRequest request;
  Add(request, "late", "MKLV");
  v1::ClassifyResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 100ms);
  EXPECT_EQ(stub_->Classify(&context, request, &response).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  ASSERT_TRUE(
      WaitForMetric("argserve_calls_cancelled_total{rpc=\"Classify\"} 1"));
  // The server's deadline is the client's plus the time the call took to
  // arrive, so the client's cancellation can reach it first; the call's work
  // ends only once the server's deadline has passed too (loopback: well
  // within a second).
  std::this_thread::sleep_until(context.deadline() + 1s);
  model_.Open();
  first.join();
  EXPECT_TRUE(WaitForMetric(
      "argserve_requests_total{code=\"DEADLINE_EXCEEDED\",rpc=\"Classify\"} "
      "1"))
      << metrics_->Render();
}

// A heavy streamer's backlog does not hold back a light unary caller on another
// connection: in the batcher the two take turns.
TEST_F(ServiceTest, LightCallerIsServedBeforeAHeavyStreamsBacklog) {
  ServiceOptions service_options;
  service_options.max_stream_in_flight = 5000;
  BatcherOptions batcher_options;
  batcher_options.max_batch_size = 8;
  batcher_options.num_workers = 1;
  Start(service_options, batcher_options);
  std::thread blocker = BlockTheModel();

  grpc::ClientContext stream_context;
  auto stream = stub_->ClassifyStream(&stream_context);
  for (int m = 0; m < 10; ++m) {
    v1::ClassifyStreamRequest request;
    for (int i = 0; i < 100; ++i) {
      auto* sequence = request.add_sequences();
      sequence->set_id(absl::StrCat("h", m, "-", i));
      sequence->set_residues(std::string(20, 'M'));
    }
    ASSERT_TRUE(stream->Write(request));
  }
  ASSERT_TRUE(stream->WritesDone());
  while (batcher_->queue_depth() < 1000) std::this_thread::sleep_for(1ms);

  // A connection of its own (no shared subchannel): another caller. Its rows
  // are one residue longer, in the same length bucket, so a batch holds them
  // exactly when its width is theirs.
  grpc::ChannelArguments own_connection;
  own_connection.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto light_stub = v1::ArgClassifier::NewStub(grpc::CreateCustomChannel(
      target_, grpc::InsecureChannelCredentials(), own_connection));
  std::thread light([&] {
    v1::ClassifyRequest request;
    Add(request, "l1", std::string(21, 'M'));
    Add(request, "l2", std::string(21, 'M'));
    v1::ClassifyResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(light_stub->Classify(&context, request, &response).ok());
  });
  while (batcher_->queue_depth() < 1002) std::this_thread::sleep_for(1ms);
  model_.Open();
  light.join();
  blocker.join();
  v1::ClassifyStreamResponse response;
  int answered = 0;
  while (stream->Read(&response)) answered += response.predictions_size();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered, 1000);

  const std::vector<TokenBatch> batches = model_.batches();
  size_t first_light = batches.size();
  for (size_t b = 0; b < batches.size() && first_light == batches.size(); ++b) {
    if (batches[b].cols == 23) first_light = b;
  }
  // Batch 0 is the blocker's; the light rows ride in the next one.
  EXPECT_EQ(first_light, 1u);
}

TEST(ServiceCallRule, ThresholdOnArgProbabilityAndLengthFloorDecide) {
  // The fake gives P(ARG) = P(class 0) = n / (n + 1), n = residues + 2.
  testing::FakeClassifier model(
      4000, R"("calibration": {"arg_threshold": 0.9, "min_residues": 20})");
  model.as_distribution = true;
  auto metrics = *Metrics::Create("", "test", "1", "cpu");
  Batcher batcher({}, &model, metrics.get());
  ArgClassifierService service({}, &model, &batcher, metrics.get());
  struct Case {
    int residues;
    bool is_arg;
    const char* predicted;
    bool too_short;
  };
  for (const Case& c : {Case{3, false, "nonarg", true},   // P(ARG) 0.83
                        Case{10, false, "nonarg", true},  // 0.92, too short
                        Case{25, true, "aminoglycoside", false}}) {
    v1::Prediction prediction;
    prediction.set_length(c.residues);
    const float n = c.residues + 2.0f;
    const std::vector<float> probabilities = {n / (n + 1), 0.0f, 1 / (n + 1)};
    service.call_rule().Fill(probabilities, 0, prediction);
    EXPECT_EQ(prediction.is_arg(), c.is_arg) << c.residues;
    EXPECT_EQ(prediction.predicted_class(), c.predicted) << c.residues;
    EXPECT_EQ(prediction.below_min_residues(), c.too_short) << c.residues;
    EXPECT_NEAR(prediction.arg_probability(), n / (n + 1), 1e-6);
  }
  // Below the threshold although an antibiotic class is the most probable.
  v1::Prediction low;
  low.set_length(100);
  service.call_rule().Fill({0.5f, 0.3f, 0.2f}, 0, low);
  EXPECT_FALSE(low.is_arg());
  EXPECT_EQ(low.predicted_class(), "nonarg");
  EXPECT_NEAR(low.probability(), 0.2, 1e-6);
  // Above it although the non-ARG class is the most probable: the best
  // antibiotic class is the call.
  testing::FakeClassifier lenient(4000,
                                  R"("calibration": {"arg_threshold": 0.5})");
  ArgClassifierService lenient_service({}, &lenient, &batcher, metrics.get());
  v1::Prediction split;
  split.set_length(100);
  lenient_service.call_rule().Fill({0.2f, 0.35f, 0.45f}, 0, split);
  EXPECT_TRUE(split.is_arg());
  EXPECT_EQ(split.predicted_class(), "beta-lactam");
  EXPECT_NEAR(split.arg_probability(), 0.55, 1e-6);
  batcher.Stop();
}

TEST(ServiceCallRule, HomologAndNovelStepsOfTheEvidenceRule) {
  // Classes: aminoglycoside, beta-lactam, nonarg (the fake model's).
  testing::FakeClassifier model(
      4000,
      R"("calibration": {"arg_threshold": 0.9, "min_residues": 20},
         "evidence": {"reference_min_identity": 0.35,
                      "reference_min_coverage": 0.6, "max_evalue": 1e-5,
                      "homolog_min_arg_probability": 0.05,
                      "novel_min_arg_probability": 0.99})");
  auto metrics = *Metrics::Create("", "test", "1", "cpu");
  Batcher batcher({}, &model, metrics.get());
  const NearestReferenceFinder finder({}, NearestReferenceOptions());
  ArgClassifierService service({}, &model, &batcher, metrics.get(), &finder);
  const auto fill = [&](const std::vector<float>& probabilities, float identity,
                        float coverage, const char* reference_class,
                        uint32_t length = 200, float arg_identity = 0,
                        const char* arg_class = "beta-lactam") {
    v1::Prediction p;
    p.set_length(length);
    if (identity > 0) {
      v1::ReferenceHit& hit = *p.mutable_nearest_reference();
      hit.set_class_name(reference_class);
      hit.set_identity_percent(identity);
      hit.set_reference_coverage_percent(coverage);
    }
    if (arg_identity > 0) {
      v1::ReferenceHit& hit = *p.mutable_nearest_arg_reference();
      hit.set_class_name(arg_class);
      hit.set_identity_percent(arg_identity);
      hit.set_reference_coverage_percent(coverage);
    }
    service.call_rule().Fill(probabilities, 0, p);
    return p;
  };
  // A distant beta-lactam reference (28%) and P(ARG) 0.06: the homolog tier.
  v1::Prediction homolog = fill({0.04f, 0.02f, 0.94f}, 28, 90, "beta-lactam");
  EXPECT_EQ(homolog.tier(), v1::TIER_HOMOLOG);
  EXPECT_EQ(homolog.predicted_class(), "beta-lactam");
  EXPECT_TRUE(homolog.is_arg());
  EXPECT_FALSE(homolog.model_is_arg());
  EXPECT_NEAR(homolog.probability(), 0.02, 1e-6);
  // Below the P(ARG), over too little of the reference, a known non-ARG
  // reference, or a protein too short for the model's scores: the model's.
  for (const v1::Prediction& p :
       {fill({0.03f, 0.01f, 0.96f}, 28, 90, "beta-lactam"),
        fill({0.04f, 0.02f, 0.94f}, 28, 50, "beta-lactam"),
        fill({0.04f, 0.02f, 0.94f}, 28, 90, "nonarg"),
        fill({0.04f, 0.02f, 0.94f}, 28, 90, "beta-lactam", 10)}) {
    EXPECT_EQ(p.tier(), v1::TIER_MODEL);
    EXPECT_EQ(p.predicted_class(), "nonarg");
    EXPECT_FALSE(p.is_arg());
  }
  // At the identity threshold the reference decides whatever the model says.
  EXPECT_EQ(fill({0.0f, 0.0f, 1.0f}, 35, 90, "beta-lactam").tier(),
            v1::TIER_REFERENCE);
  // No reference: an ARG call needs P(ARG) 0.99, not only the threshold 0.9.
  v1::Prediction unsure = fill({0.95f, 0.0f, 0.05f}, 0, 0, "");
  EXPECT_TRUE(unsure.model_is_arg());
  EXPECT_FALSE(unsure.is_arg());
  EXPECT_EQ(unsure.tier(), v1::TIER_MODEL);
  EXPECT_EQ(unsure.predicted_class(), "nonarg");
  v1::Prediction novel = fill({0.995f, 0.0f, 0.005f}, 0, 0, "");
  EXPECT_TRUE(novel.is_arg());
  EXPECT_EQ(novel.tier(), v1::TIER_NOVEL);
  EXPECT_EQ(novel.predicted_class(), "aminoglycoside");
  // With a hit that does not decide, the model's threshold is enough.
  v1::Prediction partial = fill({0.95f, 0.0f, 0.05f}, 20, 50, "beta-lactam");
  EXPECT_TRUE(partial.is_arg());
  EXPECT_EQ(partial.tier(), v1::TIER_MODEL);
  EXPECT_EQ(partial.predicted_class(), "aminoglycoside");
  // A homolog's class is the call also when the model prefers another.
  v1::Prediction other = fill({0.95f, 0.0f, 0.05f}, 20, 90, "beta-lactam");
  EXPECT_EQ(other.tier(), v1::TIER_HOMOLOG);
  EXPECT_EQ(other.predicted_class(), "beta-lactam");

  // A known non-ARG nearest, below the identity threshold: an ARG call needs
  // the novel P(ARG) (0.99), as without any ARG reference; then the ARG
  // reference behind it names the class.
  v1::Prediction behind =
      fill({0.995f, 0.0f, 0.005f}, 30, 90, "nonarg", 200, 25, "beta-lactam");
  EXPECT_EQ(behind.tier(), v1::TIER_HOMOLOG);
  EXPECT_EQ(behind.predicted_class(), "beta-lactam");
  EXPECT_TRUE(behind.is_arg());
  for (const v1::Prediction& p :
       {fill({0.04f, 0.02f, 0.94f}, 30, 90, "nonarg", 200, 25, "beta-lactam"),
        fill({0.95f, 0.0f, 0.05f}, 30, 90, "nonarg", 200, 25, "beta-lactam")}) {
    EXPECT_EQ(p.tier(), v1::TIER_MODEL);
    EXPECT_FALSE(p.is_arg());
    EXPECT_EQ(p.predicted_class(), "nonarg");
  }
  // Close enough, the non-ARG decides over the ARG behind it.
  v1::Prediction decided =
      fill({0.995f, 0.0f, 0.005f}, 40, 90, "nonarg", 200, 25, "beta-lactam");
  EXPECT_EQ(decided.tier(), v1::TIER_REFERENCE);
  EXPECT_FALSE(decided.is_arg());
  // With no ARG reference behind it, the model's ARG call is a novel one and
  // needs P(ARG) 0.99, as with no reference at all.
  v1::Prediction relative_only = fill({0.95f, 0.0f, 0.05f}, 30, 90, "nonarg");
  EXPECT_TRUE(relative_only.model_is_arg());
  EXPECT_FALSE(relative_only.is_arg());
  EXPECT_EQ(relative_only.tier(), v1::TIER_MODEL);
  v1::Prediction novel_beside = fill({0.995f, 0.0f, 0.005f}, 30, 90, "nonarg");
  EXPECT_TRUE(novel_beside.is_arg());
  EXPECT_EQ(novel_beside.tier(), v1::TIER_NOVEL);
  EXPECT_EQ(novel_beside.predicted_class(), "aminoglycoside");

  batcher.Stop();
}

TEST_F(ServiceTest, KnownNonArgReferenceDecidesNonArg) {
  // The fake model calls every protein aminoglycoside; a housekeeping relative
  // of an ARG in the reference set is the nearest reference of its own kind.
  std::mt19937 rng(5);
  const std::string arg = testing::RandomProtein(240, rng);
  const std::vector<Reference> references = {
      {"blaX-1_1_A1", "blaX-1", "A1", "beta-lactam", arg},
      {"P12345", "P12345", "", "nonarg", testing::Mutate(arg, 4, rng)}};
  NearestReferenceOptions options;
  options.nonarg_class = "nonarg";
  const NearestReferenceFinder finder(references, options);
  Start({}, {}, &finder);
  v1::ClassifyRequest request;
  Add(request, "housekeeping", references[1].residues);
  v1::ClassifyResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->Classify(&context, request, &response).ok());
  ASSERT_EQ(response.predictions_size(), 1);
  const v1::Prediction& p = response.predictions(0);
  EXPECT_EQ(p.tier(), v1::TIER_REFERENCE);
  EXPECT_EQ(p.predicted_class(), "nonarg");
  EXPECT_FALSE(p.is_arg());
  EXPECT_TRUE(p.model_is_arg());
  EXPECT_EQ(p.nearest_reference().id(), "P12345");
  EXPECT_EQ(p.nearest_reference().class_name(), "nonarg");
  // The ARG it resembles stands beside it (every fourth residue differs).
  EXPECT_EQ(p.nearest_arg_reference().id(), "blaX-1_1_A1");
  EXPECT_NEAR(p.nearest_arg_reference().identity_percent(), 75, 2);
}

TEST_F(ServiceTest, CloseReferenceDecidesTheCallAndEvidenceRidesAlong) {
  // The fake model calls every protein aminoglycoside (class 0); the
  // references are beta-lactam genes.
  std::mt19937 rng(3);
  std::vector<Reference> references;
  references.reserve(5);
  for (int i = 0; i < 5; ++i) {
    references.push_back({absl::StrCat("blaX-", i, "_1_A", i),
                          absl::StrCat("blaX-", i), absl::StrCat("A", i),
                          "beta-lactam", testing::RandomProtein(240, rng)});
  }
  const NearestReferenceFinder finder(references, NearestReferenceOptions());
  Start({}, {}, &finder);
  v1::ClassifyRequest request;
  Add(request, "same", references[2].residues);
  // 60% identity: evidence, below the 80% a reference needs to decide.
  Add(request, "distant", testing::Mutate(references[4].residues, 2, rng));
  Add(request, "unrelated", testing::RandomProtein(240, rng));
  v1::ClassifyResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->Classify(&context, request, &response).ok());
  ASSERT_EQ(response.predictions_size(), 3);

  const v1::Prediction& same = response.predictions(0);
  EXPECT_EQ(same.tier(), v1::TIER_REFERENCE);
  EXPECT_EQ(same.predicted_class(), "beta-lactam");
  EXPECT_TRUE(same.is_arg());
  EXPECT_EQ(same.model_class(), "aminoglycoside");
  EXPECT_TRUE(same.model_is_arg());
  ASSERT_TRUE(same.has_nearest_reference());
  EXPECT_EQ(same.nearest_reference().id(), "blaX-2_1_A2");
  EXPECT_EQ(same.nearest_reference().gene(), "blaX-2");
  EXPECT_EQ(same.nearest_reference().accession(), "A2");
  EXPECT_FLOAT_EQ(same.nearest_reference().identity_percent(), 100);
  EXPECT_FLOAT_EQ(same.nearest_reference().query_coverage_percent(), 100);
  EXPECT_FLOAT_EQ(same.nearest_reference().reference_coverage_percent(), 100);
  EXPECT_EQ(same.nearest_reference().reference_length(), 240u);

  const v1::Prediction& distant = response.predictions(1);
  EXPECT_EQ(distant.tier(), v1::TIER_MODEL);
  EXPECT_EQ(distant.predicted_class(), "aminoglycoside");
  ASSERT_TRUE(distant.has_nearest_reference());
  EXPECT_EQ(distant.nearest_reference().id(), "blaX-4_1_A4");
  EXPECT_LT(distant.nearest_reference().identity_percent(), 80);

  const v1::Prediction& unrelated = response.predictions(2);
  EXPECT_FALSE(unrelated.has_nearest_reference());
  EXPECT_EQ(unrelated.tier(), v1::TIER_NOVEL);
  EXPECT_EQ(unrelated.predicted_class(), "aminoglycoside");

  // The stream carries the same evidence.
  grpc::ClientContext stream_context;
  auto stream = stub_->ClassifyStream(&stream_context);
  v1::ClassifyStreamRequest message;
  auto* sequence = message.add_sequences();
  sequence->set_id("same");
  sequence->set_residues(references[0].residues);
  ASSERT_TRUE(stream->Write(message));
  stream->WritesDone();
  v1::ClassifyStreamResponse answer;
  ASSERT_TRUE(stream->Read(&answer));
  ASSERT_EQ(answer.predictions_size(), 1);
  EXPECT_EQ(answer.predictions(0).tier(), v1::TIER_REFERENCE);
  EXPECT_EQ(answer.predictions(0).nearest_reference().id(), "blaX-0_1_A0");
  EXPECT_TRUE(stream->Finish().ok());

  v1::ModelInfo info;
  grpc::ClientContext info_context;
  ASSERT_TRUE(
      stub_->GetModelInfo(&info_context, v1::GetModelInfoRequest(), &info)
          .ok());
  EXPECT_FALSE(info.server_version().empty());
}

TEST_F(ServiceTest, GetModelInfoDescribesTheModel) {
  ServiceOptions options;
  options.long_sequences = LongSequencePolicy::kTruncate;
  Start(options);
  v1::ModelInfo info;
  grpc::ClientContext context;
  ASSERT_TRUE(
      stub_->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.name(), "test");
  EXPECT_EQ(info.classes_size(), 3);
  EXPECT_EQ(info.nonarg_class(), "nonarg");
  EXPECT_EQ(info.long_sequence_policy(), "truncate");
  EXPECT_EQ(info.backbone().num_layers(), 2u);
  EXPECT_THAT(info.metadata_json(), HasSubstr("argserve-model/1"));
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("token", "token"));
  EXPECT_FALSE(ConstantTimeEquals("token", "tokex"));
  EXPECT_FALSE(ConstantTimeEquals("token", "token2"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace argserve
