#include "agent/predict/trace.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tapio::predict {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

MemorySample MakeSample(int64_t t) {
  MemorySample s;
  s.time_ms = t;
  s.usage_bytes = 900;
  s.limit_bytes = 1000;
  s.anon_bytes = 500;
  s.file_bytes = 380;
  s.active_file_bytes = 180;
  s.inactive_file_bytes = 200;
  s.shmem_bytes = 30;
  s.kernel_unreclaimable_bytes = 20;
  s.swap_bytes = 1;
  s.limit_hits = 7;
  s.oom_kills = 0;
  s.psi_some_avg10 = 1.5;
  s.psi_full_avg10 = -1;
  s.reclaim_stall_ns = 123456789;
  return s;
}

Trace MakeTrace() {
  Trace t;
  t.header.workload_class = "linear_leak";
  t.header.name = "unit";
  t.header.seed = 3;
  t.header.oom_time_ms = 5000;
  for (int64_t i = 0; i < 4; ++i) t.samples.push_back(MakeSample(i * 1000));
  return t;
}

// Replaces the first occurrence of `from` in the text's line `line` (1-based).
std::string Mutate(const std::string& text, const std::string& from, const std::string& to) {
  std::string out = text;
  size_t pos = out.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  out.replace(pos, from.size(), to);
  return out;
}

TEST(TraceTest, RoundTripsEveryField) {
  Trace in = MakeTrace();
  absl::StatusOr<Trace> out = ParseTrace(TraceToText(in));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->header.workload_class, "linear_leak");
  EXPECT_EQ(out->header.source, "sim");
  EXPECT_EQ(out->header.name, "unit");
  EXPECT_EQ(out->header.seed, 3u);
  EXPECT_EQ(out->header.oom_time_ms, 5000);
  ASSERT_EQ(out->samples.size(), 4u);
  EXPECT_EQ(SampleToJsonLine(out->samples[2]), SampleToJsonLine(in.samples[2]));
  EXPECT_EQ(out->samples[3].reclaim_stall_ns, 123456789u);
  EXPECT_DOUBLE_EQ(out->samples[3].psi_some_avg10, 1.5);
}

TEST(TraceTest, RuntimeHeapCapIsWrittenOnlyWhenKnownAndReadBack) {
  Trace in = MakeTrace();
  EXPECT_THAT(TraceToText(in), Not(HasSubstr("runtime_heap_cap_bytes")));
  in.samples[1].runtime_heap_cap_bytes = 512u << 20;
  const std::string text = TraceToText(in);
  EXPECT_THAT(text, HasSubstr("\"runtime_heap_cap_bytes\":536870912"));
  absl::StatusOr<Trace> out = ParseTrace(text);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->samples[0].runtime_heap_cap_bytes, 0u);  // absent: a trace from before caps
  EXPECT_EQ(out->samples[1].runtime_heap_cap_bytes, 512u << 20);
  const std::string bad =
      Mutate(text, "\"runtime_heap_cap_bytes\":536870912", "\"runtime_heap_cap_bytes\":-1");
  EXPECT_THAT(ParseTrace(bad).status().message(), HasSubstr("'runtime_heap_cap_bytes'"));
  // It does not stand in for a required field.
  const std::string missing = Mutate(text, "\"swap_bytes\":1,", "");
  EXPECT_THAT(ParseTrace(missing).status().message(), HasSubstr("'swap_bytes'"));
}

TEST(TraceTest, NullOomTimeMeansNoOom) {
  Trace in = MakeTrace();
  in.header.oom_time_ms.reset();
  absl::StatusOr<Trace> out = ParseTrace(TraceToText(in));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_FALSE(out->header.oom_time_ms.has_value());
}

TEST(TraceTest, LabelLineSetsTheOomTime) {
  Trace in = MakeTrace();
  in.header.oom_time_ms.reset();
  std::string text = TraceToText(in) + LabelToJsonLine(4500) + "\n";
  absl::StatusOr<Trace> out = ParseTrace(text);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->header.oom_time_ms, 4500);
}

TEST(TraceTest, MalformedLineIsRejectedWithItsLineNumber) {
  std::string text = TraceToText(MakeTrace());
  // Line 3 is the second sample (time_ms 1000).
  std::string broken = Mutate(text, "{\"time_ms\":1000,", "{\"time_ms\":1000,,");
  absl::StatusOr<Trace> out = ParseTrace(broken);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("line 3"));
}

TEST(TraceTest, MissingFieldIsNamed) {
  std::string text = Mutate(TraceToText(MakeTrace()), "\"swap_bytes\":1,", "");
  absl::StatusOr<Trace> out = ParseTrace(text);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(out.status().message(), HasSubstr("'swap_bytes'"));
}

TEST(TraceTest, NegativeByteCountIsRejected) {
  std::string text = Mutate(TraceToText(MakeTrace()), "\"anon_bytes\":500", "\"anon_bytes\":-5");
  absl::StatusOr<Trace> out = ParseTrace(text);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("'anon_bytes'"));
}

TEST(TraceTest, UnknownFieldIsRejected) {
  std::string text =
      Mutate(TraceToText(MakeTrace()), "\"swap_bytes\":1,", "\"swap_bytes\":1,\"bogus\":2,");
  EXPECT_THAT(ParseTrace(text).status().message(), HasSubstr("unknown field 'bogus'"));
}

TEST(TraceTest, TimeThatDoesNotIncreaseIsRejected) {
  std::string text = Mutate(TraceToText(MakeTrace()), "{\"time_ms\":2000,", "{\"time_ms\":1000,");
  absl::StatusOr<Trace> out = ParseTrace(text);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("line 4"));
  EXPECT_THAT(out.status().message(), HasSubstr("'time_ms'"));
}

TEST(TraceTest, HeaderIsRequiredAndChecked) {
  EXPECT_THAT(ParseTrace("").status().message(), HasSubstr("missing trace header"));
  EXPECT_THAT(ParseTrace(SampleToJsonLine(MakeSample(0))).status().message(),
              HasSubstr("'tapio_trace'"));
  EXPECT_THAT(ParseTrace(R"({"tapio_trace":2,"class":"x"})").status().message(),
              HasSubstr("version"));
  EXPECT_THAT(ParseTrace(R"({"tapio_trace":1})").status().message(), HasSubstr("'class'"));
}

TEST(TraceTest, BlankLinesAreIgnored) {
  Trace in = MakeTrace();
  std::string text =
      TraceHeaderToJsonLine(in.header) + "\n\n" + SampleToJsonLine(in.samples[0]) + "\n\n";
  absl::StatusOr<Trace> out = ParseTrace(text);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->samples.size(), 1u);
}

class TraceFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tapio-trace-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TraceFileTest, WriterOutputIsReadBack) {
  const std::string path = dir_ + "/t.jsonl";
  TraceHeader h;
  h.workload_class = "kernel_leak";
  h.source = "kernel";
  {
    absl::StatusOr<std::unique_ptr<TraceWriter>> w = TraceWriter::Create(path, h);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Append(MakeSample(10)).ok());
    ASSERT_TRUE((*w)->Append(MakeSample(20)).ok());
    absl::Status out_of_order = (*w)->Append(MakeSample(15));
    EXPECT_FALSE(out_of_order.ok());
    EXPECT_THAT(out_of_order.message(), HasSubstr("'time_ms'"));
    ASSERT_TRUE((*w)->AppendOomLabel(25).ok());
    ASSERT_TRUE((*w)->Close().ok());
    EXPECT_FALSE((*w)->Append(MakeSample(30)).ok());
  }
  absl::StatusOr<Trace> t = ReadTraceFile(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->header.source, "kernel");
  EXPECT_EQ(t->samples.size(), 2u);
  EXPECT_EQ(t->header.oom_time_ms, 25);
}

TEST_F(TraceFileTest, ReadErrorsNameTheFile) {
  EXPECT_FALSE(ReadTraceFile(dir_ + "/missing.jsonl").ok());
  TraceHeader h;
  h.workload_class = "x";
  EXPECT_FALSE(TraceWriter::Create(dir_ + "/no/such/dir/t.jsonl", h).ok());
}

}  // namespace
}  // namespace tapio::predict
