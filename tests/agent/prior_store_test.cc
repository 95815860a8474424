#include "agent/prior_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/core/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tapio {
namespace {

using ::testing::HasSubstr;

StoredPrior Prior(const std::string& key, uint64_t peak, uint64_t limit) {
  StoredPrior p;
  p.key = key;
  p.run.peak_bytes = peak;
  p.run.limit_bytes = limit;
  return p;
}

TEST(PriorStoreTest, RoundTripsEveryEntry) {
  std::vector<StoredPrior> priors = {Prior("shop/Deployment/web/app", 150 << 20, 256 << 20),
                                     Prior("/system.slice/redis.service", 1, UINT64_MAX)};
  priors[1].cgroup_id = 4242;  // stored while still going
  absl::StatusOr<std::vector<StoredPrior>> back = PriorsFromJson(PriorsToJson(priors));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  for (size_t i = 0; i < priors.size(); ++i) {
    EXPECT_EQ((*back)[i].key, priors[i].key);
    EXPECT_EQ((*back)[i].run.peak_bytes, priors[i].run.peak_bytes);
    EXPECT_EQ((*back)[i].run.limit_bytes, priors[i].run.limit_bytes);
    EXPECT_EQ((*back)[i].cgroup_id, priors[i].cgroup_id);
    EXPECT_TRUE((*back)[i].run.usable());
  }
  EXPECT_TRUE(PriorsFromJson(PriorsToJson({})).ok());
}

TEST(PriorStoreTest, RefusesWhatItCannotTrustNamingTheEntryAndField) {
  const struct {
    const char* text;
    const char* message;
  } cases[] = {
      {"", "not JSON"},
      {"{\"priors\": []}", "tapio_priors"},
      {"{\"tapio_priors\": 2, \"priors\": []}", "tapio_priors"},
      {"{\"tapio_priors\": 1}", "field 'priors'"},
      {"{\"tapio_priors\": 1, \"priors\": {}}", "field 'priors'"},
      {"{\"tapio_priors\": 1, \"priors\": [3]}", "priors[0]: must be an object"},
      {"{\"tapio_priors\": 1, \"priors\": [{\"peak_bytes\": 1, \"limit_bytes\": 2}]}",
       "priors[0]: field 'key'"},
      {"{\"tapio_priors\": 1, \"priors\": [{\"key\": \"\", \"peak_bytes\": 1, "
       "\"limit_bytes\": 2}]}",
       "priors[0]: field 'key'"},
      {"{\"tapio_priors\": 1, \"priors\": [{\"key\": \"a\", \"peak_bytes\": 1, \"limit_bytes\": "
       "2}, {\"key\": \"b\", \"peak_bytes\": -1, \"limit_bytes\": 2}]}",
       "priors[1]: field 'peak_bytes'"},
      {"{\"tapio_priors\": 1, \"priors\": [{\"key\": \"a\", \"peak_bytes\": 1.5, "
       "\"limit_bytes\": 2}]}",
       "priors[0]: field 'peak_bytes'"},
      {"{\"tapio_priors\": 1, \"priors\": [{\"key\": \"a\", \"peak_bytes\": 1}]}",
       "priors[0]: field 'limit_bytes'"},
      {"{\"tapio_priors\": 1, \"priors\": [{\"key\": \"a\", \"peak_bytes\": 1, "
       "\"limit_bytes\": 0}]}",
       "priors[0]: field 'limit_bytes'"},
      {"{\"tapio_priors\": 1, \"priors\": [{\"key\": \"a\", \"peak_bytes\": 1, "
       "\"limit_bytes\": 2, \"cgroup_id\": \"x\"}]}",
       "priors[0]: field 'cgroup_id'"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::vector<StoredPrior>> r = PriorsFromJson(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message)) << c.text;
  }
  std::vector<StoredPrior> too_many(kMaxStoredPriors + 1, Prior("k", 1, 2));
  absl::StatusOr<std::vector<StoredPrior>> r = PriorsFromJson(PriorsToJson(too_many));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("at most 4096"));
}

TEST(ReplaceFileAtomicallyTest, ReplacesTheWholeFileAndLeavesNoTemporary) {
  const std::string dir = ::testing::TempDir() + "/tapio-atomic-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/priors.json";
  ASSERT_TRUE(ReplaceFileAtomically(path, "a much longer first version\n").ok());
  ASSERT_TRUE(ReplaceFileAtomically(path, "second\n").ok());
  absl::StatusOr<std::string> text = ReadFileToString(path);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "second\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const absl::Status missing = ReplaceFileAtomically(dir + "/no/such/dir/f", "x");
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_THAT(std::string(missing.message()), HasSubstr("no/such/dir/f.tmp"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tapio
