#include "argserve/evidence/nearest_reference.h"

#include <ssw.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <utility>

#include "argserve/evidence/scoring.h"

namespace argserve {
namespace {

// Seeds: three residues at these offsets, identical in query and reference.
// The spaced shapes survive substitutions that break every run of three.
constexpr int kShapes = 2;
constexpr int kSeedWeight = 3;
constexpr int kShapeOffsets[kShapes][kSeedWeight] = {{0, 1, 3}, {0, 2, 3}};
constexpr int kShapeSpan[kShapes] = {4, 4};
// References are ranked by their densest stretch of diagonals (query
// position - reference position): a homolog's seeds lie near one diagonal,
// chance matches scatter. Seeds are counted per band of kBandWidth diagonals;
// a stretch is two neighbouring bands.
constexpr int kBandWidth = 8;

int64_t Bands(int64_t residues) {
  return (residues + kBandWidth - 1) / kBandWidth;
}

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

// The seed code starting at each position of `codes` for `shape`, or -1 where
// the seed covers a residue that is not standard.
std::vector<int32_t> SeedCodes(const std::vector<int8_t>& codes, int shape) {
  const int span = kShapeSpan[shape];
  const int count = static_cast<int>(codes.size()) - span + 1;
  std::vector<int32_t> seeds(std::max(count, 0), -1);
  const int base = AlphabetSize();
  for (int i = 0; i < count; ++i) {
    int32_t code = 0;
    bool standard = true;
    for (int offset : kShapeOffsets[shape]) {
      const int8_t letter = codes[i + offset];
      standard = standard && IsStandardResidue(letter);
      code = code * base + letter;
    }
    if (standard) seeds[i] = code;
  }
  return seeds;
}

Alignment Align(const s_profile* profile, const std::vector<int8_t>& reference,
                int query_length, uint8_t flag) {
  return Alignment(ssw_align(
      profile, reference.data(), static_cast<int32_t>(reference.size()),
      kGapOpen, kGapExtend, flag, 0, 0, std::max(15, query_length / 2)));
}

// The hit of `reference`, whose alignment scored `score`, with its traceback;
// nullopt when its E-value is over `max_evalue`.
std::optional<ReferenceHit> TracedHit(const s_profile* profile,
                                      const std::vector<int8_t>& query,
                                      const std::vector<int8_t>& target,
                                      int reference, int score,
                                      int64_t total_residues,
                                      double max_evalue) {
  const int query_length = static_cast<int>(query.size());
  const double evalue = EValue(score, query_length, total_residues);
  if (evalue > max_evalue) return std::nullopt;

  Alignment alignment = Align(profile, target, query_length, kWithPath);
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
  hit.reference = reference;
  hit.score = score;
  hit.bits = BitScore(score);
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

}  // namespace

NearestReferenceFinder::NearestReferenceFinder(
    std::vector<Reference> references, NearestReferenceOptions options)
    : references_(std::move(references)), options_(std::move(options)) {
  int32_t codes = 1;
  for (int i = 0; i < kSeedWeight; ++i) codes *= AlphabetSize();
  encoded_.reserve(references_.size());
  is_arg_.reserve(references_.size());
  for (const Reference& reference : references_) {
    is_arg_.push_back(options_.nonarg_class.empty() ||
                      reference.class_name != options_.nonarg_class);
  }
  reference_bands_.assign(references_.size() + 1, 0);
  for (size_t r = 0; r < references_.size(); ++r) {
    encoded_.push_back(EncodeResidues(references_[r].residues));
    const auto length = static_cast<int64_t>(encoded_.back().size());
    total_residues_ += length;
    reference_bands_[r + 1] = reference_bands_[r] + Bands(length);
  }
  // Postings in compressed rows: count each code's seeds, then fill.
  seed_index_.resize(kShapes);
  for (int shape = 0; shape < kShapes; ++shape) {
    SeedIndex& index = seed_index_[shape];
    index.start.assign(codes + 1, 0);
    std::vector<std::vector<int32_t>> seeds(encoded_.size());
    for (size_t r = 0; r < encoded_.size(); ++r) {
      seeds[r] = SeedCodes(encoded_[r], shape);
      for (int32_t code : seeds[r]) {
        if (code >= 0) ++index.start[code + 1];
      }
    }
    for (int32_t c = 0; c < codes; ++c) index.start[c + 1] += index.start[c];
    index.postings.resize(index.start[codes]);
    std::vector<int32_t> next(index.start.begin(), index.start.end() - 1);
    for (size_t r = 0; r < seeds.size(); ++r) {
      const auto length = static_cast<int64_t>(encoded_[r].size());
      for (size_t position = 0; position < seeds[r].size(); ++position) {
        const int32_t code = seeds[r][position];
        if (code < 0) continue;
        const int64_t diagonal_offset = reference_bands_[r] * kBandWidth +
                                        length - static_cast<int64_t>(position);
        index.postings[next[code]++] = {static_cast<int32_t>(r),
                                        static_cast<int32_t>(diagonal_offset)};
      }
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

  // Reference r owns the bands [first(r), first(r + 1)): enough for its
  // diagonals with this query, plus one so that every band has a neighbour.
  const int64_t query_bands = Bands(static_cast<int64_t>(query.size())) + 2;
  const auto first = [&](int64_t r) {
    return reference_bands_[r] + r * query_bands;
  };
  std::vector<uint16_t> bands(first(count), 0);
  for (int shape = 0; shape < kShapes; ++shape) {
    const SeedIndex& index = seed_index_[shape];
    const std::vector<int32_t> seeds = SeedCodes(query, shape);
    for (size_t position = 0; position < seeds.size(); ++position) {
      const int32_t code = seeds[position];
      if (code < 0) continue;
      for (int32_t p = index.start[code]; p < index.start[code + 1]; ++p) {
        const SeedPosting& posting = index.postings[p];
        const int64_t diagonal = posting.diagonal_offset +
                                 static_cast<int64_t>(position) +
                                 posting.reference * query_bands * kBandWidth;
        uint16_t& band = bands[diagonal / kBandWidth];
        if (band < std::numeric_limits<uint16_t>::max()) ++band;
      }
    }
  }
  std::vector<int> score(count, 0);
  for (int r = 0; r < count; ++r) {
    for (int64_t b = first(r); b + 1 < first(r + 1); ++b) {
      score[r] = std::max(score[r], bands[b] + bands[b + 1]);
    }
  }
  order.erase(std::remove_if(order.begin(), order.end(),
                             [&](int r) { return score[r] == 0; }),
              order.end());
  const auto higher = [&](int a, int b) {
    return score[a] != score[b] ? score[a] > score[b] : a < b;
  };
  const int kept = options_.candidates;
  if (static_cast<int>(order.size()) > kept) {
    std::nth_element(order.begin(), order.begin() + kept, order.end(), higher);
    // Too few ARG references among the best: the best of the rest replace the
    // weakest non-ARG ones.
    const int args = static_cast<int>(std::count_if(
        order.begin(), order.begin() + kept, [&](int r) { return IsArg(r); }));
    if (args < options_.arg_candidates) {
      const auto rest = std::partition(order.begin() + kept, order.end(),
                                       [&](int r) { return IsArg(r); });
      const int more =
          std::min<int>({options_.arg_candidates - args, kept - args,
                         static_cast<int>(rest - (order.begin() + kept))});
      std::partial_sort(order.begin() + kept, order.begin() + kept + more, rest,
                        higher);
      // Non-ARGs first, weakest last; then swap the last `more` of them out.
      std::sort(order.begin(), order.begin() + kept, [&](int a, int b) {
        return IsArg(a) != IsArg(b) ? !IsArg(a) : higher(a, b);
      });
      std::swap_ranges(order.begin() + (kept - args - more),
                       order.begin() + (kept - args), order.begin() + kept);
    }
    order.resize(kept);
  }
  std::sort(order.begin(), order.end());
  return order;
}

std::optional<ReferenceHit> NearestReferenceFinder::Find(
    absl::string_view residues) const {
  return FindNearestAndArg(residues).nearest;
}

NearestReferences NearestReferenceFinder::FindNearestAndArg(
    absl::string_view residues) const {
  NearestReferences found;
  if (residues.empty() || references_.empty()) return found;
  const std::vector<int8_t> query = EncodeResidues(residues);
  const int query_length = static_cast<int>(query.size());
  const SubstitutionMatrix& matrix = Blosum62();
  // Score size 2: scores may pass 255 (long, near-identical proteins).
  Profile profile(ssw_init(query.data(), query_length, matrix.scores.data(),
                           matrix.size, 2));
  int best = -1;
  int best_score = 0;
  int best_arg = -1;
  int best_arg_score = 0;
  for (int r : Candidates(query)) {
    Alignment alignment =
        Align(profile.get(), encoded_[r], query_length, kScoreOnly);
    if (!alignment) continue;
    if (alignment->score1 > best_score) {
      best_score = alignment->score1;
      best = r;
    }
    if (alignment->score1 > best_arg_score && IsArg(r)) {
      best_arg_score = alignment->score1;
      best_arg = r;
    }
  }
  if (best < 0) return found;
  found.nearest = TracedHit(profile.get(), query, encoded_[best], best,
                            best_score, total_residues_, options_.max_evalue);
  if (found.nearest && best_arg >= 0 && !IsArg(best)) {
    found.nearest_arg =
        TracedHit(profile.get(), query, encoded_[best_arg], best_arg,
                  best_arg_score, total_residues_, options_.max_evalue);
  }
  return found;
}

}  // namespace argserve
