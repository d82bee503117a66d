#include "argserve/evidence/nearest_reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "argserve/evidence/scoring.h"
#include "tests/cpp/support/random_protein.h"

namespace argserve {
namespace {

using testing::Diverged;
using ::testing::HasSubstr;
using testing::Mutate;
using testing::RandomProtein;
using testing::Shuffled;

std::vector<Reference> RandomReferences(int count, std::mt19937& rng) {
  std::vector<Reference> references;
  references.reserve(count);
  for (int i = 0; i < count; ++i) {
    references.push_back({absl::StrCat("gene", i, "-1_1_ACC", i),
                          absl::StrCat("gene", i, "-1"), absl::StrCat("ACC", i),
                          i % 2 == 0 ? "beta-lactam" : "tetracycline",
                          RandomProtein(200 + 10 * (i % 7), rng)});
  }
  return references;
}

class NearestReferenceTest : public ::testing::Test {
 protected:
  NearestReferenceTest()
      : rng_(7),
        references_(RandomReferences(40, rng_)),
        finder_(references_, NearestReferenceOptions()) {}

  std::mt19937 rng_;
  const std::vector<Reference> references_;
  const NearestReferenceFinder finder_;
};

TEST_F(NearestReferenceTest, IdenticalProteinIsItsReferenceAtFullIdentity) {
  for (int r : {0, 13, 39}) {
    auto hit = finder_.Find(references_[r].residues);
    ASSERT_TRUE(hit.has_value()) << r;
    EXPECT_EQ(finder_.reference(*hit).id, references_[r].id);
    EXPECT_DOUBLE_EQ(hit->identity, 1.0);
    EXPECT_DOUBLE_EQ(hit->query_coverage, 1.0);
    EXPECT_DOUBLE_EQ(hit->reference_coverage, 1.0);
    EXPECT_EQ(hit->query_start, 1);
    EXPECT_EQ(hit->reference_end,
              static_cast<int>(references_[r].residues.size()));
    EXPECT_LT(hit->evalue, 1e-50);
  }
}

TEST_F(NearestReferenceTest, LowerCaseAndIdenticalScoresAgree) {
  std::string lower = references_[5].residues;
  for (char& c : lower) c = static_cast<char>(std::tolower(c));
  auto upper_hit = finder_.Find(references_[5].residues);
  auto lower_hit = finder_.Find(lower);
  ASSERT_TRUE(upper_hit && lower_hit);
  EXPECT_EQ(upper_hit->score, lower_hit->score);
}

TEST_F(NearestReferenceTest, ShuffledProteinHasNoCloseReference) {
  int hits = 0;
  for (int r = 0; r < 20; ++r) {
    hits += finder_.Find(Shuffled(references_[r].residues, rng_)).has_value();
  }
  EXPECT_EQ(hits, 0);
  EXPECT_FALSE(finder_.Find(RandomProtein(300, rng_)).has_value());
}

TEST_F(NearestReferenceTest, MutatedCopyFindsItsReferenceWithItsIdentity) {
  // Every fourth residue changed: 75% identity, no gaps.
  const std::string variant = Mutate(references_[21].residues, 4, rng_);
  auto hit = finder_.Find(variant);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(finder_.reference(*hit).id, references_[21].id);
  EXPECT_NEAR(hit->identity, 0.75, 0.02);
  EXPECT_GT(hit->query_coverage, 0.95);
}

TEST_F(NearestReferenceTest, FragmentCoversItselfAndPartOfTheReference) {
  const std::string& whole = references_[8].residues;
  const std::string fragment = whole.substr(50, whole.size() / 2);
  auto hit = finder_.Find(fragment);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(finder_.reference(*hit).id, references_[8].id);
  EXPECT_DOUBLE_EQ(hit->query_coverage, 1.0);
  EXPECT_NEAR(hit->reference_coverage, 0.5, 0.01);
  EXPECT_EQ(hit->reference_start, 51);
}

TEST_F(NearestReferenceTest, GappedVariantCountsGapsAsColumns) {
  // Ten residues deleted in the middle: 10 gap columns, the rest identical.
  const std::string& whole = references_[2].residues;
  const std::string variant = whole.substr(0, 100) + whole.substr(110);
  auto hit = finder_.Find(variant);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(finder_.reference(*hit).id, references_[2].id);
  EXPECT_NEAR(hit->identity, static_cast<double>(variant.size()) / whole.size(),
              1e-9);
}

TEST_F(NearestReferenceTest, ShortlistFindsWhatAligningEverythingFinds) {
  NearestReferenceOptions exhaustive;
  exhaustive.candidates = 0;
  const NearestReferenceFinder all(references_, exhaustive);
  for (int r = 0; r < 40; r += 3) {
    const std::string variant = Mutate(references_[r].residues, 4, rng_);
    auto a = finder_.Find(variant);
    auto b = all.Find(variant);
    ASSERT_TRUE(a && b) << r;
    EXPECT_EQ(a->reference, b->reference);
    EXPECT_EQ(a->score, b->score);
  }
}

TEST(NearestReference, ShortlistFindsDistantHomologsAmongLongReferences) {
  // 40% identity leaves few intact runs of three residues, while long
  // unrelated references share many by chance; the homolog's seeds lie on one
  // diagonal, the chance ones do not.
  std::mt19937 rng(11);
  std::vector<Reference> references;
  references.reserve(310);
  for (int i = 0; i < 300; ++i) {
    references.push_back({absl::StrCat("long", i), absl::StrCat("long", i), "",
                          "beta-lactam", RandomProtein(1200, rng)});
  }
  for (int i = 0; i < 10; ++i) {
    references.push_back({absl::StrCat("target", i), absl::StrCat("target", i),
                          "", "tetracycline", RandomProtein(300, rng)});
  }
  const NearestReferenceFinder finder(references, NearestReferenceOptions());
  NearestReferenceOptions exhaustive;
  exhaustive.candidates = 0;
  const NearestReferenceFinder all(references, exhaustive);
  for (int i = 0; i < 10; ++i) {
    const Reference& target = references[300 + i];
    const std::string homolog = Diverged(target.residues, 0.4, rng);
    auto expected = all.Find(homolog);
    ASSERT_TRUE(expected.has_value()) << i;
    ASSERT_EQ(all.reference(*expected).id, target.id);
    auto hit = finder.Find(homolog);
    ASSERT_TRUE(hit.has_value()) << i;
    EXPECT_EQ(finder.reference(*hit).id, target.id);
    EXPECT_EQ(hit->score, expected->score);
  }
}

TEST(NearestReference, NearestArgStandsBehindAKnownNonArg) {
  // An ARG, its housekeeping relative (a known non-ARG, 75% identical to it)
  // and an unrelated non-ARG. A copy of the relative has the relative nearest
  // and the ARG behind it; a copy of the ARG has only itself.
  std::mt19937 rng(17);
  const std::string arg = RandomProtein(260, rng);
  const std::vector<Reference> references = {
      {"tetX_1_A1", "tetX", "A1", "tetracycline", arg},
      {"P0HOUSE", "house", "", "nonarg", Mutate(arg, 4, rng)},
      {"P0OTHER", "other", "", "nonarg", RandomProtein(260, rng)}};
  NearestReferenceOptions options;
  options.nonarg_class = "nonarg";
  const NearestReferenceFinder finder(references, options);

  const NearestReferences relative =
      finder.FindNearestAndArg(Mutate(references[1].residues, 10, rng));
  ASSERT_TRUE(relative.nearest && relative.nearest_arg);
  EXPECT_EQ(finder.reference(*relative.nearest).id, "P0HOUSE");
  EXPECT_EQ(finder.reference(*relative.nearest_arg).id, "tetX_1_A1");
  EXPECT_LT(relative.nearest_arg->score, relative.nearest->score);
  EXPECT_NEAR(relative.nearest_arg->identity, 0.675, 0.05);
  // Find() gives the nearest alone, with the same alignment.
  auto nearest = finder.Find(Mutate(references[1].residues, 10, rng));
  ASSERT_TRUE(nearest.has_value());
  EXPECT_EQ(finder.reference(*nearest).id, "P0HOUSE");

  const NearestReferences own = finder.FindNearestAndArg(arg);
  ASSERT_TRUE(own.nearest);
  EXPECT_EQ(finder.reference(*own.nearest).id, "tetX_1_A1");
  EXPECT_FALSE(own.nearest_arg.has_value());  // the nearest is the ARG

  const NearestReferences alone =
      finder.FindNearestAndArg(references[2].residues);
  ASSERT_TRUE(alone.nearest);
  EXPECT_EQ(finder.reference(*alone.nearest).id, "P0OTHER");
  EXPECT_FALSE(alone.nearest_arg.has_value());  // no ARG aligns

  // Without a non-ARG class every reference counts as nearest only.
  const NearestReferenceFinder plain(references, NearestReferenceOptions());
  EXPECT_FALSE(plain.FindNearestAndArg(references[1].residues).nearest_arg);
}

TEST(NearestReference, RelativesDoNotCrowdTheArgOutOfTheShortlist) {
  // Forty non-ARG relatives of one family, each 75% identical to the query's
  // family; the ARG shares only a distant stretch with the query. Without the
  // ARG slots the relatives fill every candidate.
  std::mt19937 rng(23);
  const std::string family = RandomProtein(300, rng);
  std::vector<Reference> references;
  references.reserve(41);
  for (int i = 0; i < 40; ++i) {
    references.push_back({absl::StrCat("P", i), absl::StrCat("house", i), "",
                          "nonarg", Mutate(family, 4, rng)});
  }
  references.push_back(
      {"penX_1_A1", "penX", "A1", "beta-lactam", Diverged(family, 0.45, rng)});
  NearestReferenceOptions options;
  options.nonarg_class = "nonarg";
  const NearestReferenceFinder finder(references, options);
  const std::string query = Mutate(family, 3, rng);
  const NearestReferences found = finder.FindNearestAndArg(query);
  ASSERT_TRUE(found.nearest && found.nearest_arg);
  EXPECT_EQ(finder.reference(*found.nearest).class_name, "nonarg");
  EXPECT_EQ(finder.reference(*found.nearest_arg).id, "penX_1_A1");

  options.arg_candidates = 0;
  const NearestReferenceFinder crowded(references, options);
  EXPECT_FALSE(crowded.FindNearestAndArg(query).nearest_arg.has_value());
  // The shortlist's best stays the exhaustive search's best.
  options.candidates = 0;
  const NearestReferenceFinder all(references, options);
  const NearestReferences exhaustive = all.FindNearestAndArg(query);
  ASSERT_TRUE(exhaustive.nearest && exhaustive.nearest_arg);
  EXPECT_EQ(exhaustive.nearest->score, found.nearest->score);
  EXPECT_EQ(exhaustive.nearest_arg->score, found.nearest_arg->score);
}

TEST(NearestReference, AlignmentsBeyondSixteenBitScoresStayExact) {
  // Near-identical proteins of 8,000 residues score over 40,000: beyond 16-bit
  // alignment scores, where the nearer of two copies is still told apart and
  // the alignment still traced whole.
  std::mt19937 rng(11);
  const std::string protein = RandomProtein(8000, rng);
  const std::vector<Reference> references = {
      {"mutated", "mutated", "A1", "beta-lactam", Mutate(protein, 50, rng)},
      {"exact", "exact", "A2", "beta-lactam", protein}};
  const NearestReferenceFinder finder(references, NearestReferenceOptions());

  auto hit = finder.Find(protein);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(finder.reference(*hit).id, "exact");
  EXPECT_GT(hit->score, 1 << 15);
  EXPECT_DOUBLE_EQ(hit->identity, 1.0);
  EXPECT_DOUBLE_EQ(hit->query_coverage, 1.0);
  EXPECT_DOUBLE_EQ(hit->reference_coverage, 1.0);

  const std::string middle = references[0].residues.substr(1000, 6500);
  hit = finder.Find(middle);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(finder.reference(*hit).id, "mutated");
  EXPECT_EQ(hit->reference_start, 1001);
  EXPECT_EQ(hit->reference_end, 7500);
  EXPECT_DOUBLE_EQ(hit->query_coverage, 1.0);
  EXPECT_DOUBLE_EQ(hit->identity, 1.0);
}

TEST(NearestReference, EmptySetOrQueryFindsNothing) {
  const NearestReferenceFinder none({}, NearestReferenceOptions());
  EXPECT_FALSE(none.Find("MKVLAAGIVALLLAAGCSS").has_value());
  std::mt19937 rng(1);
  const NearestReferenceFinder some(RandomReferences(3, rng),
                                    NearestReferenceOptions());
  EXPECT_FALSE(some.Find("").has_value());
}

TEST(Scoring, Blosum62ComesThroughWithTheRightLetters) {
  const SubstitutionMatrix& m = Blosum62();
  const auto score = [&](char a, char b) {
    const std::vector<int8_t> codes = EncodeResidues(std::string{a, b});
    return m.scores[static_cast<size_t>(codes[0]) * m.size + codes[1]];
  };
  EXPECT_EQ(score('W', 'W'), 11);
  EXPECT_EQ(score('A', 'A'), 4);
  EXPECT_EQ(score('C', 'C'), 9);
  EXPECT_EQ(score('W', 'F'), 1);
  EXPECT_EQ(score('E', 'K'), 1);
  EXPECT_EQ(score('a', 'R'), -1);
  EXPECT_TRUE(IsStandardResidue(EncodeResidues("L")[0]));
  EXPECT_FALSE(IsStandardResidue(EncodeResidues("X")[0]));
  // Bits and E-value follow from each other: E = m n 2^-bits.
  EXPECT_NEAR(EValue(100, 300, 1000000),
              300.0 * 1e6 * std::pow(2.0, -BitScore(100)), 1e-12);
}

TEST(ReferenceTable, ParsesRowsAndNamesWhatIsWrong) {
  auto table = ParseReferenceTable(
      "id\tgene\taccession\tclass\tresidues\n"
      "blaTEM-1_1_AY458016\tblaTEM-1\tAY458016\tbeta-lactam\tmsiqhfr\n"
      "x\t\t\ttetracycline\tMKV\n",
      "refs.tsv");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->size(), 2u);
  EXPECT_EQ((*table)[0].residues, "MSIQHFR");
  EXPECT_EQ((*table)[1].gene, "x");  // No gene: the id stands for it.
  EXPECT_THAT(ParseReferenceTable("id\tclass\n", "r.tsv").status().message(),
              HasSubstr("r.tsv:1: expected the header"));
  EXPECT_THAT(ParseReferenceTable("id\tgene\taccession\tclass\tresidues\n"
                                  "a\tb\tc\n",
                                  "r.tsv")
                  .status()
                  .message(),
              HasSubstr("r.tsv:2: expected 5 tab-separated fields, found 3"));
  EXPECT_THAT(ParseReferenceTable("id\tgene\taccession\tclass\tresidues\n"
                                  "a\tg\t\tc\tMK\na\tg\t\tc\tMV\n",
                                  "r.tsv")
                  .status()
                  .message(),
              HasSubstr("r.tsv:3: duplicate reference id 'a'"));
  EXPECT_THAT(ParseReferenceTable("id\tgene\taccession\tclass\tresidues\n"
                                  "a\tg\t\tc\tMK*\n",
                                  "r.tsv")
                  .status()
                  .message(),
              HasSubstr("invalid character at residue 3"));
  EXPECT_FALSE(ParseReferenceTable("", "r.tsv").ok());
}

TEST(ReferenceTable, GeneFamilyDropsTheAlleleNumber) {
  EXPECT_EQ(GeneFamily("blaOXA-48"), "blaOXA");
  EXPECT_EQ(GeneFamily("blaTEM-1"), "blaTEM");
  EXPECT_EQ(GeneFamily("aac(6')-Ib"), "aac(6')-Ib");
  EXPECT_EQ(GeneFamily("tet(M)"), "tet(M)");
  EXPECT_EQ(GeneFamily("mcr-"), "mcr-");
}

}  // namespace
}  // namespace argserve
