// argserve-evidence: the nearest reference of every protein of a FASTA file,
// as the server finds it, for evaluation and benchmarks. One TSV row per
// protein that has a hit; when that is a known non-ARG, the row also names the
// nearest ARG reference (columns arg_*, else empty).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "argserve/common/fasta.h"
#include "argserve/evidence/nearest_reference.h"

namespace {

struct Row {
  std::string text;
};

constexpr int kHitColumns = 10;

// A hit's columns from the reference id on, each followed by a tab.
std::string HitFields(const argserve::NearestReferenceFinder& finder,
                      const argserve::ReferenceHit& hit) {
  const argserve::Reference& reference = finder.reference(hit);
  return absl::StrFormat("%s\t%s\t%s\t%s\t%.4f\t%.4f\t%.4f\t%d\t%.1f\t%.3g\t",
                         reference.id, reference.gene, reference.accession,
                         reference.class_name, hit.identity, hit.query_coverage,
                         hit.reference_coverage, hit.score, hit.bits,
                         hit.evalue);
}

int Run(int argc, char** argv) {
  std::string references_path;
  std::string fasta_path;
  int threads = 1;
  argserve::NearestReferenceOptions options;
  CLI::App app(
      "Finds the nearest reference of every protein in a FASTA file, as the "
      "argserve server does, and writes them as TSV to standard output.",
      "argserve-evidence");
  app.add_option("--references", references_path,
                 "reference table (references.tsv of a model artifact)")
      ->required();
  app.add_option("--fasta", fasta_path, "protein FASTA ('-': standard input)")
      ->required();
  app.add_option("--threads", threads, "worker threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--candidates", options.candidates,
                 "references aligned per protein, by shared 3-mers; 0 aligns "
                 "all of them")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--arg-candidates", options.arg_candidates,
                 "of those, at least this many ARG references (not of "
                 "--nonarg-class) when that many share seeds")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-evalue", options.max_evalue,
                 "largest E-value that counts as a hit")
      ->capture_default_str();
  options.nonarg_class = "nonarg";
  app.add_option("--nonarg-class", options.nonarg_class,
                 "class of the known non-ARG references; when one is nearest, "
                 "the nearest ARG reference is reported too ('' : never)")
      ->capture_default_str();
  app.set_version_flag("--version",
                       std::string("argserve-evidence ") + ARGSERVE_VERSION);
  CLI11_PARSE(app, argc, argv);

  std::ifstream in(references_path, std::ios::binary);
  if (!in) {
    std::cerr << "argserve-evidence: cannot read " << references_path << "\n";
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto references = argserve::ParseReferenceTable(text.str(), references_path);
  if (!references.ok()) {
    std::cerr << "argserve-evidence: " << references.status().message() << "\n";
    return 2;
  }
  std::vector<argserve::FastaRecord> records;
  if (absl::Status status = argserve::ReadFasta(fasta_path, records);
      !status.ok()) {
    std::cerr << "argserve-evidence: " << status.message() << "\n";
    return 2;
  }
  const argserve::NearestReferenceFinder finder(*std::move(references),
                                                options);
  std::vector<Row> rows(records.size());
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      for (size_t i = w; i < records.size(); i += threads) {
        const argserve::NearestReferences found =
            finder.FindNearestAndArg(records[i].residues);
        if (!found.nearest) continue;
        std::string text = absl::StrCat(records[i].id, "\t",
                                        HitFields(finder, *found.nearest));
        if (found.nearest_arg) {
          absl::StrAppend(&text, HitFields(finder, *found.nearest_arg));
        } else {
          text.append(kHitColumns, '\t');
        }
        text.back() = '\n';
        rows[i].text = std::move(text);
      }
    });
  }
  for (auto& worker : workers) worker.join();
  std::cout << "query_id\treference_id\tgene\taccession\tclass\tidentity\t"
               "query_coverage\treference_coverage\tscore\tbits\tevalue\t"
               "arg_reference_id\targ_gene\targ_accession\targ_class\t"
               "arg_identity\targ_query_coverage\targ_reference_coverage\t"
               "arg_score\targ_bits\targ_evalue\n";
  for (const Row& row : rows) std::cout << row.text;
  std::cout.flush();
  return std::cout ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "argserve-evidence: " << e.what() << "\n";
    return 1;
  }
}
