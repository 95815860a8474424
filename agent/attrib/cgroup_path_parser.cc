#include "agent/attrib/cgroup_path_parser.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tapio::attrib {
namespace {

// Pod uids are RFC 4122 uuids for API pods and 32-hex md5 sums for static pods.
bool IsPodUid(absl::string_view uid) {
  if (uid.empty() || uid.size() > 64) return false;
  for (char c : uid) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

// Runtimes use 64 hex digits; accept the docker short form (12) and up to 128 to stay lenient.
bool IsContainerId(absl::string_view id) {
  if (id.size() < 12 || id.size() > 128) return false;
  for (char c : id) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string JoinPrefix(const std::vector<absl::string_view>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) absl::StrAppend(&out, "/", parts[i]);
  return out.empty() ? "/" : out;
}

absl::Status Malformed(absl::string_view path, absl::string_view component, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("cgroup path '", path, "': component '", component, "': ", why));
}

// A container component, either layout. Sets runtime/id, or returns false if not a container.
// `*helper` is set for runtime helper scopes that belong to the pod (CRI-O conmon).
bool ParseContainerComponent(absl::string_view c, bool systemd, ContainerRuntime* runtime,
                             std::string* id, bool* helper) {
  *helper = false;
  absl::string_view rest = c;
  if (systemd) {
    if (!absl::ConsumeSuffix(&rest, ".scope")) return false;
  } else {
    absl::ConsumeSuffix(&rest, ".scope");  // tolerate systemd-style names under cgroupfs
  }
  if (absl::ConsumePrefix(&rest, "cri-containerd-")) {
    *runtime = ContainerRuntime::kContainerd;
  } else if (absl::ConsumePrefix(&rest, "crio-conmon-")) {
    *runtime = ContainerRuntime::kCrio;
    *helper = true;
  } else if (absl::ConsumePrefix(&rest, "crio-")) {
    *runtime = ContainerRuntime::kCrio;
  } else if (absl::ConsumePrefix(&rest, "docker-")) {
    *runtime = ContainerRuntime::kDocker;
  } else if (systemd) {
    return false;
  } else {
    *runtime = ContainerRuntime::kUnknown;  // bare id: containerd or docker with cgroupfs
  }
  if (!IsContainerId(rest)) return false;
  *id = absl::AsciiStrToLower(rest);
  return true;
}

}  // namespace

absl::string_view ContainerRuntimeName(ContainerRuntime runtime) {
  switch (runtime) {
    case ContainerRuntime::kContainerd:
      return "containerd";
    case ContainerRuntime::kCrio:
      return "cri-o";
    case ContainerRuntime::kDocker:
      return "docker";
    case ContainerRuntime::kUnknown:
      break;
  }
  return "unknown";
}

absl::StatusOr<CgroupPathInfo> ParseCgroupPath(absl::string_view path) {
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  CgroupPathInfo info;
  size_t i = 0;
  bool systemd = false;
  for (; i < parts.size(); ++i) {
    if (parts[i] == "kubepods") break;
    if (parts[i] == "kubepods.slice" || absl::EndsWith(parts[i], "-kubepods.slice")) {
      systemd = true;
      break;
    }
  }
  if (i == parts.size()) return info;  // kNotKubernetes
  info.kind = CgroupKind::kQosLevel;
  ++i;
  if (i == parts.size()) return info;

  // Optional QoS component.
  absl::string_view qos;
  absl::string_view c = parts[i];
  if (!systemd) {
    if (c == "burstable" || c == "besteffort") qos = c;
  } else if (c == "kubepods-burstable.slice") {
    qos = "burstable";
  } else if (c == "kubepods-besteffort.slice") {
    qos = "besteffort";
  }
  if (!qos.empty()) {
    info.qos_class = std::string(qos);
    ++i;
    if (i == parts.size()) return info;
    c = parts[i];
  }

  // Pod component.
  absl::string_view uid = c;
  if (!systemd) {
    if (!absl::ConsumePrefix(&uid, "pod")) {
      return Malformed(path, c, "expected pod<uid> or a QoS class (burstable, besteffort)");
    }
  } else {
    std::string prefix = qos.empty() ? "kubepods-pod" : absl::StrCat("kubepods-", qos, "-pod");
    if (!absl::ConsumePrefix(&uid, prefix) || !absl::ConsumeSuffix(&uid, ".slice")) {
      return Malformed(path, c, absl::StrCat("expected ", prefix, "<uid>.slice"));
    }
  }
  std::string uid_dashed = absl::StrReplaceAll(uid, {{"_", "-"}});
  if (!IsPodUid(uid_dashed)) return Malformed(path, c, "pod uid is empty or not hex");
  info.kind = CgroupKind::kPod;
  info.pod_uid = absl::AsciiStrToLower(uid_dashed);
  if (info.qos_class.empty()) info.qos_class = "guaranteed";
  ++i;
  info.pod_cgroup_path = JoinPrefix(parts, i);
  if (i == parts.size()) return info;

  // Container component.
  c = parts[i];
  bool helper = false;
  if (!ParseContainerComponent(c, systemd, &info.runtime, &info.container_id, &helper)) {
    return Malformed(path, c,
                     systemd ? "expected cri-containerd-<id>.scope, crio-<id>.scope or "
                               "docker-<id>.scope with a hex id"
                             : "expected a hex container id (optionally crio-<id>)");
  }
  if (helper) {
    info.container_id.clear();
    info.nested = true;
    return info;  // runtime helper: accounted to the pod
  }
  info.kind = CgroupKind::kContainer;
  ++i;
  info.container_cgroup_path = JoinPrefix(parts, i);
  info.nested = i < parts.size();
  return info;
}

}  // namespace tapio::attrib
