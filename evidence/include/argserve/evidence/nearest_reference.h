// The nearest reference of a protein: candidates by seeds shared along a
// diagonal, then Smith-Waterman local alignment (BLOSUM62, gap open 11 and
// extension 1 as in BLAST): parasail scores the candidates, the Striped
// Smith-Waterman library traces the best.
#ifndef ARGSERVE_EVIDENCE_NEAREST_REFERENCE_H_
#define ARGSERVE_EVIDENCE_NEAREST_REFERENCE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "argserve/evidence/reference_set.h"

struct parasail_matrix;

namespace argserve {

struct NearestReferenceOptions {
  // References aligned per query, those with the most seeds on one band of
  // diagonals; 0 aligns every reference (exhaustive, for measuring the
  // shortlist's recall).
  int candidates = 32;
  // With nonarg_class set: of the candidates, at least this many are ARG
  // references when that many have a seed band, so that a family of non-ARG
  // relatives cannot crowd out the ARG they resemble.
  int arg_candidates = 8;
  // Alignments with a larger E-value are no evidence.
  double max_evalue = 1e-5;
  // References of this class are known non-ARGs (empty: none are). When one
  // of them is nearest, FindNearestAndArg also reports the nearest ARG.
  std::string nonarg_class;
};

struct ReferenceHit {
  int reference = -1;  // Index into the reference set.
  int score = 0;       // Raw alignment score.
  double bits = 0;
  double evalue = 0;
  // Identical columns over alignment columns (gaps included), as BLAST and
  // DIAMOND report identity.
  double identity = 0;
  double query_coverage = 0;      // Aligned share of the query.
  double reference_coverage = 0;  // Aligned share of the reference.
  int query_start = 0;            // 1-based, inclusive.
  int query_end = 0;
  int reference_start = 0;
  int reference_end = 0;
};

struct NearestReferences {
  std::optional<ReferenceHit> nearest;
  // Only when `nearest` is a known non-ARG: the best-scoring ARG reference
  // among the candidates, when its E-value is within the limit.
  std::optional<ReferenceHit> nearest_arg;
};

class NearestReferenceFinder {
 public:
  NearestReferenceFinder(std::vector<Reference> references,
                         NearestReferenceOptions options);
  ~NearestReferenceFinder();
  NearestReferenceFinder(const NearestReferenceFinder&) = delete;
  NearestReferenceFinder& operator=(const NearestReferenceFinder&) = delete;

  // The best-scoring alignment among the candidates whose E-value is within
  // the limit, and the nearest ARG reference when a non-ARG is nearest (the
  // same candidates and alignments; one more traceback when both are found).
  // Safe to call from several threads at once.
  NearestReferences FindNearestAndArg(absl::string_view residues) const;
  // FindNearestAndArg's nearest alone; nullopt when none.
  std::optional<ReferenceHit> Find(absl::string_view residues) const;

  const std::vector<Reference>& references() const { return references_; }
  const Reference& reference(const ReferenceHit& hit) const {
    return references_[hit.reference];
  }

 private:
  std::vector<int> Candidates(const std::vector<int8_t>& query) const;
  bool IsArg(int reference) const { return is_arg_[reference] != 0; }

  const std::vector<Reference> references_;
  const NearestReferenceOptions options_;
  std::vector<std::vector<int8_t>> encoded_;  // Per reference.
  std::vector<std::string> letters_;  // Per reference, as parasail reads it.
  struct ScoringMatrixDeleter {
    void operator()(parasail_matrix* matrix) const;
  };
  // BLOSUM62 over the letters of letters_.
  std::unique_ptr<parasail_matrix, ScoringMatrixDeleter> scoring_matrix_;
  std::vector<char> is_arg_;  // Per reference: not of options_.nonarg_class.
  int64_t total_residues_ = 0;
  // Per reference, the diagonal bands of all references before it (the
  // candidates' counting layout; see Candidates()).
  std::vector<int64_t> reference_bands_;
  // A seed of a reference: which one, and where its diagonals start in the
  // counting layout, less the seed's position (int32: reference sets up to
  // 2^31 residues).
  struct SeedPosting {
    int32_t reference;
    int32_t diagonal_offset;
  };
  // Per seed shape: the postings of code c are postings[start[c], start[c+1]).
  struct SeedIndex {
    std::vector<int32_t> start;
    std::vector<SeedPosting> postings;
  };
  std::vector<SeedIndex> seed_index_;
};

}  // namespace argserve

#endif  // ARGSERVE_EVIDENCE_NEAREST_REFERENCE_H_
