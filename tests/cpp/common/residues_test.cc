#include "argserve/common/residues.h"

#include <gtest/gtest.h>

#include "argserve/common/describe.h"

namespace argserve {
namespace {

using Kind = ResidueProblem::Kind;

std::optional<ResidueProblem> Check(const ResidueAlphabet& alphabet,
                                    std::string_view residues) {
  return alphabet.Check(residues);
}

TEST(ResidueAlphabet, AcceptsItsLettersInEitherCaseAndDropsOneFinalStop) {
  const ResidueAlphabet alphabet("ACDEFGHIKLMNPQRSTVWY");
  std::string_view residues = "MkLa*";
  EXPECT_FALSE(alphabet.Check(residues).has_value());
  EXPECT_EQ(residues, "MkLa");
  EXPECT_TRUE(alphabet.Accepts('m'));
  EXPECT_FALSE(alphabet.Accepts('*'));
  EXPECT_FALSE(alphabet.Accepts('J'));
}

TEST(ResidueAlphabet, NamesTheFirstProblemAndWhere) {
  const ResidueAlphabet alphabet("ACDEFGHIKLMNPQRSTVWY");
  auto invalid = Check(alphabet, "MKJA");
  ASSERT_TRUE(invalid.has_value());
  EXPECT_EQ(invalid->kind, Kind::kInvalidCharacter);
  EXPECT_EQ(invalid->index, 2u);
  EXPECT_EQ(invalid->What(), "invalid character 'J'");

  auto stop = Check(alphabet, "MK*A*");
  ASSERT_TRUE(stop.has_value());
  EXPECT_EQ(stop->kind, Kind::kInternalStop);
  EXPECT_EQ(stop->index, 2u);
  EXPECT_EQ(stop->What(), "internal stop codon '*'");

  // Only one final '*' is a stop codon; the one before it is internal.
  auto two_stops = Check(alphabet, "MK**");
  ASSERT_TRUE(two_stops.has_value());
  EXPECT_EQ(two_stops->kind, Kind::kInternalStop);
  EXPECT_EQ(two_stops->index, 2u);

  for (std::string_view empty : {"", "*"}) {
    auto problem = Check(alphabet, empty);
    ASSERT_TRUE(problem.has_value());
    EXPECT_EQ(problem->kind, Kind::kEmpty);
  }
}

TEST(ResidueAlphabet, KeepsLettersOnlyOnceUpperCase) {
  const ResidueAlphabet alphabet("aAc-C");
  EXPECT_EQ(alphabet.letters(), "AC");
  EXPECT_EQ(alphabet.Allowed(), "AC");
  EXPECT_FALSE(alphabet.Accepts('-'));
}

TEST(ResidueAlphabet, AnyLetterIsTheShapeOfASequence) {
  const ResidueAlphabet any = ResidueAlphabet::AnyLetter();
  EXPECT_FALSE(Check(any, "JjOoUuBZX").has_value());
  EXPECT_TRUE(Check(any, "MK1").has_value());
  EXPECT_EQ(any.Allowed(), "letters");
}

TEST(DescribeId, EscapesAndBounds) {
  EXPECT_EQ(DescribeId("abc"), "'abc'");
  EXPECT_EQ(DescribeId(std::string("a\xff\n", 3)), "'a\\xff\\x0a'");
  EXPECT_EQ(DescribeId(std::string(100, 'x')),
            "'" + std::string(80, 'x') + "...'");
}

TEST(DescribeByte, PrintsPrintableBytesAndEscapesTheRest) {
  EXPECT_EQ(DescribeByte('J'), "'J'");
  EXPECT_EQ(DescribeByte(' '), "' ' (space)");
  EXPECT_EQ(DescribeByte(0), "\\x00");
  EXPECT_EQ(DescribeByte(0xff), "\\xff");
}

}  // namespace
}  // namespace argserve
