#include "client/options.h"

#include <CLI/CLI.hpp>
#include <cctype>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace argserve {
namespace {

constexpr char kDescription[] =
    "argserve-cli: classify protein sequences with an argserve server.\n\n"
    "  argserve-cli classify [options] [FASTA ...]   FASTA files, plain or "
    ".gz; '-' or none: stdin\n"
    "  argserve-cli classify [options] --seq ID=RESIDUES [--seq ...]\n"
    "  argserve-cli info [--format text|json]\n"
    "  argserve-cli health [--service NAME]\n";

constexpr char kExitCodes[] =
    "Exit codes: 0 success; 1 other failure (e.g. health not SERVING); 2 usage "
    "error;\n3 bad input (malformed FASTA, reported with file, line and "
    "record); 4 server unavailable;\n5 the server refused or failed the "
    "request;\n6 some records could not be classified (each has its status "
    "in the output; the rest were).\n";

int ParseInt(const std::string& flag, const std::string& value, int min) {
  int result = 0;
  if (!absl::SimpleAtoi(value, &result) || result < min) {
    throw UsageError{absl::StrCat(flag, " needs a whole number >= ", min,
                                  ", not '", value, "'")};
  }
  return result;
}

double ParseDouble(const std::string& flag, const std::string& value,
                   double min, double max) {
  double result = 0;
  if (!absl::SimpleAtod(value, &result) || result < min || result > max) {
    throw UsageError{absl::StrCat(flag, " needs a number in [", min, ", ", max,
                                  "], not '", value, "'")};
  }
  return result;
}

// Values exactly as typed; converted and checked below, with messages that
// name the flag and the allowed range.
struct RawValues {
  std::string deadline, top_k, min_probability, batch_size, concurrency,
      retries, classify_format = "tsv", info_format = "text", token_file,
               input = "protein", gene_calling = "meta", long_sequences;
};

// CLI11's messages, in the words of this tool.
UsageError Translate(const CLI::ParseError& error) {
  const std::string what = error.what();
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&error) != nullptr) {
    return UsageError{
        absl::StrCat(what.substr(0, what.find(':')), " needs a value")};
  }
  return UsageError{what};
}

void CheckNoExtras(const CLI::App& app, const std::string& name) {
  for (const std::string& extra : app.remaining()) {
    if (!extra.empty() && extra[0] == '-')
      throw UsageError{absl::StrCat("unknown option '", extra, "'")};
    throw UsageError{absl::StrCat("'", name, "' takes no file arguments")};
  }
}

}  // namespace

std::string ReadFileOrThrow(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError{absl::StrCat("cannot read '", path, "'")};
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

ClientOptions ParseClientOptions(int argc, const char* const* argv,
                                 const char* env_target) {
  ClientOptions o;
  ConnectionOptions& c = o.connection;
  c.target = env_target != nullptr && *env_target != '\0' ? env_target
                                                          : "127.0.0.1:50051";
  RawValues raw;
  CLI::App app(kDescription, "argserve-cli");
  app.footer(kExitCodes);
  app.fallthrough();  // Connection options also after the subcommand.
  app.allow_extras();
  app.option_defaults()->always_capture_default();
  app.add_option("--target", c.target,
                 "server address in gRPC target syntax: host:port, "
                 "dns:///host:port (all addresses of the name), "
                 "ipv4:1.2.3.4:50051,1.2.3.5:50051 (several servers); calls "
                 "are spread round-robin. Default $ARGSERVE_TARGET or "
                 "127.0.0.1:50051");
  app.add_option("--tls-ca", c.tls_ca,
                 "use TLS, trusting this CA certificate (PEM)");
  app.add_option("--tls-cert", c.tls_cert,
                 "client certificate for mutual TLS (with --tls-key)");
  app.add_option("--tls-key", c.tls_key, "client private key for mutual TLS");
  app.add_option("--token-file", raw.token_file,
                 "send the bearer token in FILE (servers run with "
                 "--auth_token_file)");
  app.add_option("--deadline", raw.deadline,
                 "deadline of each call in seconds (default 300)");
  app.add_option("--retries", raw.retries,
                 "retries of a call refused with UNAVAILABLE or "
                 "RESOURCE_EXHAUSTED, with exponential backoff (default 5; "
                 "unary calls: at most 4, gRPC's limit)");

  CLI::App* classify = app.add_subcommand("classify", "classify sequences");
  classify->allow_extras();
  classify->add_option("files", o.inputs, "FASTA files ('-': stdin)");
  classify->add_option("--seq", o.seqs, "a sequence, ID=RESIDUES or RESIDUES");
  classify->add_option("-o,--output", o.output,
                       "write results here (to a temporary file, renamed "
                       "when complete)");
  classify->add_option("--format", raw.classify_format,
                       "tsv (default; with a header line), jsonl (one JSON "
                       "object per line), json, or hamronization (the "
                       "hAMRonization TSV: one row per ARG)");
  classify->add_option("--top-k", raw.top_k,
                       "classes listed per sequence, most probable first "
                       "(default 3; 0 = all)");
  classify->add_option("--min-probability", raw.min_probability,
                       "mark predictions below P as uncertain (default 0)");
  classify->add_option("--batch-size", raw.batch_size,
                       "sequences per request (default 64)");
  classify->add_option("--concurrency", raw.concurrency,
                       "requests in flight (default 4); output stays in "
                       "input order");
  classify->add_option("--input", raw.input,
                       "protein (default), cds (nucleotide coding sequences, "
                       "translated with NCBI table 11) or contigs (genes "
                       "called with Prodigal)");
  classify->add_option("--gene-calling", raw.gene_calling,
                       "with --input contigs: meta (default; metagenomes, "
                       "any input size) or single (one genome of at least "
                       "20 kb, Prodigal trained on it)");
  classify->add_option("--long-sequences", raw.long_sequences,
                       "proteins longer than the model's maximum: reject "
                       "(reported per record), truncate (the first "
                       "residues, flagged) or window (overlapping windows, "
                       "the one with the highest P(ARG) answers); default: "
                       "the server's policy");
  classify->add_flag("--resume", o.resume,
                     "continue an interrupted -o run: records already in "
                     "OUTPUT.partial are kept, not classified again (tsv and "
                     "jsonl, not .gz)");
  classify->add_flag("--strict", o.strict,
                     "stop at the first record that cannot be classified "
                     "(default: report it in the output and go on)");
  classify->add_flag("--stream", o.stream,
                     "use one bidirectional stream instead of unary calls");
  classify->add_flag("-q,--quiet", o.quiet,
                     "no progress bar (it is shown only when stderr is a "
                     "terminal)");

  bool version = false;
  app.add_flag("--version", version, "print the version and exit");

  CLI::App* info = app.add_subcommand("info", "describe the server's model");
  info->allow_extras();
  info->add_option("--format", raw.info_format, "text (default) or json");

  CLI::App* health = app.add_subcommand("health", "the server's health");
  health->allow_extras();
  health->add_option("--service", o.service,
                     "service to check (default: the whole server)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    o.command = Command::kHelp;
    o.help = app.help();
    return o;
  } catch (const CLI::CallForAllHelp&) {
    o.command = Command::kHelp;
    o.help = app.help();
    return o;
  } catch (const CLI::ParseError& error) {
    throw Translate(error);
  }

  if (version) {
    o.command = Command::kVersion;
    return o;
  }
  std::string command;
  if (classify->parsed()) {
    o.command = Command::kClassify;
    command = "classify";
  } else if (info->parsed()) {
    o.command = Command::kInfo;
    command = "info";
  } else if (health->parsed()) {
    o.command = Command::kHealth;
    command = "health";
  } else {
    for (const std::string& extra : app.remaining()) {
      if (!extra.empty() && extra[0] == '-')
        throw UsageError{absl::StrCat("unknown option '", extra, "'")};
      throw UsageError{absl::StrCat("unknown subcommand '", extra,
                                    "' (classify, info or health)")};
    }
    throw UsageError{"missing subcommand (classify, info or health)"};
  }
  CheckNoExtras(app, command);
  for (const CLI::App* sub : {classify, info, health})
    if (sub->parsed()) CheckNoExtras(*sub, command);

  if (!raw.deadline.empty())
    c.deadline_seconds = ParseDouble("--deadline", raw.deadline, 0.001, 1e7);
  if (!raw.retries.empty()) c.retries = ParseInt("--retries", raw.retries, 0);
  if (!raw.token_file.empty()) {
    std::string token = ReadFileOrThrow(raw.token_file);
    while (!token.empty() &&
           std::isspace(static_cast<unsigned char>(token.back())))
      token.pop_back();
    if (token.empty()) throw UsageError{"--token-file is empty"};
    c.token = token;
  }
  if (c.tls_cert.empty() != c.tls_key.empty())
    throw UsageError{"--tls-cert and --tls-key go together"};
  if (!c.tls_cert.empty() && c.tls_ca.empty())
    throw UsageError{"--tls-cert/--tls-key need --tls-ca"};

  if (!raw.top_k.empty()) o.top_k = ParseInt("--top-k", raw.top_k, 0);
  if (!raw.min_probability.empty()) {
    o.output_options.min_probability =
        ParseDouble("--min-probability", raw.min_probability, 0, 1);
  }
  if (!raw.batch_size.empty())
    o.batch_size = ParseInt("--batch-size", raw.batch_size, 1);
  if (!raw.concurrency.empty())
    o.concurrency = ParseInt("--concurrency", raw.concurrency, 1);
  if (raw.classify_format == "tsv") {
    o.output_options.format = OutputFormat::kTsv;
  } else if (raw.classify_format == "jsonl") {
    o.output_options.format = OutputFormat::kJsonLines;
  } else if (raw.classify_format == "json") {
    o.output_options.format = OutputFormat::kJson;
  } else if (raw.classify_format == "hamronization") {
    o.output_options.format = OutputFormat::kHamronization;
  } else {
    throw UsageError{absl::StrCat(
        "--format must be tsv, jsonl, json or hamronization, not '",
        raw.classify_format, "'")};
  }
  if (raw.info_format != "text" && raw.info_format != "json") {
    throw UsageError{absl::StrCat("--format must be text or json, not '",
                                  raw.info_format, "'")};
  }
  o.info_json = raw.info_format == "json";
  if (raw.input == "protein") {
    o.input = InputType::kProtein;
  } else if (raw.input == "cds") {
    o.input = InputType::kCds;
  } else if (raw.input == "contigs") {
    o.input = InputType::kContigs;
  } else {
    throw UsageError{absl::StrCat(
        "--input must be protein, cds or contigs, not '", raw.input, "'")};
  }
  if (o.resume) {
    if (o.output.empty() || o.output == "-")
      throw UsageError{"--resume needs -o FILE (the run to continue)"};
    if (o.output.size() > 3 && o.output.substr(o.output.size() - 3) == ".gz")
      throw UsageError{"--resume cannot continue a .gz output"};
    if (o.output_options.format != OutputFormat::kTsv &&
        o.output_options.format != OutputFormat::kJsonLines)
      throw UsageError{"--resume works with --format tsv or jsonl"};
  }
  if (raw.gene_calling == "meta" || raw.gene_calling == "single") {
    o.gene_calling =
        raw.gene_calling == "meta" ? GeneCalling::kMeta : GeneCalling::kSingle;
  } else {
    throw UsageError{absl::StrCat(
        "--gene-calling must be meta or single, not '", raw.gene_calling, "'")};
  }
  if (raw.long_sequences == "reject") {
    o.long_sequences = LongSequences::kReject;
  } else if (raw.long_sequences == "truncate") {
    o.long_sequences = LongSequences::kTruncate;
  } else if (raw.long_sequences == "window") {
    o.long_sequences = LongSequences::kWindow;
  } else if (!raw.long_sequences.empty()) {
    throw UsageError{absl::StrCat(
        "--long-sequences must be reject, truncate or window, not '",
        raw.long_sequences, "'")};
  }
  return o;
}

}  // namespace argserve
