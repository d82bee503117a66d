// The classify drivers of argserve-cli: unary calls from several threads or
// one bidirectional stream, results written in input order (OrderedSink).
#ifndef ARGSERVE_CLIENT_CLASSIFY_H_
#define ARGSERVE_CLIENT_CLASSIFY_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <vector>

#include "argserve/common/fasta.h"
#include "argserve/v1/argserve.grpc.pb.h"
#include "client/options.h"
#include "client/output.h"

namespace argserve {

// Progress on stderr, redrawn at most a few times a second; only for
// terminals. `total` 0: unknown (a count and a rate, no bar).
class Progress {
 public:
  Progress(bool enabled, size_t total);
  void Update(size_t done, bool final = false);

 private:
  const bool enabled_;
  const size_t total_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
};

// Collects results and writes them in input order as soon as each next one is
// available.
class OrderedSink {
 public:
  // `records` (what the results are of) must outlive the sink; `done_before`:
  // records of the run written before these, for the progress line.
  OrderedSink(ResultWriter& writer, const std::vector<FastaRecord>& records,
              Progress& progress, size_t done_before = 0);

  // A prediction with a non-OK status: the record was not classified.
  void Put(size_t index, v1::Prediction prediction);
  size_t written() const;
  size_t failed() const;

 private:
  mutable std::mutex mu_;
  ResultWriter& writer_;
  const std::vector<FastaRecord>& records_;
  size_t failed_ = 0;
  std::vector<std::optional<v1::Prediction>> results_;
  size_t next_ = 0;
  Progress& progress_;
  const size_t done_before_;
};

// Both modes classify the records at the indices `send` (ascending).

// Unary mode: `concurrency` threads each send one batch at a time; retries
// are the channel's (connection.h).
grpc::Status ClassifyUnary(const ClientOptions& options,
                           v1::ArgClassifier::StubInterface& stub,
                           const std::vector<FastaRecord>& records,
                           const std::vector<size_t>& send, OrderedSink& sink);

// Stream mode: one bidirectional stream; sequences refused with a retryable
// per-sequence status, or unanswered when a stream fails retryably, are sent
// again on a new stream, with backoff. A sequence refused for good is written
// with its status, or, with --strict, ends the run.
grpc::Status ClassifyStream(const ClientOptions& options,
                            v1::ArgClassifier::StubInterface& stub,
                            const std::vector<FastaRecord>& records,
                            const std::vector<size_t>& send, OrderedSink& sink);

// The request option for the client's --long-sequences.
v1::LongSequencePolicy RequestPolicy(LongSequences long_sequences);

}  // namespace argserve

#endif  // ARGSERVE_CLIENT_CLASSIFY_H_
