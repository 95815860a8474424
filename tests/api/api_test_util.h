// Helpers for the API tests: a temp dir removed on destruction, a child process with captured
// output that is killed and reaped on destruction, and a fixed AgentStateSource.
#ifndef TAPIO_TESTS_API_API_TEST_UTIL_H_
#define TAPIO_TESTS_API_API_TEST_UTIL_H_

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/api/state_source.h"

namespace tapio::api::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tapio-api-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A child process; stdout and stderr go to files in `dir`. Killed (SIGKILL) and reaped when
// destroyed if still running.
class Subprocess {
 public:
  Subprocess(const std::vector<std::string>& argv, const std::string& dir, const std::string& tag)
      : out_path_(dir + "/" + tag + ".out"), err_path_(dir + "/" + tag + ".err") {
    pid_ = fork();
    if (pid_ == 0) {
      const int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(out, 1);
      dup2(err, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Subprocess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // Exit code (128+signal if killed by a signal); -1 if still running after `timeout`.
  int Wait(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!exited_) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (absl::Now() > deadline) return -1;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return code_;
  }
  void Kill() { kill(pid_, SIGKILL); }
  std::string out() const { return ReadWholeFile(out_path_); }
  std::string err() const { return ReadWholeFile(err_path_); }

 private:
  std::string out_path_, err_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
};

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// Polls `condition` every `poll` until true or `timeout`.
template <typename F>
bool WaitFor(F condition, absl::Duration timeout = absl::Seconds(10),
             absl::Duration poll = absl::Milliseconds(5)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(poll);
  }
  return true;
}

class FakeStateSource : public AgentStateSource {
 public:
  void SetContainers(std::vector<ContainerSnapshot> containers) {
    absl::MutexLock lock(&mu_);
    containers_ = std::move(containers);
  }
  void SetInfo(AgentInfo info) {
    absl::MutexLock lock(&mu_);
    info_ = std::move(info);
  }
  std::vector<ContainerSnapshot> ListContainers() const override {
    absl::MutexLock lock(&mu_);
    return containers_;
  }
  AgentInfo GetAgentInfo() const override {
    absl::MutexLock lock(&mu_);
    return info_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<ContainerSnapshot> containers_ ABSL_GUARDED_BY(mu_);
  AgentInfo info_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tapio::api::testing

#endif  // TAPIO_TESTS_API_API_TEST_UTIL_H_
