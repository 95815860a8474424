#include "tests/support/test_cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#ifndef TAPIO_TEST_ALLOC_PATH
#define TAPIO_TEST_ALLOC_PATH "tapio-test-alloc"
#endif

namespace tapio::testing {
namespace {

constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

absl::Status ErrnoStatus(int err, const std::string& what) {
  return absl::ErrnoToStatus(err, what);
}

bool IsDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::StatusOr<uint64_t> InodeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + path);
  return static_cast<uint64_t>(st.st_ino);
}

// Finds `key value` in a flat-keyed file such as memory.oom_control or memory.events.
absl::StatusOr<uint64_t> ReadKeyedValue(const std::string& path, const std::string& key) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t value = 0;
    if (parts.size() == 2 && parts[0] == key && absl::SimpleAtoi(parts[1], &value)) return value;
  }
  return absl::NotFoundError(absl::StrCat("no '", key, "' in ", path));
}

std::vector<pid_t> ReadProcs(const std::string& dir) {
  std::vector<pid_t> pids;
  absl::StatusOr<std::string> text = ReadFileToString(dir + "/cgroup.procs");
  if (!text.ok()) return pids;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    int pid = 0;
    if (absl::SimpleAtoi(line, &pid) && pid > 0) pids.push_back(pid);
  }
  return pids;
}

// mkdir -p that records each directory it created.
absl::Status MakeDirs(const std::string& path, std::vector<std::string>* created) {
  if (IsDir(path)) return absl::OkStatus();
  std::string::size_type slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    absl::Status parent = MakeDirs(path.substr(0, slash), created);
    if (!parent.ok()) return parent;
  }
  // Another test may be creating or removing the same parent concurrently: retry briefly.
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (mkdir(path.c_str(), 0755) == 0) {
      created->push_back(path);
      return absl::OkStatus();
    }
    if (errno == EEXIST) return absl::OkStatus();
    if (errno != ENOENT) return ErrnoStatus(errno, "mkdir " + path);
    usleep(10000);
  }
  return ErrnoStatus(ENOENT, "mkdir " + path);
}

std::atomic<int> g_counter{0};

}  // namespace

std::string TestAllocPath() { return TAPIO_TEST_ALLOC_PATH; }

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return ErrnoStatus(err, "read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

absl::Status WriteStringToFile(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n < 0) return ErrnoStatus(err, absl::StrCat("write '", value, "' to ", path));
  if (static_cast<size_t>(n) != value.size()) {
    return absl::DataLossError(absl::StrCat("short write to ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ReadVmRssBytes(pid_t pid) {
  std::string path = absl::StrCat("/proc/", pid, "/status");
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (absl::ConsumePrefix(&line, "VmRSS:")) {
      line = absl::StripAsciiWhitespace(line);
      absl::ConsumeSuffix(&line, "kB");
      line = absl::StripAsciiWhitespace(line);
      uint64_t kb = 0;
      if (!absl::SimpleAtoi(line, &kb)) return absl::InternalError("bad VmRSS in " + path);
      return kb * 1024;
    }
  }
  return absl::NotFoundError("no VmRSS in " + path + " (kernel thread or zombie?)");
}

// ---------------------------------------------------------------------------------------------
// ChildProcess

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid(std::exchange(other.pid, -1)), stdout_fd(std::exchange(other.stdout_fd, -1)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (stdout_fd >= 0) close(stdout_fd);
    pid = std::exchange(other.pid, -1);
    stdout_fd = std::exchange(other.stdout_fd, -1);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (stdout_fd >= 0) close(stdout_fd);
}

absl::Status ChildProcess::WaitForLine(const std::string& line, absl::Duration timeout) {
  if (stdout_fd < 0) return absl::FailedPreconditionError("stdout was not captured");
  absl::Time deadline = absl::Now() + timeout;
  std::string pending;
  while (true) {
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string got = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (got == line) return absl::OkStatus();
    }
    int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) return absl::DeadlineExceededError("waiting for line '" + line + "'");
    struct pollfd pfd = {stdout_fd, POLLIN, 0};
    int rc = poll(&pfd, 1, static_cast<int>(left_ms));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return ErrnoStatus(errno, "poll child stdout");
    if (rc == 0) continue;
    // Read one byte at a time: the rest of the output stays in the pipe for later callers.
    char c;
    ssize_t n = read(stdout_fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::NotFoundError("child stdout closed before line '" + line + "'");
    pending.push_back(c);
  }
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  if (pid <= 0) return absl::FailedPreconditionError("no child");
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      pid = -pid;  // reaped: keep the number visible but never signal it again
      return status;
    }
    if (r < 0 && errno != EINTR) return ErrnoStatus(errno, "waitpid");
    if (absl::Now() >= deadline) return absl::DeadlineExceededError("child still running");
    usleep(2000);
  }
}

// ---------------------------------------------------------------------------------------------
// TestCgroup

absl::StatusOr<std::unique_ptr<TestCgroup>> TestCgroup::Create(const TestCgroupOptions& options) {
  absl::StatusOr<std::string> self = ReadFileToString("/proc/self/cgroup");
  if (!self.ok()) return self.status();
  std::string v1_memory_path, v2_path;
  bool have_v1 = false, have_v2 = false;
  for (absl::string_view line : absl::StrSplit(*self, '\n', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    if (parts[0] == "0" && parts[1].empty()) {
      v2_path = parts[2];
      have_v2 = true;
    }
    for (absl::string_view c : absl::StrSplit(parts[1], ',')) {
      if (c == "memory") {
        v1_memory_path = parts[2];
        have_v1 = true;
      }
    }
  }
  if (v1_memory_path == "/") v1_memory_path.clear();
  if (v2_path == "/") v2_path.clear();

  auto cg = std::unique_ptr<TestCgroup>(new TestCgroup());
  std::random_device rd;
  std::string name = !options.exact_name.empty()
                         ? options.exact_name
                         : absl::StrCat(options.name_prefix, "-", getpid(), "-",
                                        g_counter.fetch_add(1), "-", absl::Hex(rd() & 0xffff));
  std::string unified_root;
  if (have_v1 && IsDir(absl::StrCat(kCgroupRoot, "/memory"))) {
    // Hybrid (or v1 with a unified tree): memory on v1, the same relative path in cgroup2.
    cg->memory_is_v1_ = true;
    cg->relative_path_ = absl::StrCat(v1_memory_path, "/", name);
    cg->memory_dir_ = absl::StrCat(kCgroupRoot, "/memory", cg->relative_path_);
    unified_root = absl::StrCat(kCgroupRoot, "/unified");
    if (!IsDir(unified_root)) unified_root.clear();
  } else if (have_v2) {
    cg->memory_is_v1_ = false;
    cg->relative_path_ = absl::StrCat(v2_path, "/", name);
    unified_root = kCgroupRoot;
  } else {
    return absl::FailedPreconditionError("no memory cgroup found in /proc/self/cgroup");
  }

  if (cg->memory_is_v1_) {
    // The parent is ours already: create only the leaf in v1.
    if (mkdir(cg->memory_dir_.c_str(), 0755) != 0) {
      return ErrnoStatus(errno, "mkdir " + cg->memory_dir_);
    }
    cg->created_dirs_.push_back(cg->memory_dir_);
  }
  if (!unified_root.empty()) {
    cg->v2_dir_ = unified_root + cg->relative_path_;
    absl::Status made = MakeDirs(cg->v2_dir_, &cg->created_dirs_);
    if (!made.ok()) return made;  // the destructor removes what was created
    absl::StatusOr<uint64_t> id = InodeOf(cg->v2_dir_);
    if (!id.ok()) return id.status();
    cg->cgroup2_id_ = *id;
  }
  if (!cg->memory_is_v1_) cg->memory_dir_ = cg->v2_dir_;
  absl::StatusOr<uint64_t> memcg_id = InodeOf(cg->memory_dir_);
  if (!memcg_id.ok()) return memcg_id.status();
  cg->memcg_id_ = *memcg_id;

  if (options.limit_bytes > 0) {
    std::string limit = absl::StrCat(options.limit_bytes);
    if (cg->memory_is_v1_) {
      absl::Status s = WriteStringToFile(cg->memory_dir_ + "/memory.limit_in_bytes", limit);
      if (!s.ok()) return s;
      // With swap, memsw must be limited as well or the workload swaps instead of being killed.
      std::string memsw = cg->memory_dir_ + "/memory.memsw.limit_in_bytes";
      if (access(memsw.c_str(), W_OK) == 0) {
        s = WriteStringToFile(memsw, limit);
        if (!s.ok()) return s;
      }
    } else {
      absl::Status s = WriteStringToFile(cg->memory_dir_ + "/memory.max", limit);
      if (!s.ok()) return s;
      std::string swap = cg->memory_dir_ + "/memory.swap.max";
      if (access(swap.c_str(), W_OK) == 0) (void)WriteStringToFile(swap, "0");
    }
  }
  return cg;
}

TestCgroup::~TestCgroup() {
  (void)KillAll(absl::Seconds(10));
  for (pid_t pid : spawned_) {
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      kill(pid, SIGKILL);
      usleep(1000);
    }
  }
  for (auto it = created_dirs_.rbegin(); it != created_dirs_.rend(); ++it) {
    // Only the leaf must go; shared parents in the unified tree may be in use by another test.
    bool leaf = (it == created_dirs_.rbegin()) || *it == memory_dir_;
    for (int attempt = 0; attempt < 500; ++attempt) {
      if (rmdir(it->c_str()) == 0 || errno == ENOENT) break;
      if (!leaf && (errno == EBUSY || errno == ENOTEMPTY)) break;
      usleep(10000);
    }
  }
}

std::vector<pid_t> TestCgroup::Pids() const {
  std::vector<pid_t> pids = ReadProcs(memory_dir_);
  if (!v2_dir_.empty() && v2_dir_ != memory_dir_) {
    for (pid_t p : ReadProcs(v2_dir_)) pids.push_back(p);
  }
  return pids;
}

absl::Status TestCgroup::KillAll(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::vector<pid_t> pids = Pids();
    // Reap our own zombies so that they leave cgroup.procs.
    for (pid_t pid : spawned_) {
      int status;
      (void)waitpid(pid, &status, WNOHANG);
    }
    if (pids.empty()) return absl::OkStatus();
    for (pid_t pid : pids) kill(pid, SIGKILL);
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(pids.size(), " processes still in ", relative_path_));
    }
    usleep(5000);
  }
}

absl::Status TestCgroup::AddProcess(pid_t pid) {
  std::string p = absl::StrCat(pid);
  absl::Status s = WriteStringToFile(memory_dir_ + "/cgroup.procs", p);
  if (!s.ok()) return s;
  if (!v2_dir_.empty() && v2_dir_ != memory_dir_) {
    s = WriteStringToFile(v2_dir_ + "/cgroup.procs", p);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<ChildProcess> TestCgroup::SpawnImpl(const std::function<void()>& child_body,
                                                   const SpawnOptions& options) {
  int go[2], out[2] = {-1, -1};
  if (pipe2(go, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  if (options.capture_stdout && pipe2(out, O_CLOEXEC) != 0) {
    int err = errno;
    close(go[0]);
    close(go[1]);
    return ErrnoStatus(err, "pipe2");
  }
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(go[0]);
    close(go[1]);
    if (out[0] >= 0) {
      close(out[0]);
      close(out[1]);
    }
    return ErrnoStatus(err, "fork");
  }
  if (pid == 0) {
    // Child: wait until the parent has placed us in the cgroups, then run.
    close(go[1]);
    if (out[1] >= 0) {
      dup2(out[1], STDOUT_FILENO);  // dup2 clears O_CLOEXEC on the new fd
    }
    char byte = 0;
    ssize_t n;
    do {
      n = read(go[0], &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1 || byte != 'g') _exit(126);
    close(go[0]);
    child_body();
    _exit(127);
  }
  close(go[0]);
  if (out[1] >= 0) close(out[1]);
  spawned_.push_back(pid);
  ChildProcess child;
  child.pid = pid;
  child.stdout_fd = out[0];
  absl::Status placed = AddProcess(pid);
  if (!placed.ok()) {
    kill(pid, SIGKILL);
    close(go[1]);
    return placed;
  }
  char byte = 'g';
  ssize_t n = write(go[1], &byte, 1);
  close(go[1]);
  if (n != 1) return ErrnoStatus(errno, "start child");
  return child;
}

absl::StatusOr<ChildProcess> TestCgroup::Spawn(const std::vector<std::string>& argv,
                                               const SpawnOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("argv is empty");
  // Build the exec arguments before fork: the child only calls async-signal-safe functions.
  auto storage = std::make_shared<std::vector<std::string>>(argv);
  auto ptrs = std::make_shared<std::vector<char*>>();
  for (std::string& a : *storage) ptrs->push_back(a.data());
  ptrs->push_back(nullptr);
  return SpawnImpl([storage, ptrs]() { execv((*ptrs)[0], ptrs->data()); }, options);
}

absl::StatusOr<ChildProcess> TestCgroup::SpawnFunction(const std::function<int()>& body,
                                                       const SpawnOptions& options) {
  return SpawnImpl([&body]() { _exit(body()); }, options);
}

absl::StatusOr<uint64_t> TestCgroup::ReadOomKillCount() const {
  if (memory_is_v1_) return ReadKeyedValue(memory_dir_ + "/memory.oom_control", "oom_kill");
  return ReadKeyedValue(memory_dir_ + "/memory.events", "oom_kill");
}

absl::StatusOr<uint64_t> TestCgroup::ReadUsageBytes() const {
  std::string path = memory_dir_ + (memory_is_v1_ ? "/memory.usage_in_bytes" : "/memory.current");
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  uint64_t v = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &v)) {
    return absl::InternalError("bad number in " + path);
  }
  return v;
}

}  // namespace tapio::testing
