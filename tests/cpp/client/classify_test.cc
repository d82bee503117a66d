#include "client/classify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "argserve/v1/argserve_mock.grpc.pb.h"

namespace argserve {
namespace {

using ::testing::_;
using ::testing::Invoke;
using ::testing::Return;

class RecordingWriter final : public ResultWriter {
 public:
  void Begin(const RunInfo&) override {}
  void Write(const v1::Prediction& prediction, const FastaRecord&) override {
    ids.push_back(prediction.id());
    if (prediction.has_status() && prediction.status().code() != 0)
      failed.push_back(prediction.id());
  }
  void End() override {}
  std::vector<std::string> ids;
  std::vector<std::string> failed;
};

std::vector<size_t> All(size_t n) {
  std::vector<size_t> indices(n);
  for (size_t i = 0; i < n; ++i) indices[i] = i;
  return indices;
}

std::vector<FastaRecord> Records(int n) {
  std::vector<FastaRecord> records(n);
  for (int i = 0; i < n; ++i) {
    records[i].id = absl::StrCat("p", i);
    records[i].residues = "MKLV";
  }
  return records;
}

std::vector<std::string> Ids(int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(absl::StrCat("p", i));
  return ids;
}

ClientOptions Options(int batch_size, int concurrency) {
  ClientOptions options;
  options.batch_size = batch_size;
  options.concurrency = concurrency;
  options.connection.retries = 2;
  options.connection.deadline_seconds = 30;
  return options;
}

// Answers every sequence of a request with a prediction of its id.
grpc::Status Answer(grpc::ClientContext*, const v1::ClassifyRequest& request,
                    v1::ClassifyResponse* response) {
  for (const auto& sequence : request.sequences())
    response->add_predictions()->set_id(sequence.id());
  return grpc::Status::OK;
}

class ClassifyTest : public ::testing::Test {
 protected:
  RecordingWriter writer_;
  Progress progress_{false, 0};
  v1::MockArgClassifierStub stub_;
};

TEST_F(ClassifyTest, UnaryWritesEveryResultInInputOrder) {
  const auto records = Records(23);
  OrderedSink sink(writer_, records, progress_);
  EXPECT_CALL(stub_, Classify(_, _, _))
      .Times(8)  // 23 sequences in batches of 3.
      .WillRepeatedly(Invoke(Answer));
  ASSERT_TRUE(
      ClassifyUnary(Options(3, 4), stub_, records, All(records.size()), sink)
          .ok());
  EXPECT_EQ(writer_.ids, Ids(23));
  EXPECT_EQ(sink.written(), 23u);
}

TEST_F(ClassifyTest, UnaryShortAnswerIsAnError) {
  const auto records = Records(3);
  OrderedSink sink(writer_, records, progress_);
  EXPECT_CALL(stub_, Classify(_, _, _))
      .WillOnce(Invoke([](grpc::ClientContext*, const v1::ClassifyRequest&,
                          v1::ClassifyResponse* response) {
        response->add_predictions()->set_id("p0");
        return grpc::Status::OK;
      }));
  const grpc::Status status =
      ClassifyUnary(Options(3, 1), stub_, records, All(records.size()), sink);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(status.error_message(), "server answered 1 of 3 sequences");
  EXPECT_TRUE(writer_.ids.empty());
}

TEST_F(ClassifyTest, UnaryStopsAtTheFirstRefusal) {
  const auto records = Records(40);
  OrderedSink sink(writer_, records, progress_);
  EXPECT_CALL(stub_, Classify(_, _, _))
      .WillOnce(Invoke(Answer))
      .WillRepeatedly(Return(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad sequence")));
  const grpc::Status status =
      ClassifyUnary(Options(10, 1), stub_, records, All(records.size()), sink);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(writer_.ids, Ids(10));
}

// A stream that answers each written message when it is read; sequences
// whose ids are in `refuse` get a per-sequence UNAVAILABLE.
class FakeStream final
    : public grpc::ClientReaderWriterInterface<v1::ClassifyStreamRequest,
                                               v1::ClassifyStreamResponse> {
 public:
  explicit FakeStream(std::vector<std::string> refuse)
      : refuse_(std::move(refuse)) {}

  bool Write(const v1::ClassifyStreamRequest& request,
             grpc::WriteOptions) override {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(request);
    for (const auto& sequence : request.sequences())
      sent_.push_back(sequence.id());
    cv_.notify_all();
    return true;
  }
  bool WritesDone() override {
    std::lock_guard<std::mutex> lock(mu_);
    writes_done_ = true;
    cv_.notify_all();
    return true;
  }
  bool Read(v1::ClassifyStreamResponse* response) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !pending_.empty() || writes_done_; });
    if (pending_.empty()) return false;
    response->Clear();
    for (const auto& sequence : pending_.front().sequences()) {
      auto* prediction = response->add_predictions();
      prediction->set_id(sequence.id());
      if (std::find(refuse_.begin(), refuse_.end(), sequence.id()) !=
          refuse_.end()) {
        prediction->mutable_status()->set_code(grpc::StatusCode::UNAVAILABLE);
        prediction->mutable_status()->set_message("overloaded");
      }
    }
    pending_.pop_front();
    return true;
  }
  bool NextMessageSize(uint32_t* size) override {
    *size = UINT32_MAX;
    return true;
  }
  grpc::Status Finish() override { return grpc::Status::OK; }
  void WaitForInitialMetadata() override {}

  std::vector<std::string> sent() {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }

 private:
  const std::vector<std::string> refuse_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::ClassifyStreamRequest> pending_;
  std::vector<std::string> sent_;
  bool writes_done_ = false;
};

TEST_F(ClassifyTest, StreamResendsRetryableRefusalsOnANewStream) {
  const auto records = Records(10);
  OrderedSink sink(writer_, records, progress_);
  // Owned by the driver once returned (the stub hands over a raw pointer).
  auto* first = new FakeStream({"p3", "p7"});
  auto* second = new FakeStream({});
  EXPECT_CALL(stub_, ClassifyStreamRaw(_))
      .WillOnce(Return(first))
      .WillOnce(Return(second));
  ASSERT_TRUE(
      ClassifyStream(Options(4, 1), stub_, records, All(records.size()), sink)
          .ok());
  EXPECT_EQ(writer_.ids, Ids(10));
}

TEST_F(ClassifyTest, StrictStreamGivesUpAfterItsRetries) {
  const auto records = Records(2);
  OrderedSink sink(writer_, records, progress_);
  EXPECT_CALL(stub_, ClassifyStreamRaw(_))
      .Times(3)  // The first stream and two retries.
      .WillRepeatedly(
          Invoke([](grpc::ClientContext*) { return new FakeStream({"p1"}); }));
  ClientOptions options = Options(4, 1);
  options.strict = true;
  const grpc::Status status =
      ClassifyStream(options, stub_, records, All(records.size()), sink);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "sequence 'p1': overloaded");
  EXPECT_EQ(writer_.ids, std::vector<std::string>{"p0"});
}

TEST_F(ClassifyTest, StreamWritesARefusedSequenceWithItsStatusAndGoesOn) {
  const auto records = Records(3);
  OrderedSink sink(writer_, records, progress_);
  EXPECT_CALL(stub_, ClassifyStreamRaw(_))
      .Times(3)
      .WillRepeatedly(
          Invoke([](grpc::ClientContext*) { return new FakeStream({"p1"}); }));
  ASSERT_TRUE(ClassifyStream(Options(4, 1), stub_, records, All(3), sink).ok());
  EXPECT_EQ(writer_.ids, Ids(3));
  EXPECT_EQ(writer_.failed, std::vector<std::string>{"p1"});
  EXPECT_EQ(sink.failed(), 1u);
}

TEST_F(ClassifyTest, RecordsNotSentKeepTheirPlaceInTheOutput) {
  const auto records = Records(6);
  OrderedSink sink(writer_, records, progress_);
  v1::Prediction refused;
  refused.set_id("p2");
  refused.mutable_status()->set_code(3);
  sink.Put(2, refused);
  EXPECT_CALL(stub_, Classify(_, _, _)).Times(3).WillRepeatedly(Invoke(Answer));
  ASSERT_TRUE(
      ClassifyUnary(Options(2, 1), stub_, records, {0, 1, 3, 4, 5}, sink).ok());
  EXPECT_EQ(writer_.ids, Ids(6));
  EXPECT_EQ(writer_.failed, std::vector<std::string>{"p2"});
}

}  // namespace
}  // namespace argserve
