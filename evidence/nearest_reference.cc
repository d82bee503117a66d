#include "argserve/evidence/nearest_reference.h"

#include <ssw.h>

#include <algorithm>
#include <memory>
#include <numeric>

#include "argserve/evidence/scoring.h"

namespace argserve {
namespace {

constexpr int kKmerLength = 3;
// BLAST's "gap open 11, extend 1" charges 11 + L for a gap of L; SSW charges
// its open weight for the first position and the extension for the others.
constexpr uint8_t kGapOpen = 12;
constexpr uint8_t kGapExtend = 1;
// ssw_align flags: score and end positions only, or also start and CIGAR.
constexpr uint8_t kScoreOnly = 0;
constexpr uint8_t kWithPath = 1;

struct ProfileDeleter {
  void operator()(s_profile* profile) const { init_destroy(profile); }
};
struct AlignmentDeleter {
  void operator()(s_align* alignment) const { align_destroy(alignment); }
};
using Profile = std::unique_ptr<s_profile, ProfileDeleter>;
using Alignment = std::unique_ptr<s_align, AlignmentDeleter>;

int AlphabetSize() { return Blosum62().size; }

// The k-mers' codes over the standard residues (others break a k-mer),
// distinct, sorted.
std::vector<int32_t> DistinctKmers(const std::vector<int8_t>& codes) {
  std::vector<int32_t> kmers;
  const int base = AlphabetSize();
  int32_t code = 0;
  int run = 0;
  int32_t high = 1;
  for (int i = 1; i < kKmerLength; ++i) high *= base;
  for (int8_t letter : codes) {
    if (!IsStandardResidue(letter)) {
      run = 0;
      code = 0;
      continue;
    }
    code = (run >= kKmerLength ? code % high : code) * base + letter;
    if (++run >= kKmerLength) kmers.push_back(code);
  }
  std::sort(kmers.begin(), kmers.end());
  kmers.erase(std::unique(kmers.begin(), kmers.end()), kmers.end());
  return kmers;
}

Alignment Align(const s_profile* profile, const std::vector<int8_t>& reference,
                int query_length, uint8_t flag) {
  return Alignment(ssw_align(
      profile, reference.data(), static_cast<int32_t>(reference.size()),
      kGapOpen, kGapExtend, flag, 0, 0, std::max(15, query_length / 2)));
}

}  // namespace

NearestReferenceFinder::NearestReferenceFinder(
    std::vector<Reference> references, NearestReferenceOptions options)
    : references_(std::move(references)), options_(options) {
  int32_t buckets = 1;
  for (int i = 0; i < kKmerLength; ++i) buckets *= AlphabetSize();
  postings_.resize(buckets);
  encoded_.reserve(references_.size());
  for (size_t r = 0; r < references_.size(); ++r) {
    encoded_.push_back(EncodeResidues(references_[r].residues));
    total_residues_ += static_cast<int64_t>(encoded_.back().size());
    for (int32_t kmer : DistinctKmers(encoded_.back())) {
      postings_[kmer].push_back(static_cast<int32_t>(r));
    }
  }
}

NearestReferenceFinder::~NearestReferenceFinder() = default;

std::vector<int> NearestReferenceFinder::Candidates(
    const std::vector<int8_t>& query) const {
  const int count = static_cast<int>(references_.size());
  std::vector<int> order(count);
  std::iota(order.begin(), order.end(), 0);
  if (options_.candidates <= 0 || options_.candidates >= count) return order;
  std::vector<int32_t> shared(count, 0);
  for (int32_t kmer : DistinctKmers(query)) {
    for (int32_t r : postings_[kmer]) ++shared[r];
  }
  order.erase(std::remove_if(order.begin(), order.end(),
                             [&](int r) { return shared[r] == 0; }),
              order.end());
  const auto more_shared = [&](int a, int b) {
    return shared[a] != shared[b] ? shared[a] > shared[b] : a < b;
  };
  if (static_cast<int>(order.size()) > options_.candidates) {
    std::nth_element(order.begin(), order.begin() + options_.candidates,
                     order.end(), more_shared);
    order.resize(options_.candidates);
  }
  std::sort(order.begin(), order.end());
  return order;
}

std::optional<ReferenceHit> NearestReferenceFinder::Find(
    absl::string_view residues) const {
  if (residues.empty() || references_.empty()) return std::nullopt;
  const std::vector<int8_t> query = EncodeResidues(residues);
  const int query_length = static_cast<int>(query.size());
  const SubstitutionMatrix& matrix = Blosum62();
  // Score size 2: scores may pass 255 (long, near-identical proteins).
  Profile profile(ssw_init(query.data(), query_length, matrix.scores.data(),
                           matrix.size, 2));
  int best = -1;
  int best_score = 0;
  for (int r : Candidates(query)) {
    Alignment alignment =
        Align(profile.get(), encoded_[r], query_length, kScoreOnly);
    if (alignment && alignment->score1 > best_score) {
      best_score = alignment->score1;
      best = r;
    }
  }
  if (best < 0) return std::nullopt;
  const double evalue = EValue(best_score, query_length, total_residues_);
  if (evalue > options_.max_evalue) return std::nullopt;

  const std::vector<int8_t>& target = encoded_[best];
  Alignment alignment = Align(profile.get(), target, query_length, kWithPath);
  if (!alignment || alignment->read_begin1 < 0 || alignment->cigarLen <= 0) {
    return std::nullopt;
  }
  int identical = 0;
  int columns = 0;
  int q = alignment->read_begin1;
  int t = alignment->ref_begin1;
  for (int i = 0; i < alignment->cigarLen; ++i) {
    const uint32_t length = cigar_int_to_len(alignment->cigar[i]);
    const char op = cigar_int_to_op(alignment->cigar[i]);
    columns += static_cast<int>(length);
    if (op == 'M' || op == '=' || op == 'X') {
      for (uint32_t k = 0; k < length; ++k)
        identical += query[q++] == target[t++];
    } else if (op == 'I') {
      q += static_cast<int>(length);
    } else if (op == 'D') {
      t += static_cast<int>(length);
    }
  }
  ReferenceHit hit;
  hit.reference = best;
  hit.score = best_score;
  hit.bits = BitScore(best_score);
  hit.evalue = evalue;
  hit.identity = columns > 0 ? static_cast<double>(identical) / columns : 0.0;
  hit.query_start = alignment->read_begin1 + 1;
  hit.query_end = alignment->read_end1 + 1;
  hit.reference_start = alignment->ref_begin1 + 1;
  hit.reference_end = alignment->ref_end1 + 1;
  hit.query_coverage =
      static_cast<double>(hit.query_end - hit.query_start + 1) / query_length;
  hit.reference_coverage =
      static_cast<double>(hit.reference_end - hit.reference_start + 1) /
      static_cast<double>(target.size());
  return hit;
}

}  // namespace argserve
