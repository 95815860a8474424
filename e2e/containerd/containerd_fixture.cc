#include "e2e/containerd/containerd_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/core/log.h"

#ifndef TAPIO_SOURCE_DIR
#define TAPIO_SOURCE_DIR "."
#endif

namespace tapio::e2e {
namespace {

constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every cgroup hierarchy mounted below /sys/fs/cgroup (v1 controllers, "unified", "systemd").
std::vector<std::string> Hierarchies() {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(ReadFile("/proc/self/mountinfo"), '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 10) continue;
    auto dash = std::find(f.begin(), f.end(), "-");
    if (dash == f.end() || dash + 1 == f.end()) continue;
    if ((dash[1] == "cgroup" || dash[1] == "cgroup2") && absl::StartsWith(f[4], kCgroupRoot)) {
      out.emplace_back(f[4]);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<pid_t> PidsIn(const std::string& cgroup_dir);

// Kills every process in a cgroup and below it, then rmdirs the tree depth first. Missing is
// fine. Returns false if something could not be removed (processes still exiting).
bool RemoveCgroupTree(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return true;
  std::vector<std::string> children;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 &&
        std::strcmp(e->d_name, "..") != 0) {
      children.push_back(dir + "/" + e->d_name);
    }
  }
  ::closedir(d);
  bool ok = true;
  for (const auto& c : children) ok = RemoveCgroupTree(c) && ok;
  for (pid_t p : PidsIn(dir)) ::kill(p, SIGKILL);
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) ok = false;
  return ok;
}

std::vector<pid_t> PidsIn(const std::string& cgroup_dir) {
  std::vector<pid_t> out;
  for (absl::string_view l :
       absl::StrSplit(ReadFile(cgroup_dir + "/cgroup.procs"), '\n', absl::SkipEmpty())) {
    int pid = 0;
    if (absl::SimpleAtoi(l, &pid) && pid > 0) out.push_back(pid);
  }
  return out;
}

void RemovePodCgroupsEverywhere(const std::string& cgroup_parent);
void KillProcessesOf(const std::string& dir);
void UnmountBelow(const std::string& dir);
void CleanStaleFixtures();

int RunCommand(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

std::string ContainerdFixture::NewUid() {
  static std::mt19937_64 rng(std::random_device{}());
  static absl::Mutex mu;
  absl::MutexLock l(&mu);
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", a >> 32, (a >> 16) & 0xffff, a & 0xffff,
                         b >> 48, b & 0xffffffffffffULL);
}

absl::StatusOr<std::unique_ptr<ContainerdFixture>> ContainerdFixture::Start(Options options) {
  if (options.source_dir.empty()) options.source_dir = TAPIO_SOURCE_DIR;
  if (::geteuid() != 0) return absl::FailedPreconditionError("containerd e2e needs root");
  auto fx = std::unique_ptr<ContainerdFixture>(new ContainerdFixture(std::move(options)));
  char tmpl[] = "/tmp/tapio-containerd.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  CleanStaleFixtures();
  fx->dir_ = tmpl;
  std::ofstream(fx->dir_ + "/owner.pid") << ::getpid() << "\n";
  for (const char* sub : {"cni/bin", "cni/conf", "logs", "images"}) {
    std::filesystem::create_directories(fx->dir_ + "/" + sub);
  }
  // Remember which QoS-level cgroups exist already: only those we create are ours to remove.
  for (const std::string& h : Hierarchies()) {
    for (const char* q : {"/kubepods/burstable", "/kubepods/besteffort", "/kubepods"}) {
      struct stat st;
      if (::stat((h + q).c_str(), &st) != 0) fx->created_qos_dirs_.push_back(h + q);
    }
  }
  {
    std::ofstream qos(fx->dir_ + "/qos_created.txt");
    for (const std::string& q : fx->created_qos_dirs_) qos << q << "\n";
  }
  std::string tmpl_text =
      ReadFile(fx->options_.source_dir + "/e2e/containerd/containerd-config.toml.in");
  if (tmpl_text.empty()) {
    return absl::NotFoundError(absl::StrCat("containerd config template not found under ",
                                            fx->options_.source_dir, "/e2e/containerd"));
  }
  std::string cfg =
      absl::StrReplaceAll(tmpl_text, {{"@DIR@", fx->dir_}, {"@PAUSE_IMAGE@", kPauseImage}});
  std::ofstream(fx->dir_ + "/config.toml") << cfg;

  attrib::GrpcCriClient::Options co;
  co.endpoint = fx->endpoint();
  co.call_timeout = absl::Seconds(5);
  auto cri = attrib::GrpcCriClient::Create(co);
  if (!cri.ok()) return cri.status();
  fx->cri_ = *std::move(cri);

  const absl::Time t0 = absl::Now();
  if (auto s = fx->Spawn(); !s.ok()) return s;
  if (auto s = fx->WaitReady(); !s.ok()) return s;
  const absl::Time t1 = absl::Now();
  if (auto s = fx->BuildAndImportImages(); !s.ok()) return s;
  TAPIO_LOG(kInfo, "e2e: containerd ready in %s, images built and imported in %s (%s)",
            absl::FormatDuration(t1 - t0), absl::FormatDuration(absl::Now() - t1), fx->dir_);
  return fx;
}

absl::Status ContainerdFixture::Spawn() {
  std::string log = dir_ + "/containerd.log";
  std::string cfg = dir_ + "/config.toml";
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
    ::execlp("containerd", "containerd", "--config", cfg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  pid_ = pid;
  return absl::OkStatus();
}

absl::Status ContainerdFixture::WaitReady() {
  absl::Time deadline = absl::Now() + options_.ready_timeout;
  absl::Status last = absl::UnavailableError("not started");
  // A fresh channel with a short deadline per probe: a call made while containerd is still
  // loading plugins would otherwise wait for the full call timeout.
  attrib::GrpcCriClient::Options po;
  po.endpoint = endpoint();
  po.call_timeout = absl::Milliseconds(250);
  while (absl::Now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("containerd exited during start; see ", dir_, "/containerd.log"));
    }
    auto probe = attrib::GrpcCriClient::Create(po);
    if (!probe.ok()) return probe.status();
    auto v = (*probe)->Version();
    if (v.ok()) return absl::OkStatus();
    last = v.status();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("containerd not ready: ", last.ToString()));
}

absl::Status ContainerdFixture::BuildAndImportImages() {
  const std::string script = options_.source_dir + "/e2e/containerd/build-image.sh";
  struct Img {
    const char* src;
    const char* bin;
    const char* name;
  };
  for (const Img& img :
       {Img{"pause.c", "pause", kPauseImage}, Img{"memhog.c", "memhog", kMemhogImage}}) {
    std::string tar = absl::StrCat(dir_, "/images/", img.bin, ".tar");
    std::string build =
        absl::StrCat(script, " ", options_.source_dir, "/e2e/containerd/", img.src, " ", img.bin,
                     " ", img.name, " ", tar, " >>", dir_, "/images/build.log 2>&1");
    if (RunCommand(build) != 0) {
      return absl::InternalError(absl::StrCat("image build failed: ", build));
    }
    std::string imp = absl::StrCat("ctr -a ", dir_, "/containerd.sock -n k8s.io images import ",
                                   tar, " >>", dir_, "/images/build.log 2>&1");
    if (RunCommand(imp) != 0)
      return absl::InternalError(absl::StrCat("image import failed: ", imp));
  }
  return absl::OkStatus();
}

absl::Status ContainerdFixture::Kill() {
  if (pid_ <= 0) return absl::FailedPreconditionError("containerd is not running");
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return absl::OkStatus();
}

absl::Status ContainerdFixture::Restart() {
  if (pid_ > 0) return absl::FailedPreconditionError("containerd is still running");
  if (auto s = Spawn(); !s.ok()) return s;
  return WaitReady();
}

absl::StatusOr<ContainerdFixture::Pod> ContainerdFixture::RunPod(
    absl::string_view name, absl::string_view pod_namespace, absl::string_view qos,
    const std::map<std::string, std::string>& labels) {
  PodOptions options;
  options.qos = std::string(qos);
  options.labels = labels;
  return RunPod(name, pod_namespace, options);
}

absl::StatusOr<ContainerdFixture::Pod> ContainerdFixture::RunPod(absl::string_view name,
                                                                 absl::string_view pod_namespace,
                                                                 const PodOptions& options) {
  const absl::string_view qos = options.qos;
  const std::map<std::string, std::string>& labels = options.labels;
  Pod pod;
  pod.name = std::string(name);
  pod.pod_namespace = std::string(pod_namespace);
  pod.uid = NewUid();
  pod.qos = std::string(qos);
  if (qos == "guaranteed") {
    pod.cgroup_parent = absl::StrCat("/kubepods/pod", pod.uid);
  } else if (qos == "burstable" || qos == "besteffort") {
    pod.cgroup_parent = absl::StrCat("/kubepods/", qos, "/pod", pod.uid);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("qos '", qos, "' unknown"));
  }
  pod.spec.name = pod.name;
  pod.spec.pod_namespace = pod.pod_namespace;
  pod.spec.uid = pod.uid;
  pod.spec.labels = labels;
  pod.spec.labels[std::string(attrib::kLabelPodName)] = pod.name;
  pod.spec.labels[std::string(attrib::kLabelPodNamespace)] = pod.pod_namespace;
  pod.spec.labels[std::string(attrib::kLabelPodUid)] = pod.uid;
  pod.spec.cgroup_parent = pod.cgroup_parent;
  pod.spec.log_directory = absl::StrCat(dir_, "/logs/", pod.uid);
  pod.spec.host_pid = options.host_pid;
  pod.spec.seccomp = options.seccomp;
  {
    absl::MutexLock l(&mu_);  // recorded first: a stale-fixture cleanup must find it
    std::ofstream(dir_ + "/pods.txt", std::ios::app) << pod.cgroup_parent << "\n";
  }
  absl::StatusOr<std::string> id = cri_->RunPodSandbox(pod.spec);
  if (!id.ok()) {
    RemovePodCgroups(pod.cgroup_parent);
    return id.status();
  }
  pod.sandbox_id = *id;
  absl::MutexLock l(&mu_);
  pods_[pod.sandbox_id] = pod;
  return pod;
}

absl::StatusOr<std::string> ContainerdFixture::StartContainer(const Pod& pod,
                                                              absl::string_view name,
                                                              const std::vector<std::string>& args,
                                                              int64_t memory_limit_bytes) {
  attrib::GrpcCriClient::ContainerSpec c;
  c.name = std::string(name);
  c.image = kMemhogImage;
  c.args = args;
  c.memory_limit_bytes = memory_limit_bytes;
  c.log_path = absl::StrCat(name, ".log");
  c.labels = {{std::string(attrib::kLabelContainerName), c.name},
              {std::string(attrib::kLabelPodName), pod.name},
              {std::string(attrib::kLabelPodNamespace), pod.pod_namespace},
              {std::string(attrib::kLabelPodUid), pod.uid}};
  absl::StatusOr<std::string> id = cri_->CreateContainer(pod.sandbox_id, c, pod.spec);
  if (!id.ok()) return id.status();
  if (auto s = cri_->StartContainer(*id); !s.ok()) return s;
  return id;
}

absl::Status ContainerdFixture::RemovePod(const Pod& pod) {
  absl::Status first = absl::OkStatus();
  auto note = [&first](absl::Status s) {
    if (!s.ok() && first.ok() && !absl::IsNotFound(s)) first = s;
  };
  absl::StatusOr<std::vector<attrib::CriContainer>> cs = cri_->ListContainers();
  if (cs.ok()) {
    for (const auto& c : *cs) {
      if (c.pod_sandbox_id != pod.sandbox_id) continue;
      note(cri_->StopContainer(c.id, 0));
      note(cri_->RemoveContainer(c.id));
    }
  } else {
    note(cs.status());
  }
  note(cri_->StopPodSandbox(pod.sandbox_id));
  note(cri_->RemovePodSandbox(pod.sandbox_id));
  RemovePodCgroups(pod.cgroup_parent);
  absl::MutexLock l(&mu_);
  pods_.erase(pod.sandbox_id);
  return first;
}

void ContainerdFixture::RemovePodCgroups(const std::string& cgroup_parent) {
  RemovePodCgroupsEverywhere(cgroup_parent);
}

namespace {

void RemovePodCgroupsEverywhere(const std::string& cgroup_parent) {
  for (const std::string& h : Hierarchies()) {
    const std::string dir = h + cgroup_parent;
    bool removed = false;
    for (int attempt = 0; attempt < 40 && !removed; ++attempt) {  // killed processes exit
      removed = RemoveCgroupTree(dir);
      if (!removed) absl::SleepFor(absl::Milliseconds(50));
    }
    if (!removed) TAPIO_LOG(kWarning, "e2e: could not remove cgroup %s", dir);
  }
}

}  // namespace

void ContainerdFixture::StopContainerd() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void ContainerdFixture::KillLeftovers() { KillProcessesOf(dir_); }

namespace {

// Shims (and a containerd) of the instance in `dir` carry its paths in their command lines.
void KillProcessesOf(const std::string& dir) {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return;
  while (struct dirent* e = ::readdir(d)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid) || pid <= 1) continue;
    std::string cmd = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if ((absl::StrContains(cmd, "containerd-shim") &&
         absl::StrContains(cmd, dir + "/containerd.sock")) ||
        (absl::StartsWith(cmd, "containerd ") && absl::StrContains(cmd, dir + "/config.toml"))) {
      ::kill(pid, SIGKILL);
    }
  }
  ::closedir(d);
}

// Unmounts whatever is still mounted below `dir` (overlay rootfs, sandbox shm), deepest first.
void UnmountBelow(const std::string& dir) {
  std::vector<std::string> mounts;
  for (absl::string_view line : absl::StrSplit(ReadFile("/proc/self/mountinfo"), '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() > 4 && absl::StartsWith(f[4], dir + "/")) mounts.emplace_back(f[4]);
  }
  std::sort(mounts.begin(), mounts.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
}

// A fixture whose test process died without its destructor (SIGKILL, ctest timeout) leaves its
// dir behind, with owner.pid and pods.txt: clean those up. Live fixtures (owner alive) are left
// alone, so concurrent test binaries do not disturb each other.
bool ProcessAlive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  // A killed owner may linger as a zombie until its parent reaps it: that is dead too.
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
}

void CleanStaleFixtures() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/tmp", ec)) {
    const std::string dir = entry.path().string();
    if (!absl::StartsWith(entry.path().filename().string(), "tapio-containerd.")) continue;
    int owner = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(dir + "/owner.pid")), &owner) ||
        owner <= 0) {
      continue;  // being created right now, or not ours
    }
    if (ProcessAlive(owner)) continue;
    TAPIO_LOG(kWarning, "e2e: cleaning up stale containerd fixture %s (owner %d gone)", dir, owner);
    KillProcessesOf(dir);
    for (absl::string_view parent :
         absl::StrSplit(ReadFile(dir + "/pods.txt"), '\n', absl::SkipEmpty())) {
      RemovePodCgroupsEverywhere(std::string(parent));
    }
    UnmountBelow(dir);
    for (absl::string_view q :
         absl::StrSplit(ReadFile(dir + "/qos_created.txt"), '\n', absl::SkipEmpty())) {
      ::rmdir(std::string(q).c_str());  // only if empty: another fixture may use it now
    }
    std::filesystem::remove_all(dir, ec);
  }
}

}  // namespace

ContainerdFixture::~ContainerdFixture() {
  std::vector<Pod> pods;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, p] : pods_) pods.push_back(p);
  }
  if (!pods.empty() && pid_ <= 0 && !dir_.empty()) (void)Restart();  // to clean up properly
  for (const Pod& p : pods) {
    if (auto s = RemovePod(p); !s.ok()) {
      TAPIO_LOG(kWarning, "e2e: removing pod %s: %s", p.name, s.ToString());
    }
  }
  const absl::Time stop_start = absl::Now();
  StopContainerd();
  TAPIO_LOG(kInfo, "e2e: containerd stopped in %s", absl::FormatDuration(absl::Now() - stop_start));
  if (dir_.empty()) return;
  KillLeftovers();
  for (const Pod& p : pods) RemovePodCgroups(p.cgroup_parent);
  UnmountBelow(dir_);
  for (const std::string& q : created_qos_dirs_) ::rmdir(q.c_str());  // only if empty
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  if (ec) TAPIO_LOG(kWarning, "e2e: removing %s: %s", dir_, ec.message());
}

absl::StatusOr<std::string> CgroupPathOfPid(pid_t pid, absl::string_view controller) {
  std::string text = ReadFile(absl::StrCat("/proc/", pid, "/cgroup"));
  if (text.empty()) return absl::NotFoundError(absl::StrCat("no /proc/", pid, "/cgroup"));
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    if (controller.empty() ? f[0] == "0" && f[1].empty()
                           : absl::c_linear_search(absl::StrSplit(f[1], ','), controller)) {
      return std::string(f[2]);
    }
  }
  return absl::NotFoundError(absl::StrCat("pid ", pid, ": no cgroup line for '", controller, "'"));
}

absl::StatusOr<uint64_t> CgroupInode(absl::string_view hierarchy_dir, absl::string_view path) {
  std::string p = absl::StrCat(hierarchy_dir, path);
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("stat ", p, ": ", std::strerror(errno)));
  }
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace tapio::e2e
