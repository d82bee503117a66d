#include "client/input.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "argserve/common/residues.h"
#include "client/translate.h"

namespace argserve {
namespace {

// google.rpc.Code INVALID_ARGUMENT.
constexpr int kInvalidArgumentCode = 3;

// Shorter records say too little about what they are.
constexpr size_t kNucleotideCheckMinLength = 30;

bool IsNucleotideLetter(char c) {
  switch (absl::ascii_toupper(static_cast<unsigned char>(c))) {
    case 'A':
    case 'C':
    case 'G':
    case 'T':
    case 'U':
    case 'N':
      return true;
    default:
      return false;
  }
}

std::string Where(const FastaRecord& record) {
  return absl::StrCat(record.source, ":", record.line, ": record '", record.id,
                      "'");
}

// NCBI table 11's initiation codons.
bool IsTable11Start(absl::string_view codon) {
  const absl::string_view starts[] = {"ATG", "GTG", "TTG", "CTG",
                                      "ATT", "ATC", "ATA"};
  return std::any_of(std::begin(starts), std::end(starts),
                     [&](absl::string_view start) { return codon == start; });
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::Status CheckNotNucleotide(const std::vector<FastaRecord>& records) {
  for (const FastaRecord& record : records) {
    if (!record.problem.empty() ||
        record.residues.size() < kNucleotideCheckMinLength)
      continue;
    size_t nucleotide = 0;
    for (char c : record.residues) nucleotide += IsNucleotideLetter(c);
    const double share =
        static_cast<double>(nucleotide) / record.residues.size();
    if (share > kNucleotideShare) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(record), ": looks like nucleotide, not protein (",
          static_cast<int>(share * 100),
          "% A, C, G, T, U, N); use --input cds "
          "for coding sequences or --input contigs for contigs and genomes"));
    }
  }
  return absl::OkStatus();
}

void TranslateCodingSequences(std::vector<FastaRecord>& records) {
  for (FastaRecord& record : records) {
    if (!record.problem.empty()) continue;
    const std::string dna = absl::AsciiStrToUpper(record.residues);
    for (size_t i = 0; i < dna.size(); ++i) {
      if (!IsNucleotideLetter(dna[i])) {
        record.problem = absl::StrCat(
            Where(record), ": '", std::string(1, dna[i]), "' at base ", i + 1,
            " is not a nucleotide (A, C, G, T, U, N); is this --input "
            "protein?");
        break;
      }
    }
    if (!record.problem.empty()) continue;
    if (dna.size() % 3 != 0 || dna.size() < 3) {
      record.problem = absl::StrCat(Where(record), ": ", dna.size(),
                                    " bases, not a whole number of codons");
      continue;
    }
    std::string protein = TranslateTable11(dna);
    if (!protein.empty() && protein.back() == '*') protein.pop_back();
    if (const size_t stop = protein.find('*'); stop != std::string::npos) {
      record.problem = absl::StrCat(
          Where(record), ": internal stop codon at codon ", stop + 1,
          " (bases ", 3 * stop + 1, "-", 3 * stop + 3, ")");
      continue;
    }
    if (protein.empty()) {
      record.problem = absl::StrCat(Where(record), ": only a stop codon");
      continue;
    }
    if (IsTable11Start(absl::string_view(dna).substr(0, 3))) protein[0] = 'M';
    record.residues = std::move(protein);
  }
}

absl::StatusOr<std::vector<FastaRecord>> CallGenes(
    const std::vector<FastaRecord>& contigs, GeneCalling mode,
    const std::string& prodigal) {
  std::vector<FastaRecord> proteins;
  if (contigs.empty()) return proteins;
  std::string pattern =
      (std::filesystem::temp_directory_path() / "argserve-cli-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr)
    return absl::InternalError("cannot make a temporary directory");
  const std::filesystem::path dir(pattern);
  const auto cleanup = [&] {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  };
  {
    std::ofstream out(dir / "contigs.fna");
    for (const FastaRecord& contig : contigs) {
      out << '>' << contig.id << '\n' << contig.residues << '\n';
    }
    if (!out) {
      cleanup();
      return absl::InternalError("cannot write the contigs for Prodigal");
    }
  }
  const std::string command = absl::StrCat(
      prodigal, " -q -p ", mode == GeneCalling::kMeta ? "meta" : "single",
      " -i ", (dir / "contigs.fna").string(), " -a ",
      (dir / "proteins.faa").string(), " -o /dev/null 2> ",
      (dir / "stderr.txt").string());
  // The CLI's only child process, started from its main thread.
  const int status =
      std::system(command.c_str());  // NOLINT(concurrency-mt-unsafe)
  if (status != 0) {
    std::string complaint(
        absl::StripAsciiWhitespace(ReadAll(dir / "stderr.txt")));
    cleanup();
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
      return absl::FailedPreconditionError(
          absl::StrCat("--input contigs needs Prodigal ('", prodigal,
                       "' not found; Debian package prodigal)"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "Prodigal failed on the contigs: ",
        complaint.empty() ? "no message" : complaint,
        mode == GeneCalling::kSingle ? " (short inputs: --gene-calling meta)"
                                     : ""));
  }
  const std::string faa = ReadAll(dir / "proteins.faa");
  cleanup();
  if (absl::Status parsed = ParseFasta(faa, "prodigal", proteins);
      !parsed.ok()) {
    return absl::InternalError(
        absl::StrCat("unexpected Prodigal output: ", parsed.message()));
  }
  for (FastaRecord& protein : proteins) {
    // Prodigal's description: "# START # END # STRAND # ID=...;partial=..".
    GeneLocation gene;
    const size_t underscore = protein.id.rfind('_');
    std::vector<absl::string_view> fields = absl::StrSplit(
        absl::StripPrefix(absl::StripAsciiWhitespace(protein.description), "#"),
        '#');
    if (fields.size() < 3 ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(fields[0]), &gene.start) ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(fields[1]), &gene.end) ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(fields[2]),
                          &gene.strand) ||
        underscore == std::string::npos) {
      return absl::InternalError(
          absl::StrCat("unexpected Prodigal header for '", protein.id, "': '",
                       protein.description, "'"));
    }
    gene.contig = protein.id.substr(0, underscore);
    protein.gene = std::move(gene);
    protein.source = "prodigal";
  }
  return proteins;
}

void CheckAgainstModel(std::vector<FastaRecord>& records,
                       const v1::ModelInfo& info, bool reject_long) {
  const ResidueAlphabet model_residues(
      info.residues().empty() ? "ACDEFGHIKLMNPQRSTVWYXBUZO" : info.residues());
  for (FastaRecord& record : records) {
    if (!record.problem.empty()) continue;
    if (absl::Status status = CheckResidues(record, model_residues);
        !status.ok()) {
      record.problem = std::string{status.message()};
    } else if (reject_long && info.max_residues() > 0 &&
               record.residues.size() > info.max_residues()) {
      record.problem = absl::StrCat(
          Where(record), ": ", record.residues.size(),
          " residues, more than the model's maximum of ", info.max_residues(),
          " (--long-sequences truncate classifies the first ",
          info.max_residues(), ")");
    }
  }
}

InputReader::InputReader(InputSpec spec) : spec_(std::move(spec)) {}

absl::Status InputReader::ReadRaw(size_t chunk_records,
                                  std::vector<FastaRecord>& raw) {
  if (!seqs_read_) {
    seqs_read_ = true;
    for (size_t i = 0; i < spec_.seqs.size(); ++i) {
      const std::string& seq = spec_.seqs[i];
      const size_t eq = seq.find('=');
      const std::string text =
          eq == std::string::npos ? absl::StrCat(">seq", i + 1, "\n", seq, "\n")
                                  : absl::StrCat(">", seq.substr(0, eq), "\n",
                                                 seq.substr(eq + 1), "\n");
      if (absl::Status status =
              ParseFasta(text, absl::StrCat("--seq #", i + 1), raw,
                         ResidueAlphabet::AnyLetter(), spec_.bad_records);
          !status.ok())
        return status;
    }
    if (!raw.empty()) return absl::OkStatus();
  }
  std::vector<std::string> files = spec_.files;
  if (files.empty() && spec_.seqs.empty()) files.emplace_back("-");
  while (next_file_ < files.size()) {
    if (reader_ == nullptr) {
      auto opened = FastaReader::Open(
          files[next_file_], ResidueAlphabet::AnyLetter(), spec_.bad_records);
      if (!opened.ok()) return opened.status();
      reader_ = *std::move(opened);
    }
    if (absl::Status status = reader_->Next(chunk_records, raw); !status.ok())
      return status;
    if (!reader_->done()) return absl::OkStatus();
    reader_.reset();
    ++next_file_;
    if (chunk_records != 0 && raw.size() >= chunk_records)
      return absl::OkStatus();
  }
  done_ = true;
  return absl::OkStatus();
}

absl::Status InputReader::Prepare(std::vector<FastaRecord>& chunk) {
  for (const FastaRecord& record : chunk) {
    if (sources_.empty() || sources_.back() != record.source)
      sources_.push_back(record.source);
    const uint64_t here = (static_cast<uint64_t>(sources_.size() - 1) << 32) |
                          static_cast<uint32_t>(record.line);
    auto [it, inserted] =
        seen_.emplace(std::hash<std::string>()(record.id), here);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          record.source, ":", record.line, ": duplicate id '", record.id,
          "' (first seen at ", sources_[it->second >> 32], ":",
          static_cast<uint32_t>(it->second), ")"));
    }
  }
  switch (spec_.type) {
    case InputType::kProtein:
      return CheckNotNucleotide(chunk);
    case InputType::kCds:
      TranslateCodingSequences(chunk);
      return absl::OkStatus();
    case InputType::kContigs: {
      std::vector<FastaRecord> contigs;
      std::vector<FastaRecord> failed;
      for (FastaRecord& record : chunk)
        (record.problem.empty() ? contigs : failed)
            .push_back(std::move(record));
      auto genes = CallGenes(contigs, spec_.gene_calling);
      if (!genes.ok()) return genes.status();
      chunk = std::move(failed);
      for (FastaRecord& gene : *genes) chunk.push_back(std::move(gene));
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::Status InputReader::Next(size_t chunk_records,
                               std::vector<FastaRecord>& chunk) {
  // Prodigal's single-genome mode trains on the whole genome at once.
  if (spec_.type == InputType::kContigs &&
      spec_.gene_calling == GeneCalling::kSingle)
    chunk_records = 0;
  std::vector<FastaRecord> raw;
  if (absl::Status status = ReadRaw(chunk_records, raw); !status.ok())
    return status;
  if (absl::Status status = Prepare(raw); !status.ok()) return status;
  for (FastaRecord& record : raw) chunk.push_back(std::move(record));
  return absl::OkStatus();
}

v1::Prediction RecordFailure(const FastaRecord& record) {
  v1::Prediction prediction;
  prediction.set_id(record.id);
  prediction.set_length(static_cast<uint32_t>(record.residues.size()));
  prediction.mutable_status()->set_code(kInvalidArgumentCode);
  prediction.mutable_status()->set_message(record.problem);
  return prediction;
}

}  // namespace argserve
