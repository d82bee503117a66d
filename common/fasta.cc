#include "argserve/common/fasta.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "argserve/common/describe.h"

namespace argserve {
namespace {

// Length of the valid UTF-8 sequence at the start of `text`, or 0 when it is
// not valid UTF-8.
size_t Utf8Length(std::string_view text) {
  const auto lead = static_cast<unsigned char>(text[0]);
  size_t length = 0;
  if (lead < 0x80) return 1;
  if ((lead & 0xe0) == 0xc0 && lead >= 0xc2)
    length = 2;
  else if ((lead & 0xf0) == 0xe0)
    length = 3;
  else if ((lead & 0xf8) == 0xf0 && lead <= 0xf4)
    length = 4;
  if (length == 0 || text.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) return 0;
  }
  return length;
}

class Parser {
 public:
  Parser(std::string source, std::vector<FastaRecord>& records,
         const ResidueAlphabet& alphabet, BadRecords bad_records)
      : source_(std::move(source)),
        records_(records),
        alphabet_(alphabet),
        keep_bad_(bad_records == BadRecords::kKeep) {}

  absl::Status Line(std::string_view line) {
    ++line_number_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    for (char c : line) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte == 0 || (byte < 0x20 && byte != '\t') || byte == 0x7f) {
        return Error(absl::StrCat("binary data (byte ", DescribeByte(byte),
                                  "); is this a FASTA file?"));
      }
    }
    if (line.empty()) return absl::OkStatus();
    if (line.front() == '>') {
      if (auto status = EndRecord(); !status.ok()) return status;
      std::string_view header = line.substr(1);
      const size_t start = header.find_first_not_of(" \t");
      header = start == std::string_view::npos ? std::string_view()
                                               : header.substr(start);
      const size_t end = header.find_first_of(" \t");
      FastaRecord record;
      record.id = std::string(header.substr(0, end));
      if (end != std::string_view::npos) {
        std::string_view rest = header.substr(end);
        const size_t text = rest.find_first_not_of(" \t");
        if (text != std::string_view::npos)
          record.description = std::string(rest.substr(text));
      }
      record.source = source_;
      record.line = line_number_;
      if (record.id.empty()) return Error("header has no id after '>'");
      // gRPC carries ids as protobuf strings, which must be UTF-8.
      for (size_t i = 0; i < record.id.size();) {
        const size_t n = Utf8Length(std::string_view{record.id}.substr(i));
        if (n == 0) {
          return Error(absl::StrCat(
              "id is not valid UTF-8 (byte ",
              DescribeByte(static_cast<unsigned char>(record.id[i])),
              " at column ", i + 2, ")"));
        }
        i += n;
      }
      current_ = std::move(record);
      in_record_ = true;
      return absl::OkStatus();
    }
    if (line.front() == ';')
      return absl::OkStatus();  // Old-style FASTA comment.
    if (!in_record_)
      return Error(
          "sequence data before the first '>' header; is this a FASTA file?");
    bool first_on_line = true;
    for (size_t i = 0; i < line.size(); ++i) {
      const auto byte = static_cast<unsigned char>(line[i]);
      if (byte == ' ' || byte == '\t') continue;
      // Whether a '*' is final is known only at the record's end.
      if (byte != '*' && !alphabet_.Accepts(byte)) {
        const std::string what = absl::StrCat(
            "record '", current_.id, "': invalid character ",
            DescribeByte(byte), " at residue ", current_.residues.size() + 1,
            " (column ", i + 1, "); allowed: ", alphabet_.Allowed(),
            " and a final '*'");
        if (!keep_bad_) return Error(what);
        if (current_.problem.empty())
          current_.problem =
              absl::StrCat(source_, ":", line_number_, ": ", what);
      }
      if (first_on_line) {
        line_starts_.push_back({current_.residues.size(), line_number_});
        first_on_line = false;
      }
      current_.residues.push_back(static_cast<char>(byte));
    }
    return absl::OkStatus();
  }

  absl::Status Finish() { return EndRecord(); }

 private:
  absl::Status EndRecord() {
    if (!in_record_) return absl::OkStatus();
    in_record_ = false;
    std::string_view residues = current_.residues;
    if (auto problem = current_.problem.empty()
                           ? alphabet_.Check(residues)
                           : std::optional<ResidueProblem>()) {
      absl::Status error =
          problem->kind == ResidueProblem::Kind::kEmpty
              ? ErrorAt(current_.line, absl::StrCat("record '", current_.id,
                                                    "' has no sequence"))
              : ErrorAt(LineOf(problem->index),
                        absl::StrCat("record '", current_.id,
                                     "': ", problem->What(), " at residue ",
                                     problem->index + 1));
      if (!keep_bad_) return error;
      current_.problem = std::string(error.message());
    }
    if (current_.problem.empty()) current_.residues.resize(residues.size());
    records_.push_back(std::move(current_));
    current_ = FastaRecord();
    line_starts_.clear();
    return absl::OkStatus();
  }

  // The line that holds residue `index` of the current record.
  int LineOf(size_t index) const {
    int line = current_.line;
    for (const LineStart& start : line_starts_) {
      if (start.first_residue > index) break;
      line = start.line;
    }
    return line;
  }

  absl::Status Error(const std::string& what) const {
    return ErrorAt(line_number_, what);
  }
  absl::Status ErrorAt(int line, const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ":", line, ": ", what));
  }

  struct LineStart {
    size_t first_residue = 0;
    int line = 0;
  };

  const std::string source_;
  std::vector<FastaRecord>& records_;
  const ResidueAlphabet& alphabet_;
  const bool keep_bad_;
  FastaRecord current_;
  std::vector<LineStart> line_starts_;  // Lines of current_ holding residues.
  bool in_record_ = false;
  int line_number_ = 0;
};

}  // namespace

absl::Status ParseFasta(const std::string& text, const std::string& source,
                        std::vector<FastaRecord>& records,
                        const ResidueAlphabet& alphabet,
                        BadRecords bad_records) {
  Parser parser(source, records, alphabet, bad_records);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (auto status =
            parser.Line(std::string_view{text}.substr(start, end - start));
        !status.ok())
      return status;
    start = end + 1;
  }
  return parser.Finish();
}

struct FastaReader::State {
  State(std::string source_name, gzFile gz, const ResidueAlphabet& letters,
        BadRecords bad_records)
      : source(std::move(source_name)),
        file(gz),
        alphabet(letters),
        parser(source, parsed, alphabet, bad_records) {}
  ~State() {
    if (file != nullptr) gzclose(file);
  }
  std::string source;
  gzFile file;
  std::vector<FastaRecord> parsed;  // Complete records not yet handed out.
  const ResidueAlphabet alphabet;   // The parser's: a caller's may not live on.
  Parser parser;
  std::string pending;  // Bytes after the last newline read.
  bool eof = false;
  bool finished = false;
};

FastaReader::FastaReader(std::unique_ptr<State> state)
    : state_(std::move(state)) {}
FastaReader::~FastaReader() = default;

absl::StatusOr<std::unique_ptr<FastaReader>> FastaReader::Open(
    const std::string& path, const ResidueAlphabet& alphabet,
    BadRecords bad_records) {
  const bool is_stdin = path == "-";
  const std::string source = is_stdin ? "<stdin>" : path;
  gzFile file = is_stdin ? gzdopen(dup(0), "rb") : gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        source, ": cannot open: ", std::generic_category().message(errno)));
  }
  gzbuffer(file, 1 << 17);
  return std::unique_ptr<FastaReader>(new FastaReader(
      std::make_unique<State>(source, file, alphabet, bad_records)));
}

bool FastaReader::done() const {
  return state_->finished && state_->parsed.empty();
}

absl::Status FastaReader::Next(size_t max_records,
                               std::vector<FastaRecord>& records) {
  State& s = *state_;
  std::array<char, 1 << 16> buffer;
  const auto want = [&] {
    return max_records == 0 || s.parsed.size() < max_records;
  };
  while (want() && !s.finished) {
    if (s.eof) {
      if (!s.pending.empty()) {
        if (auto status = s.parser.Line(s.pending); !status.ok()) return status;
        s.pending.clear();
      }
      if (auto status = s.parser.Finish(); !status.ok()) return status;
      s.finished = true;
      break;
    }
    const int n = gzread(s.file, buffer.data(), buffer.size());
    if (n < 0) {
      int code = 0;
      return absl::InvalidArgumentError(
          absl::StrCat(s.source, ": cannot read: ", gzerror(s.file, &code)));
    }
    if (n == 0) {
      s.eof = true;
      continue;
    }
    s.pending.append(buffer.data(), n);
    size_t start = 0;
    for (size_t end; (end = s.pending.find('\n', start)) != std::string::npos;
         start = end + 1) {
      if (auto status = s.parser.Line(
              std::string_view{s.pending}.substr(start, end - start));
          !status.ok())
        return status;
    }
    s.pending.erase(0, start);
  }
  const size_t take = max_records == 0 ? s.parsed.size()
                                       : std::min(max_records, s.parsed.size());
  for (size_t i = 0; i < take; ++i) records.push_back(std::move(s.parsed[i]));
  s.parsed.erase(s.parsed.begin(), s.parsed.begin() + take);
  return absl::OkStatus();
}

absl::Status ReadFasta(const std::string& path,
                       std::vector<FastaRecord>& records,
                       const ResidueAlphabet& alphabet,
                       BadRecords bad_records) {
  auto reader = FastaReader::Open(path, alphabet, bad_records);
  if (!reader.ok()) return reader.status();
  return (*reader)->Next(0, records);
}

absl::Status CheckResidues(const FastaRecord& record,
                           const ResidueAlphabet& alphabet) {
  std::string_view residues = record.residues;
  auto problem = alphabet.Check(residues);
  if (!problem) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      record.source, ":", record.line, ": record '", record.id,
      "': ", problem->What(), " at residue ", problem->index + 1,
      "; the model accepts ", alphabet.Allowed(), " and a final '*'"));
}

absl::Status CheckUniqueIds(const std::vector<FastaRecord>& records) {
  std::unordered_map<std::string_view, const FastaRecord*> seen;
  seen.reserve(records.size());
  for (const FastaRecord& record : records) {
    auto [it, inserted] = seen.emplace(record.id, &record);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          record.source, ":", record.line, ": duplicate id '", record.id,
          "' (first seen at ", it->second->source, ":", it->second->line, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace argserve
