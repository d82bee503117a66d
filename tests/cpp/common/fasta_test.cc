#include "argserve/common/fasta.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace argserve {
namespace {

using ::testing::HasSubstr;

std::string ParseError(const std::string& text) {
  std::vector<FastaRecord> records;
  absl::Status status = ParseFasta(text, "in.fa", records);
  EXPECT_FALSE(status.ok()) << text;
  return std::string{status.message()};
}

TEST(Fasta, ReadsRecordsAcrossLinesAndFormats) {
  std::vector<FastaRecord> records;
  ASSERT_TRUE(ParseFasta(">a first protein\nMKL\nav\r\n\n>b\nMS TT*\n", "in.fa",
                         records)
                  .ok());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].id, "a");
  EXPECT_EQ(records[0].description, "first protein");
  EXPECT_EQ(records[0].residues, "MKLav");
  EXPECT_EQ(records[0].line, 1);
  EXPECT_EQ(records[1].id, "b");
  EXPECT_EQ(records[1].residues,
            "MSTT");  // Spaces and the final '*' are dropped.
  EXPECT_EQ(records[1].line, 5);
}

TEST(Fasta, ErrorsNameFileLineAndRecord) {
  EXPECT_THAT(ParseError("MKL\n>a\nMK\n"),
              HasSubstr("in.fa:1: sequence data before the first '>' header"));
  EXPECT_THAT(ParseError(">a\nMK\n>b\n>c\nMK\n"),
              HasSubstr("in.fa:3: record 'b' has no sequence"));
  EXPECT_THAT(ParseError(">a\nMK\n>b\n"),
              HasSubstr("in.fa:3: record 'b' has no sequence"));
  EXPECT_THAT(ParseError(">a\nMKL\nMK1L\n"),
              HasSubstr("in.fa:3: record 'a': invalid character '1' at residue "
                        "6 (column 3)"));
  EXPECT_THAT(
      ParseError(">a\nMK*L\n"),
      HasSubstr("in.fa:2: record 'a': internal stop codon '*' at residue 3"));
  EXPECT_THAT(
      ParseError(">a\nMK*\nL\n"),
      HasSubstr("in.fa:2: record 'a': internal stop codon '*' at residue 3"));
  EXPECT_THAT(ParseError(">\nMK\n"), HasSubstr("in.fa:1: header has no id"));
  EXPECT_THAT(
      ParseError(">ok\nMK\n>b\xff\xfe\nMK\n"),
      HasSubstr("in.fa:3: id is not valid UTF-8 (byte \\xff at column 3)"));
  EXPECT_THAT(ParseError(std::string(">a\nMK\x00\x01garbage\n", 14)),
              HasSubstr("in.fa:2: binary data (byte \\x00)"));
}

TEST(Fasta, DuplicateIdsNameBothPlaces) {
  std::vector<FastaRecord> records;
  ASSERT_TRUE(ParseFasta(">a\nMK\n>b\nMK\n>a\nML\n", "in.fa", records).ok());
  absl::Status status = CheckUniqueIds(records);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("in.fa:5: duplicate id 'a' (first seen at in.fa:1)"));
}

TEST(Fasta, ReadsGzipAndPlainFiles) {
  const std::string dir = ::testing::TempDir();
  const std::string plain = dir + "/plain.fa";
  const std::string gz = dir + "/packed.fa.gz";
  const std::string text = ">x\nMKLV\n>y\nMSSS\n";
  std::ofstream(plain) << text;
  gzFile file = gzopen(gz.c_str(), "wb");
  gzwrite(file, text.data(), text.size());
  gzclose(file);
  std::vector<FastaRecord> from_plain;
  std::vector<FastaRecord> from_gz;
  ASSERT_TRUE(ReadFasta(plain, from_plain).ok());
  ASSERT_TRUE(ReadFasta(gz, from_gz).ok());
  ASSERT_EQ(from_gz.size(), 2u);
  EXPECT_EQ(from_gz[1].residues, from_plain[1].residues);
  EXPECT_EQ(from_gz[0].source, gz);
}

TEST(Fasta, MissingAndEmptyFiles) {
  std::vector<FastaRecord> records;
  absl::Status missing = ReadFasta("/nonexistent/x.fa", records);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()),
              HasSubstr("/nonexistent/x.fa: cannot open"));
  const std::string empty = ::testing::TempDir() + "/empty.fa";
  std::ofstream(empty).flush();
  records.clear();
  EXPECT_TRUE(ReadFasta(empty, records).ok());
  EXPECT_TRUE(records.empty());
}

TEST(Fasta, KeptBadRecordsCarryTheirProblemAndTheRestIsRead) {
  std::vector<FastaRecord> records;
  const std::string text =
      ">good\nMKV\n>digit\nMK\nV1L\n>stop\nMK*VL\n>empty\n>last\nMSTN*\n";
  ASSERT_TRUE(ParseFasta(text, "in.fa", records, ResidueAlphabet::AnyLetter(),
                         BadRecords::kKeep)
                  .ok());
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[0].problem, "");
  EXPECT_EQ(records[0].residues, "MKV");
  EXPECT_THAT(records[1].problem,
              HasSubstr("in.fa:5: record 'digit': invalid character '1' at "
                        "residue 4"));
  EXPECT_THAT(records[2].problem, HasSubstr("in.fa:7: record 'stop': "));
  EXPECT_THAT(records[2].problem, HasSubstr("residue 3"));
  EXPECT_THAT(records[3].problem,
              HasSubstr("in.fa:8: record 'empty' has no sequence"));
  EXPECT_EQ(records[4].problem, "");
  EXPECT_EQ(records[4].residues, "MSTN");
  // Failing is still the default.
  std::vector<FastaRecord> strict;
  EXPECT_FALSE(ParseFasta(text, "in.fa", strict).ok());
}

}  // namespace
}  // namespace argserve

namespace argserve {
namespace {

TEST(FastaReader, HandsOutRecordsAFewAtATimeAsReadFastaWould) {
  const std::string path = ::testing::TempDir() + "/many.fa.gz";
  std::string text;
  for (int i = 0; i < 1000; ++i)
    absl::StrAppend(&text, ">r", i, " d\nMKV\nLL", i % 7 == 0 ? "*" : "", "\n");
  gzFile gz = gzopen(path.c_str(), "wb");
  gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
  gzclose(gz);
  std::vector<FastaRecord> all;
  ASSERT_TRUE(ReadFasta(path, all).ok());
  auto reader = FastaReader::Open(path);
  ASSERT_TRUE(reader.ok());
  std::vector<FastaRecord> chunked;
  int calls = 0;
  while (!(*reader)->done()) {
    const size_t before = chunked.size();
    ASSERT_TRUE((*reader)->Next(64, chunked).ok());
    EXPECT_LE(chunked.size() - before, 64u);
    ++calls;
  }
  EXPECT_GE(calls, 16);
  ASSERT_EQ(chunked.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(chunked[i].id, all[i].id);
    EXPECT_EQ(chunked[i].residues, all[i].residues);
    EXPECT_EQ(chunked[i].line, all[i].line);
  }
}

TEST(FastaReader, ErrorsNameTheLineAsReadFastaDoes) {
  const std::string path = ::testing::TempDir() + "/bad.fa";
  std::ofstream(path) << ">a\nMK\n>b\nM1K\n";
  auto reader = FastaReader::Open(path);
  ASSERT_TRUE(reader.ok());
  std::vector<FastaRecord> records;
  absl::Status status = (*reader)->Next(0, records);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("bad.fa:4: record 'b': invalid character '1'"));
  EXPECT_EQ(FastaReader::Open("/nonexistent/x.fa").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace argserve
