#include "client/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace argserve {
namespace {

using ::testing::HasSubstr;

ClientOptions Parse(std::vector<std::string> args,
                    const char* env_target = nullptr) {
  args.insert(args.begin(), "argserve-cli");
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  return ParseClientOptions(static_cast<int>(argv.size()), argv.data(),
                            env_target);
}

std::string UsageMessage(std::vector<std::string> args) {
  try {
    Parse(std::move(args));
  } catch (const UsageError& error) {
    return error.message;
  }
  return "(no error)";
}

TEST(ClientOptions, ClassifyOptionsInEitherSpellingAndPlace) {
  const ClientOptions o =
      Parse({"--target", "h:1", "classify", "--top-k=0", "--format", "jsonl",
             "-o", "out.tsv", "--stream", "a.fa", "-", "--deadline", "2.5",
             "--seq", "x=MK"});
  EXPECT_EQ(o.command, Command::kClassify);
  EXPECT_EQ(o.connection.target, "h:1");
  EXPECT_EQ(o.top_k, 0);
  EXPECT_EQ(o.output_options.format, OutputFormat::kJsonLines);
  EXPECT_EQ(o.output, "out.tsv");
  EXPECT_TRUE(o.stream);
  EXPECT_EQ(o.inputs, (std::vector<std::string>{"a.fa", "-"}));
  EXPECT_EQ(o.seqs, std::vector<std::string>{"x=MK"});
  EXPECT_DOUBLE_EQ(o.connection.deadline_seconds, 2.5);
}

TEST(ClientOptions, DefaultsAndTheEnvironmentsTarget) {
  const ClientOptions o = Parse({"classify"}, "env:5");
  EXPECT_EQ(o.connection.target, "env:5");
  EXPECT_EQ(o.top_k, 3);
  EXPECT_EQ(o.batch_size, 64);
  EXPECT_EQ(o.concurrency, 4);
  EXPECT_EQ(o.connection.retries, 5);
  EXPECT_EQ(o.output_options.format, OutputFormat::kTsv);
  EXPECT_EQ(Parse({"health"}).connection.target, "127.0.0.1:50051");
  EXPECT_TRUE(Parse({"info", "--format", "json"}).info_json);
}

TEST(ClientOptions, HelpIsACommand) {
  const ClientOptions o = Parse({"--help"});
  EXPECT_EQ(o.command, Command::kHelp);
  EXPECT_THAT(o.help, HasSubstr("Exit codes"));
  EXPECT_THAT(o.help, HasSubstr("--target"));
}

TEST(ClientOptions, UsageErrorsSayWhatIsWrong) {
  EXPECT_THAT(UsageMessage({}), HasSubstr("missing subcommand"));
  EXPECT_THAT(UsageMessage({"frobnicate"}),
              HasSubstr("unknown subcommand 'frobnicate'"));
  EXPECT_THAT(UsageMessage({"classify", "--bogus"}),
              HasSubstr("unknown option '--bogus'"));
  EXPECT_THAT(UsageMessage({"classify", "--top-k", "x"}),
              HasSubstr("--top-k needs a whole number >= 0, not 'x'"));
  EXPECT_THAT(UsageMessage({"classify", "--batch-size", "0"}),
              HasSubstr("--batch-size needs a whole number >= 1"));
  EXPECT_THAT(UsageMessage({"classify", "--min-probability", "2"}),
              HasSubstr("--min-probability needs a number in [0, 1]"));
  EXPECT_THAT(UsageMessage({"classify", "--format", "xml"}),
              HasSubstr("--format must be tsv, jsonl, json or hamronization"));
  EXPECT_THAT(UsageMessage({"classify", "--target"}),
              HasSubstr("--target needs a value"));
  EXPECT_THAT(UsageMessage({"info", "x.fa"}),
              HasSubstr("'info' takes no file arguments"));
  EXPECT_THAT(UsageMessage({"classify", "--tls-cert", "c.pem"}),
              HasSubstr("--tls-cert and --tls-key go together"));
  EXPECT_THAT(UsageMessage({"classify", "--token-file", "/nonexistent/t"}),
              HasSubstr("cannot read '/nonexistent/t'"));
}

}  // namespace
}  // namespace argserve
