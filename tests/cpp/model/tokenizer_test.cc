#include "argserve/model/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/cpp/support/test_metadata.h"

namespace argserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TokenizerTest : public ::testing::Test {
 protected:
  TokenizerTest()
      : metadata_(*ParseModelMetadata(testing::TestModelJson(5))),
        tokenizer_(metadata_) {}
  ModelMetadata metadata_;
  Tokenizer tokenizer_;
};

TEST_F(TokenizerTest, AddsClsAndEosAroundEsmIndices) {
  TokenizedSequence out;
  ASSERT_TRUE(
      tokenizer_.Tokenize("MKLA", LongSequencePolicy::kReject, out).ok());
  // ESM-2 alphabet: <cls>=0, M=20, K=15, L=4, A=5, <eos>=2.
  EXPECT_THAT(out.tokens, ElementsAre(0, 20, 15, 4, 5, 2));
  EXPECT_EQ(out.residues, 4);
  EXPECT_FALSE(out.truncated);
}

TEST_F(TokenizerTest, IsCaseInsensitiveAndDropsOneTrailingStop) {
  TokenizedSequence lower;
  TokenizedSequence upper;
  ASSERT_TRUE(
      tokenizer_.Tokenize("mkla*", LongSequencePolicy::kReject, lower).ok());
  ASSERT_TRUE(
      tokenizer_.Tokenize("MKLA", LongSequencePolicy::kReject, upper).ok());
  EXPECT_EQ(lower.tokens, upper.tokens);
  EXPECT_EQ(lower.residues, 4);
}

TEST_F(TokenizerTest, AcceptsAmbiguityCodes) {
  TokenizedSequence out;
  ASSERT_TRUE(
      tokenizer_.Tokenize("XBUZO", LongSequencePolicy::kReject, out).ok());
  EXPECT_THAT(out.tokens, ElementsAre(0, 24, 25, 26, 27, 28, 2));
}

TEST_F(TokenizerTest, NamesInvalidCharacterAndPosition) {
  TokenizedSequence out;
  absl::Status s =
      tokenizer_.Tokenize("MKJA", LongSequencePolicy::kReject, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("invalid character 'J' at position 3"));
  s = tokenizer_.Tokenize(std::string("MK\0A", 4), LongSequencePolicy::kReject,
                          out);
  EXPECT_THAT(std::string(s.message()), HasSubstr("\\x00 at position 3"));
  s = tokenizer_.Tokenize("M-A", LongSequencePolicy::kReject,
                          out);  // '-' is a token but not a residue.
  EXPECT_THAT(std::string(s.message()), HasSubstr("'-' at position 2"));
}

TEST_F(TokenizerTest, RejectsInternalStopAndEmpty) {
  TokenizedSequence out;
  absl::Status s =
      tokenizer_.Tokenize("MK*A", LongSequencePolicy::kReject, out);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("internal stop codon '*' at position 3"));
  EXPECT_THAT(
      std::string(
          tokenizer_.Tokenize("", LongSequencePolicy::kReject, out).message()),
      HasSubstr("empty sequence"));
  EXPECT_THAT(
      std::string(
          tokenizer_.Tokenize("*", LongSequencePolicy::kReject, out).message()),
      HasSubstr("empty sequence"));
}

TEST_F(TokenizerTest, LongSequencePolicy) {
  TokenizedSequence out;
  absl::Status s =
      tokenizer_.Tokenize("MKLAGV", LongSequencePolicy::kReject, out);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("6 residues, more than the model's maximum of 5"));
  ASSERT_TRUE(
      tokenizer_.Tokenize("MKLAGV", LongSequencePolicy::kTruncate, out).ok());
  EXPECT_TRUE(out.truncated);
  EXPECT_EQ(out.residues, 6);
  EXPECT_THAT(out.tokens, ElementsAre(0, 20, 15, 4, 5, 6, 2));
  // Characters past the cut are still checked.
  s = tokenizer_.Tokenize("MKLAGVJ", LongSequencePolicy::kTruncate, out);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'J' at position 7"));
}

TEST_F(TokenizerTest, WindowsOverlapByHalfAndTheLastEndsWithTheSequence) {
  // Maximum 5: windows start every 2 residues; the last one is moved back to
  // end with the sequence.
  TokenizedSequence out;
  ASSERT_TRUE(
      tokenizer_.Tokenize("MKLAGVW", LongSequencePolicy::kWindow, out).ok());
  EXPECT_FALSE(out.truncated);
  EXPECT_EQ(out.residues, 7);
  EXPECT_THAT(out.tokens, ElementsAre(0, 20, 15, 4, 5, 6, 2));  // MKLAG
  ASSERT_EQ(out.more_windows.size(), 1u);
  EXPECT_THAT(out.more_windows[0], ElementsAre(0, 4, 5, 6, 7, 22, 2));  // LAGVW
  ASSERT_TRUE(
      tokenizer_.Tokenize("MKLAGVWMKLAG", LongSequencePolicy::kWindow, out)
          .ok());
  // Starts 0, 2, 4, 6, and 7 (= 12 - 5).
  ASSERT_EQ(out.more_windows.size(), 4u);
  EXPECT_THAT(out.more_windows[2],
              ElementsAre(0, 22, 20, 15, 4, 5, 2));  // WMKLA
  EXPECT_THAT(out.more_windows[3],
              ElementsAre(0, 20, 15, 4, 5, 6, 2));  // MKLAG
  // A sequence that fits is one window.
  ASSERT_TRUE(
      tokenizer_.Tokenize("MKL", LongSequencePolicy::kWindow, out).ok());
  EXPECT_TRUE(out.more_windows.empty());
}

}  // namespace
}  // namespace argserve
