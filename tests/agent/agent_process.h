// AgentProcess: runs the real tapio-agent binary for a test, collects its JSON lines (stdout) and
// log (stderr), and stops it with SIGTERM. The destructor kills it if the test did not stop it.
#ifndef TAPIO_TESTS_AGENT_AGENT_PROCESS_H_
#define TAPIO_TESTS_AGENT_AGENT_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace tapio::testing {

class AgentProcess {
 public:
  // Starts TAPIO_AGENT_PATH with `args` (plus --output=json) and waits for "running on node".
  static absl::StatusOr<std::unique_ptr<AgentProcess>> Start(
      const std::vector<std::string>& args, absl::Duration ready_timeout = absl::Seconds(30));
  ~AgentProcess();

  // Waits until some event satisfies `pred`; returns a copy of it.
  absl::StatusOr<nlohmann::json> WaitFor(const std::function<bool(const nlohmann::json&)>& pred,
                                         absl::Duration timeout);
  std::vector<nlohmann::json> Events() const;
  std::string Log() const;
  pid_t pid() const { return pid_; }
  // The gRPC target the agent was told to serve on ("unix:///tmp/tapio-test-<pid>-<n>.sock" unless
  // `args` gave another --grpc_address): what a client dials.
  const std::string& grpc_address() const { return grpc_address_; }
  // The unix socket path of grpc_address() ("" when it is not a unix: target).
  std::string grpc_socket_path() const;
  // The TCP port the metrics server really listens on, from the agent's start-up log line
  // "metrics on http://<host>:<port>/metrics" (the agent logs the bound port, so
  // --metrics_address=127.0.0.1:0 works). NotFound when metrics are off or the line is missing.
  absl::StatusOr<int> MetricsPort() const;
  // True while the agent process has not exited (reaps it, without blocking, if it has).
  bool Running();
  // SIGTERM, wait; returns the exit status (as from waitpid).
  absl::StatusOr<int> Stop(absl::Duration timeout = absl::Seconds(20));

 private:
  AgentProcess() = default;
  void ReadLoop(int fd, bool is_stdout);

  pid_t pid_ = -1;
  std::string grpc_address_;
  int exit_status_ = -1;  // waitpid status once Running() saw the exit
  std::thread out_reader_, err_reader_;
  mutable absl::Mutex mu_;
  std::vector<nlohmann::json> events_ ABSL_GUARDED_BY(mu_);
  std::string log_ ABSL_GUARDED_BY(mu_);
  std::string partial_out_;
  size_t unparsable_lines_ = 0;
};

}  // namespace tapio::testing

#endif  // TAPIO_TESTS_AGENT_AGENT_PROCESS_H_
