#include "argserve/evidence/nearest_reference.h"

#include <parasail.h>
#include <ssw.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <numeric>
#include <string>
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

// BLAST's "gap open 11, extend 1" charges 11 + L for a gap of L; SSW and
// parasail charge their open weight for the first position and the extension
// for the others.
constexpr uint8_t kGapOpen = 12;
constexpr uint8_t kGapExtend = 1;
// ssw_align's flag for the traceback: start positions and CIGAR too.
constexpr uint8_t kWithPath = 1;

struct ProfileDeleter {
  void operator()(s_profile* profile) const { init_destroy(profile); }
};
struct AlignmentDeleter {
  void operator()(s_align* alignment) const { align_destroy(alignment); }
};
using Profile = std::unique_ptr<s_profile, ProfileDeleter>;
using Alignment = std::unique_ptr<s_align, AlignmentDeleter>;

struct ScoringProfileDeleter {
  void operator()(parasail_profile_t* profile) const {
    parasail_profile_free(profile);
  }
};
struct ScoreDeleter {
  void operator()(parasail_result_t* result) const {
    parasail_result_free(result);
  }
};
using ScoringProfile =
    std::unique_ptr<parasail_profile_t, ScoringProfileDeleter>;
using Score = std::unique_ptr<parasail_result_t, ScoreDeleter>;

// parasail reads sequences as text: letter code c is the character
// kFirstLetter + c, in a case-sensitive matrix (codes stay below 64).
constexpr char kFirstLetter = '0';

std::string AsLetters(const std::vector<int8_t>& codes) {
  std::string letters(codes.size(), kFirstLetter);
  for (size_t i = 0; i < codes.size(); ++i) letters[i] += codes[i];
  return letters;
}

// The letters of codes 0 .. size - 1.
std::string Alphabet(int size) {
  std::vector<int8_t> codes(size);
  std::iota(codes.begin(), codes.end(), 0);
  return AsLetters(codes);
}

// parasail picks each function's kernel for the CPU on its first call and
// keeps it in a pointer it writes then: every function this file may reach is
// called once here, before threads share a finder.
void ChooseParasailKernels(const parasail_matrix_t* matrix,
                           const std::string& probe) {
  const int length = static_cast<int>(probe.size());
  const ScoringProfile profile(
      parasail_profile_create_sat(probe.data(), length, matrix));
  if (!profile) throw std::bad_alloc();
  for (const auto& scoring :
       {parasail_sw_striped_profile_8, parasail_sw_striped_profile_16,
        parasail_sw_striped_profile_32}) {
    const Score score(
        scoring(profile.get(), probe.data(), length, kGapOpen, kGapExtend));
  }
  for (const auto& aligning :
       {parasail_sw_stats_striped_8, parasail_sw_stats_striped_16,
        parasail_sw_stats_striped_32, parasail_sw_striped_8,
        parasail_sw_striped_16, parasail_sw_striped_32}) {
    const Score score(aligning(probe.data(), length, probe.data(), length,
                               kGapOpen, kGapExtend, matrix));
  }
}

int AlphabetSize() { return Blosum62().size; }

// The largest sum of two neighbouring counts among `size`. In blocks of a
// fixed length, which compilers vectorize at -O2.
int DensestPair(const uint16_t* counts, int64_t size) {
  constexpr int kBlock = 32;
  int best = 0;
  int64_t b = 0;
  for (; b + kBlock < size; b += kBlock) {
    int block_best = 0;
    for (int k = 0; k < kBlock; ++k) {
      block_best = std::max(block_best, counts[b + k] + counts[b + k + 1]);
    }
    best = std::max(best, block_best);
  }
  for (; b + 1 < size; ++b) best = std::max(best, counts[b] + counts[b + 1]);
  return best;
}

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

// Where an alignment starts and ends (0-based, inclusive) and its identity.
struct Trace {
  int query_begin = 0;
  int query_end = 0;
  int target_begin = 0;
  int target_end = 0;
  double identity = 0;
};

// SSW's traceback: nullopt when it fails or its 16-bit words cannot hold
// `score` (over some 6,000 near-identical residues).
std::optional<Trace> ShortTrace(const s_profile* profile,
                                const std::vector<int8_t>& query,
                                const std::vector<int8_t>& target, int score) {
  const Alignment alignment =
      Align(profile, target, static_cast<int>(query.size()), kWithPath);
  if (!alignment || alignment->score1 != score || alignment->read_begin1 < 0 ||
      alignment->cigarLen <= 0) {
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
  Trace trace;
  trace.query_begin = alignment->read_begin1;
  trace.query_end = alignment->read_end1;
  trace.target_begin = alignment->ref_begin1;
  trace.target_end = alignment->ref_end1;
  trace.identity = columns > 0 ? static_cast<double>(identical) / columns : 0.0;
  return trace;
}

// parasail's trace in linear memory, for scores beyond ShortTrace: the ends
// and identity from its statistics, the starts from the same search over the
// reversed prefixes.
std::optional<Trace> LongTrace(const std::string& query,
                               const std::string& target,
                               const parasail_matrix_t* matrix) {
  const Score forward(parasail_sw_stats_striped_sat(
      query.data(), static_cast<int>(query.size()), target.data(),
      static_cast<int>(target.size()), kGapOpen, kGapExtend, matrix));
  if (!forward) return std::nullopt;
  Trace trace;
  trace.query_end = parasail_result_get_end_query(forward.get());
  trace.target_end = parasail_result_get_end_ref(forward.get());
  const int columns = parasail_result_get_length(forward.get());
  trace.identity =
      columns > 0
          ? static_cast<double>(parasail_result_get_matches(forward.get())) /
                columns
          : 0.0;
  const std::string query_back(query.rend() - trace.query_end - 1,
                               query.rend());
  const std::string target_back(target.rend() - trace.target_end - 1,
                                target.rend());
  const Score backward(parasail_sw_striped_sat(
      query_back.data(), static_cast<int>(query_back.size()),
      target_back.data(), static_cast<int>(target_back.size()), kGapOpen,
      kGapExtend, matrix));
  if (!backward) return std::nullopt;
  trace.query_begin =
      trace.query_end - parasail_result_get_end_query(backward.get());
  trace.target_begin =
      trace.target_end - parasail_result_get_end_ref(backward.get());
  return trace;
}

}  // namespace

void NearestReferenceFinder::ScoringMatrixDeleter::operator()(
    parasail_matrix* matrix) const {
  parasail_matrix_free(matrix);
}

NearestReferenceFinder::NearestReferenceFinder(
    std::vector<Reference> references, NearestReferenceOptions options)
    : references_(std::move(references)), options_(std::move(options)) {
  int32_t codes = 1;
  for (int i = 0; i < kSeedWeight; ++i) codes *= AlphabetSize();
  const SubstitutionMatrix& blosum = Blosum62();
  scoring_matrix_.reset(parasail_matrix_create_case_sensitive(
      Alphabet(blosum.size).c_str(), 1, -1));
  if (!scoring_matrix_) throw std::bad_alloc();
  for (int i = 0; i < blosum.size; ++i) {
    for (int j = 0; j < blosum.size; ++j) {
      parasail_matrix_set_value(scoring_matrix_.get(), i, j,
                                blosum.scores[i * blosum.size + j]);
    }
  }
  ChooseParasailKernels(scoring_matrix_.get(), Alphabet(blosum.size));
  encoded_.reserve(references_.size());
  letters_.reserve(references_.size());
  is_arg_.reserve(references_.size());
  for (const Reference& reference : references_) {
    is_arg_.push_back(options_.nonarg_class.empty() ||
                      reference.class_name != options_.nonarg_class);
  }
  reference_bands_.assign(references_.size() + 1, 0);
  for (size_t r = 0; r < references_.size(); ++r) {
    encoded_.push_back(EncodeResidues(references_[r].residues));
    letters_.push_back(AsLetters(encoded_.back()));
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
    score[r] = DensestPair(bands.data() + first(r), first(r + 1) - first(r));
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
  const std::string query_letters = AsLetters(query);
  const ScoringProfile scoring(parasail_profile_create_sat(
      query_letters.data(), query_length, scoring_matrix_.get()));
  if (!scoring) throw std::bad_alloc();
  int best = -1;
  int best_score = 0;
  int best_arg = -1;
  int best_arg_score = 0;
  for (int r : Candidates(query)) {
    // Saturating kernels: 8-bit lanes first, 16 or 32 bits when a score
    // outgrows them.
    const Score scored(parasail_sw_striped_profile_sat(
        scoring.get(), letters_[r].data(), static_cast<int>(letters_[r].size()),
        kGapOpen, kGapExtend));
    if (!scored) continue;
    const int score = parasail_result_get_score(scored.get());
    if (score > best_score) {
      best_score = score;
      best = r;
    }
    if (score > best_arg_score && IsArg(r)) {
      best_arg_score = score;
      best_arg = r;
    }
  }
  if (best < 0) return found;
  const SubstitutionMatrix& matrix = Blosum62();
  // Score size 2: scores may pass 255 (long, near-identical proteins).
  const Profile profile(ssw_init(query.data(), query_length,
                                 matrix.scores.data(), matrix.size, 2));
  // The hit of reference r, whose alignment scored `score`, with its
  // traceback; nullopt when its E-value is over the limit.
  const auto traced = [&](int r, int score) -> std::optional<ReferenceHit> {
    const double evalue = EValue(score, query_length, total_residues_);
    if (evalue > options_.max_evalue) return std::nullopt;
    std::optional<Trace> trace =
        ShortTrace(profile.get(), query, encoded_[r], score);
    if (!trace) {
      trace = LongTrace(query_letters, letters_[r], scoring_matrix_.get());
    }
    if (!trace) return std::nullopt;
    ReferenceHit hit;
    hit.reference = r;
    hit.score = score;
    hit.bits = BitScore(score);
    hit.evalue = evalue;
    hit.identity = trace->identity;
    hit.query_start = trace->query_begin + 1;
    hit.query_end = trace->query_end + 1;
    hit.reference_start = trace->target_begin + 1;
    hit.reference_end = trace->target_end + 1;
    hit.query_coverage =
        static_cast<double>(hit.query_end - hit.query_start + 1) / query_length;
    hit.reference_coverage =
        static_cast<double>(hit.reference_end - hit.reference_start + 1) /
        static_cast<double>(encoded_[r].size());
    return hit;
  };
  found.nearest = traced(best, best_score);
  if (found.nearest && best_arg >= 0 && !IsArg(best)) {
    found.nearest_arg = traced(best_arg, best_arg_score);
  }
  return found;
}

}  // namespace argserve
