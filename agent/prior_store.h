// The restart priors (Pipeline's finished runs, one per RestartKey) as a file, so that they
// outlive the agent: a DaemonSet update or a node reboot would otherwise forget every workload's
// peak, and the next start-up fill of each would be predicted again (docs/prediction.md).
//
//   {"tapio_priors": 1,
//    "priors": [{"key": "shop/Deployment/web/app", "peak_bytes": 157286400,
//                "limit_bytes": 268435456}, ...]}
//
// An entry written from a run still going when the agent stopped also has "cgroup_id": after an
// agent restart that run may still be going, and its own peak is no prior for itself.
//
// Only usable runs are stored (limited, not OOM-killed). Reading refuses the whole file on any
// entry it cannot trust, naming the entry and the field: a prior silences warnings, so a wrong one
// is worse than none.
#ifndef TAPIO_AGENT_PRIOR_STORE_H_
#define TAPIO_AGENT_PRIOR_STORE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/predict/predictor.h"

namespace tapio {

struct StoredPrior {
  std::string key;  // RestartKey
  predict::RunPeak run;
  uint64_t cgroup_id = 0;  // the run was still going when stored (its cgroup); 0 = it finished
};

// At most this many entries are read (the pipeline keeps as many: kRestartPriorsMax).
inline constexpr size_t kMaxStoredPriors = 4096;

std::string PriorsToJson(const std::vector<StoredPrior>& priors);
absl::StatusOr<std::vector<StoredPrior>> PriorsFromJson(absl::string_view text);

}  // namespace tapio

#endif  // TAPIO_AGENT_PRIOR_STORE_H_
