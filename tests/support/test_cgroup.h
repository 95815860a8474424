// Test helpers shared by the kernel and e2e suites: a real memory cgroup per test, and a way to
// run a workload inside it.
//
// TestCgroup models one uniquely named cgroup created under the test process's own memory cgroup
// (the v1 "memory" line of /proc/self/cgroup, or the v2 "0::" line on a pure v2 host) AND at the
// same relative path in the cgroup2 tree (/sys/fs/cgroup/unified on this hybrid host), exactly as
// container runtimes do. Processes started with Spawn()/SpawnFunction() are placed in both
// hierarchies before they run a single instruction of the workload.
//
// Lifetime: the destructor SIGKILLs whatever is still in the cgroup (both hierarchies), reaps the
// children it spawned, and removes every directory it created (retrying rmdir while the kernel
// finishes tearing the tasks down), so a failing test leaves nothing behind. Not thread-safe: one
// owner thread.
#ifndef TAPIO_TESTS_SUPPORT_TEST_CGROUP_H_
#define TAPIO_TESTS_SUPPORT_TEST_CGROUP_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tapio::testing {

// Path of the tapio-test-alloc workload binary built alongside the tests.
std::string TestAllocPath();

// A process started by TestCgroup. `stdout_fd` is the read end of a pipe connected to the child's
// stdout when SpawnOptions::capture_stdout is set (owned: closed by the destructor), else -1.
struct ChildProcess {
  pid_t pid = -1;
  int stdout_fd = -1;
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  // Reads the child's stdout until a line equal to `line` (without '\n') arrives, EOF, or the
  // timeout. NotFound on EOF, DeadlineExceeded on timeout.
  absl::Status WaitForLine(const std::string& line, absl::Duration timeout);
  // Waits for the child to exit (waitpid) and returns the raw wait status. DeadlineExceeded when it
  // is still running after `timeout` (it is left running).
  absl::StatusOr<int> Wait(absl::Duration timeout);
};

struct TestCgroupOptions {
  // memory.limit_in_bytes (v1; memsw too when present) / memory.max (v2). 0 = no limit.
  uint64_t limit_bytes = 0;
  // Name prefix; the name gets "-<pid>-<counter>-<random>" appended.
  std::string name_prefix = "tapio-test";
  // When set, the exact name instead (a test that recreates a cgroup at the same path; the
  // previous one must be gone).
  std::string exact_name;
};

struct SpawnOptions {
  bool capture_stdout = false;
};

class TestCgroup {
 public:
  static absl::StatusOr<std::unique_ptr<TestCgroup>> Create(const TestCgroupOptions& options = {});
  ~TestCgroup();
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;

  // Path relative to the hierarchy roots, e.g. "/process_api/abc/tapio-test-12-1-8f3a".
  const std::string& relative_path() const { return relative_path_; }
  // The memory controller directory: /sys/fs/cgroup/memory<rel> (v1) or the v2 dir (pure v2).
  const std::string& memory_dir() const { return memory_dir_; }
  // The cgroup2 directory (/sys/fs/cgroup/unified<rel> on hybrid hosts, /sys/fs/cgroup<rel> on v2).
  const std::string& v2_dir() const { return v2_dir_; }
  bool memory_is_v1() const { return memory_is_v1_; }
  // The cgroup v2 id: inode number of v2_dir(), what bpf_get_current_cgroup_id() returns.
  uint64_t cgroup2_id() const { return cgroup2_id_; }
  // Kernfs id of the memory controller's directory (its inode): the id used on pure v1 hosts.
  uint64_t memcg_id() const { return memcg_id_; }

  // fork + exec(argv) with the child placed in both hierarchies before exec.
  absl::StatusOr<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                     const SpawnOptions& options = {});
  // fork + run `body` in the child (placed first); the child exits with body's return value.
  absl::StatusOr<ChildProcess> SpawnFunction(const std::function<int()>& body,
                                             const SpawnOptions& options = {});
  // Moves an existing process into both hierarchies.
  absl::Status AddProcess(pid_t pid);

  // oom_kill from memory.oom_control (v1) or memory.events (v2).
  absl::StatusOr<uint64_t> ReadOomKillCount() const;
  // memory.usage_in_bytes (v1) / memory.current (v2).
  absl::StatusOr<uint64_t> ReadUsageBytes() const;
  // Pids currently in the memory cgroup.
  std::vector<pid_t> Pids() const;
  // SIGKILLs every process in both hierarchies and waits (up to `timeout`) until they are gone.
  absl::Status KillAll(absl::Duration timeout = absl::Seconds(5));

 private:
  TestCgroup() = default;
  absl::StatusOr<ChildProcess> SpawnImpl(const std::function<void()>& child_body,
                                         const SpawnOptions& options);

  std::string relative_path_;
  std::string memory_dir_;
  std::string v2_dir_;
  bool memory_is_v1_ = true;
  uint64_t cgroup2_id_ = 0;
  uint64_t memcg_id_ = 0;
  std::vector<std::string> created_dirs_;  // in creation order; removed in reverse
  std::vector<pid_t> spawned_;             // children to reap
};

// Reads a whole small file. NotFound/PermissionDenied etc. from errno.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);
// Writes `value` to a (cgroup) file with one write(2).
absl::Status WriteStringToFile(const std::string& path, const std::string& value);
// VmRSS of a process from /proc/<pid>/status, in bytes.
absl::StatusOr<uint64_t> ReadVmRssBytes(pid_t pid);

}  // namespace tapio::testing

#endif  // TAPIO_TESTS_SUPPORT_TEST_CGROUP_H_
