// Small POSIX file helpers shared by every reader of kernel files (cgroupfs, procfs, kmsg).
// All return absl::Status with errno mapped: ENOENT -> NotFound (a cgroup or process vanished, an
// environment event, never a crash), EACCES/EPERM -> PermissionDenied, others -> Internal.
#ifndef TAPIO_AGENT_CORE_FILE_UTIL_H_
#define TAPIO_AGENT_CORE_FILE_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tapio {

absl::Status ErrnoToStatus(int err, absl::string_view what);

// Owns one file descriptor. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

absl::StatusOr<UniqueFd> OpenReadOnly(const std::string& path);
// Whole file (up to max_bytes) by path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path, size_t max_bytes = 1 << 20);
// Re-reads an open kernel file from offset 0 (pread), the cheap way to sample cgroup files.
absl::Status PreadAll(int fd, std::string* out, size_t max_bytes = 64 << 10);
absl::Status WriteStringToFile(const std::string& path, absl::string_view content);
// Writes `content` to path + ".tmp", syncs it and renames it over `path`: a reader (or the next
// start after a crash or power loss) sees the old file or the new one, never a torn one.
absl::Status ReplaceFileAtomically(const std::string& path, absl::string_view content);

// Parses a decimal u64 ("max" -> UINT64_MAX when allow_max), trimming whitespace.
bool ParseU64(absl::string_view text, uint64_t* value, bool allow_max = false);

}  // namespace tapio

#endif  // TAPIO_AGENT_CORE_FILE_UTIL_H_
