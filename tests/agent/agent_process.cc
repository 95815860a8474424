#include "tests/agent/agent_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace tapio::testing {

absl::StatusOr<std::unique_ptr<AgentProcess>> AgentProcess::Start(
    const std::vector<std::string>& args, absl::Duration ready_timeout) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  // Private API socket and a free metrics port, so tests never collide with each other or with
  // an agent running on the host; `args` come later and win.
  static int counter = 0;
  std::vector<std::string> argv = {
      TAPIO_AGENT_PATH, "--output=json",
      absl::StrCat("--grpc_address=unix:///tmp/tapio-test-", getpid(), "-", counter++, ".sock"),
      "--metrics_address=127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  // The last --grpc_address wins, as in the agent's flag parsing.
  std::string grpc_address;
  for (const auto& a : argv) {
    absl::string_view v(a);
    if (absl::ConsumePrefix(&v, "--grpc_address=")) grpc_address = std::string(v);
  }
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  std::unique_ptr<AgentProcess> p(new AgentProcess());
  p->pid_ = pid;
  p->grpc_address_ = grpc_address;
  p->out_reader_ = std::thread(&AgentProcess::ReadLoop, p.get(), out[0], true);
  p->err_reader_ = std::thread(&AgentProcess::ReadLoop, p.get(), err[0], false);
  const absl::Time deadline = absl::Now() + ready_timeout;
  while (absl::Now() < deadline) {
    {
      absl::MutexLock lock(&p->mu_);
      if (p->log_.find("running on node") != std::string::npos) return p;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      p->pid_ = -1;
      absl::SleepFor(absl::Milliseconds(100));
      return absl::FailedPreconditionError(
          absl::StrCat("tapio-agent exited during start-up (status ", status, "):\n", p->Log()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("tapio-agent not ready:\n", p->Log()));
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    // A killed agent cannot remove its socket: do it for it (the path is private to this test).
    const std::string socket = grpc_socket_path();
    if (!socket.empty()) unlink(socket.c_str());
  }
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
}

void AgentProcess::ReadLoop(int fd, bool is_stdout) {
  char buf[65536];
  std::string pending;
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      absl::MutexLock lock(&mu_);
      if (!is_stdout) {
        log_ += line + "\n";
        continue;
      }
      auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded()) {
        ++unparsable_lines_;
        log_ += "UNPARSABLE STDOUT: " + line + "\n";
      } else {
        events_.push_back(std::move(parsed));
      }
    }
  }
  close(fd);
}

absl::StatusOr<nlohmann::json> AgentProcess::WaitFor(
    const std::function<bool(const nlohmann::json&)>& pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  size_t checked = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      for (; checked < events_.size(); ++checked) {
        if (pred(events_[checked])) return events_[checked];
      }
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("no matching event");
}

std::string AgentProcess::grpc_socket_path() const {
  absl::string_view v(grpc_address_);
  if (absl::ConsumePrefix(&v, "unix://") || absl::ConsumePrefix(&v, "unix:")) {
    return std::string(v);
  }
  return "";
}

absl::StatusOr<int> AgentProcess::MetricsPort() const {
  const std::string log = Log();
  constexpr absl::string_view kMarker = "metrics on http://";
  const size_t at = absl::string_view(log).find(kMarker);
  if (at == std::string::npos) return absl::NotFoundError("no \"metrics on\" line in the log");
  const size_t end = log.find('\n', at);
  absl::string_view url = absl::string_view(log).substr(
      at + kMarker.size(),
      end == std::string::npos ? std::string::npos : end - at - kMarker.size());
  const size_t slash = url.find('/');
  absl::string_view host_port = url.substr(0, slash);
  const size_t colon = host_port.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(host_port.substr(colon + 1), &port) ||
      port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad metrics url in the log: ", url));
  }
  return port;
}

std::vector<nlohmann::json> AgentProcess::Events() const {
  absl::MutexLock lock(&mu_);
  return events_;
}

std::string AgentProcess::Log() const {
  absl::MutexLock lock(&mu_);
  return log_;
}

bool AgentProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    exit_status_ = status;
    return false;
  }
  return true;
}

absl::StatusOr<int> AgentProcess::Stop(absl::Duration timeout) {
  if (pid_ <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("not running (exit status ", exit_status_, ")"));
  }
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      if (out_reader_.joinable()) out_reader_.join();
      if (err_reader_.joinable()) err_reader_.join();
      return status;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("tapio-agent did not exit after SIGTERM");
}

}  // namespace tapio::testing
