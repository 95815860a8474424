#include "agent/core/runtime.h"

#include "absl/synchronization/mutex.h"

namespace tapio {

void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace tapio
