#include "agent/prior_store.h"

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace tapio {

using nlohmann::json;

std::string PriorsToJson(const std::vector<StoredPrior>& priors) {
  json list = json::array();
  for (const StoredPrior& p : priors) {
    json e = {{"key", p.key}, {"peak_bytes", p.run.peak_bytes}, {"limit_bytes", p.run.limit_bytes}};
    if (p.cgroup_id != 0) e["cgroup_id"] = p.cgroup_id;
    list.push_back(std::move(e));
  }
  json doc = {{"tapio_priors", 1}, {"priors", std::move(list)}};
  return doc.dump() + "\n";
}

absl::StatusOr<std::vector<StoredPrior>> PriorsFromJson(absl::string_view text) {
  const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("not JSON");
  if (!doc.is_object() || !doc.contains("tapio_priors") || doc["tapio_priors"] != 1) {
    return absl::InvalidArgumentError("not a version 1 priors file (\"tapio_priors\": 1)");
  }
  if (!doc.contains("priors") || !doc["priors"].is_array()) {
    return absl::InvalidArgumentError("field 'priors': must be an array");
  }
  const json& list = doc["priors"];
  if (list.size() > kMaxStoredPriors) {
    return absl::InvalidArgumentError(
        absl::StrCat("field 'priors': ", list.size(), " entries, at most ", kMaxStoredPriors));
  }
  std::vector<StoredPrior> out;
  out.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const json& e = list[i];
    const auto bad = [i](absl::string_view field, absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("priors[", i, "]: field '", field, "': ", why));
    };
    if (!e.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat("priors[", i, "]: must be an object"));
    }
    StoredPrior p;
    if (!e.contains("key") || !e["key"].is_string() || e["key"].get<std::string>().empty()) {
      return bad("key", "must be a non-empty string");
    }
    p.key = e["key"].get<std::string>();
    for (const auto& [field, value] : {std::pair{"peak_bytes", &p.run.peak_bytes},
                                       std::pair{"limit_bytes", &p.run.limit_bytes}}) {
      if (!e.contains(field) || !e[field].is_number_unsigned()) {
        return bad(field, "must be a non-negative integer");
      }
      *value = e[field].get<uint64_t>();
    }
    if (p.run.limit_bytes == 0) return bad("limit_bytes", "must be > 0 (a limited run)");
    if (e.contains("cgroup_id")) {
      if (!e["cgroup_id"].is_number_unsigned()) return bad("cgroup_id", "must be a cgroup id");
      p.cgroup_id = e["cgroup_id"].get<uint64_t>();
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace tapio
