#include "agent/attrib/kubelet_client.h"

#include <curl/curl.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/attrib/pod_workload.h"

namespace tapio::attrib {
namespace {

using json = nlohmann::json;

const json* Field(const json& obj, const char* name) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(name);
  return it == obj.end() ? nullptr : &*it;
}

std::string StringField(const json& obj, const char* name) {
  const json* f = Field(obj, name);
  return f != nullptr && f->is_string() ? f->get<std::string>() : std::string();
}

// resources.{requests,limits}.memory -> bytes, or 0; an unparsable value is an item error.
absl::Status MemoryOf(const json& resources, const char* which, int64_t* out) {
  const json* section = Field(resources, which);
  if (section == nullptr) return absl::OkStatus();
  const json* mem = Field(*section, "memory");
  if (mem == nullptr) return absl::OkStatus();
  if (!mem->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("resources.", which, ".memory is not a string"));
  }
  absl::StatusOr<int64_t> v = ParseQuantityBytes(mem->get<std::string>());
  if (!v.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("resources.", which, ".memory: ", v.status().message()));
  }
  *out = *v;
  return absl::OkStatus();
}

absl::Status ParseItem(const json& item, KubeletPod* pod) {
  const json* md = Field(item, "metadata");
  if (md == nullptr || !md->is_object()) return absl::InvalidArgumentError("metadata missing");
  pod->uid = StringField(*md, "uid");
  pod->name = StringField(*md, "name");
  pod->pod_namespace = StringField(*md, "namespace");
  if (pod->uid.empty()) return absl::InvalidArgumentError("metadata.uid missing");
  if (pod->name.empty()) return absl::InvalidArgumentError("metadata.name missing");
  std::string template_hash;
  if (const json* labels = Field(*md, "labels"); labels != nullptr && labels->is_object()) {
    template_hash = StringField(*labels, "pod-template-hash");
  }
  if (const json* owners = Field(*md, "ownerReferences"); owners != nullptr) {
    if (!owners->is_array())
      return absl::InvalidArgumentError("metadata.ownerReferences not a list");
    for (const json& o : *owners) {
      const json* ctl = Field(o, "controller");
      if (ctl != nullptr && ctl->is_boolean() && ctl->get<bool>()) {
        pod->owner_kind = StringField(o, "kind");
        pod->owner_name = StringField(o, "name");
        break;
      }
    }
  }
  pod->workload_kind = pod->owner_kind;
  pod->workload_name = pod->owner_name;
  if (pod->owner_kind == "ReplicaSet") {
    if (std::string d = DeploymentOfReplicaSet(pod->owner_name, template_hash); !d.empty()) {
      pod->workload_kind = "Deployment";
      pod->workload_name = std::move(d);
    }
  }
  if (const json* spec = Field(item, "spec"); spec != nullptr) {
    pod->node_name = StringField(*spec, "nodeName");
    for (const char* list : {"initContainers", "containers"}) {
      const json* cs = Field(*spec, list);
      if (cs == nullptr) continue;
      if (!cs->is_array())
        return absl::InvalidArgumentError(absl::StrCat("spec.", list, " not a list"));
      for (const json& c : *cs) {
        KubeletContainer kc;
        kc.name = StringField(c, "name");
        if (kc.name.empty()) {
          return absl::InvalidArgumentError(absl::StrCat("spec.", list, "[].name missing"));
        }
        if (const json* res = Field(c, "resources"); res != nullptr) {
          if (auto s = MemoryOf(*res, "requests", &kc.memory_request_bytes); !s.ok()) {
            return absl::InvalidArgumentError(
                absl::StrCat("spec.", list, "[", kc.name, "].", s.message()));
          }
          if (auto s = MemoryOf(*res, "limits", &kc.memory_limit_bytes); !s.ok()) {
            return absl::InvalidArgumentError(
                absl::StrCat("spec.", list, "[", kc.name, "].", s.message()));
          }
        }
        pod->containers.push_back(std::move(kc));
      }
    }
  }
  if (const json* status = Field(item, "status"); status != nullptr) {
    pod->qos_class = absl::AsciiStrToLower(StringField(*status, "qosClass"));
    for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
      const json* cs = Field(*status, list);
      if (cs == nullptr || !cs->is_array()) continue;
      for (const json& c : *cs) {
        std::string name = StringField(c, "name");
        std::string id = StringField(c, "containerID");
        if (size_t p = id.find("://"); p != std::string::npos) id = id.substr(p + 3);
        for (KubeletContainer& kc : pod->containers) {
          if (kc.name == name) kc.container_id = id;
        }
      }
    }
  }
  return absl::OkStatus();
}

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* ctx = static_cast<std::pair<std::string*, size_t>*>(user);
  size_t n = size * nmemb;
  if (ctx->first->size() + n > ctx->second) return 0;  // aborts the transfer: too large
  ctx->first->append(data, n);
  return n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

absl::StatusOr<int64_t> ParseQuantityBytes(absl::string_view q) {
  absl::string_view s = absl::StripAsciiWhitespace(q);
  if (s.empty()) return absl::InvalidArgumentError("quantity is empty");
  struct Suffix {
    absl::string_view text;
    double mult;
  };
  static constexpr Suffix kSuffixes[] = {{"Ki", 1024.0},
                                         {"Mi", 1048576.0},
                                         {"Gi", 1073741824.0},
                                         {"Ti", 1099511627776.0},
                                         {"Pi", 1125899906842624.0},
                                         {"Ei", 1152921504606846976.0},
                                         {"k", 1e3},
                                         {"M", 1e6},
                                         {"G", 1e9},
                                         {"T", 1e12},
                                         {"P", 1e15},
                                         {"E", 1e18},
                                         {"m", 1e-3}};
  double mult = 1;
  absl::string_view num = s;
  for (const Suffix& suf : kSuffixes) {
    if (absl::EndsWith(s, suf.text)) {
      num = s.substr(0, s.size() - suf.text.size());
      mult = suf.mult;
      break;
    }
  }
  // Digits, one optional '.', optional exponent (only without a suffix), optional leading sign.
  bool ok = !num.empty();
  bool seen_digit = false, seen_dot = false, seen_exp = false;
  for (size_t i = 0; ok && i < num.size(); ++i) {
    char c = num[i];
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      seen_digit = true;
    } else if (c == '.' && !seen_dot && !seen_exp) {
      seen_dot = true;
    } else if ((c == 'e' || c == 'E') && !seen_exp && seen_digit && mult == 1) {
      seen_exp = true;
      if (i + 1 < num.size() && (num[i + 1] == '+' || num[i + 1] == '-')) ++i;
    } else if ((c == '+' || c == '-') && i == 0) {
    } else {
      ok = false;
    }
  }
  double value = 0;
  if (!ok || !seen_digit || !absl::SimpleAtod(num, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantity '", q, "' is not a number with a unit"));
  }
  double bytes = std::ceil(value * mult);
  if (bytes < 0 || bytes > 9.2e18) {
    return absl::InvalidArgumentError(absl::StrCat("quantity '", q, "' out of range"));
  }
  return static_cast<int64_t>(bytes);
}

absl::StatusOr<KubeletPodList> ParseKubeletPods(absl::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError("kubelet /pods: body is not valid JSON (truncated?)");
  }
  const json* items = Field(j, "items");
  if (items == nullptr) return absl::InvalidArgumentError("kubelet /pods: field 'items' missing");
  KubeletPodList out;
  if (items->is_null()) return out;  // an empty PodList may encode items as null
  if (!items->is_array()) {
    return absl::InvalidArgumentError("kubelet /pods: field 'items' is not a list");
  }
  for (size_t i = 0; i < items->size(); ++i) {
    KubeletPod pod;
    if (absl::Status s = ParseItem((*items)[i], &pod); !s.ok()) {
      ++out.skipped_items;
      out.errors.push_back(absl::StrCat("items[", i, "]: ", s.message()));
      continue;
    }
    out.pods.push_back(std::move(pod));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<KubeletClient>> KubeletClient::Create(Options options) {
  if (options.url.empty()) {
    const char* node = std::getenv(options.node_name_env.c_str());
    if (node == nullptr || *node == '\0') {
      return absl::FailedPreconditionError(
          absl::StrCat("kubelet url not given and $", options.node_name_env, " is not set"));
    }
    options.url = absl::StrCat("https://", node, ":10250/pods");
  }
  if (!absl::StartsWith(options.url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubelet url '", options.url, "': must be https"));
  }
  static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);  // once, thread-safe
  if (init != CURLE_OK) return absl::InternalError("curl_global_init failed");
  return std::unique_ptr<KubeletClient>(new KubeletClient(std::move(options)));
}

KubeletClient::~KubeletClient() = default;

absl::StatusOr<KubeletPodList> KubeletClient::ListPods() {
  std::string token;
  {
    std::ifstream f(options_.token_path);
    if (!f) {
      return absl::FailedPreconditionError(
          absl::StrCat("kubelet: cannot read token file ", options_.token_path));
    }
    std::stringstream ss;
    ss << f.rdbuf();
    token = std::string(absl::StripAsciiWhitespace(ss.str()));
  }
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return absl::InternalError("curl_easy_init failed");
  std::string body;
  std::pair<std::string*, size_t> sink{&body, options_.max_body_bytes};
  std::string auth = absl::StrCat("Authorization: Bearer ", token);
  std::unique_ptr<curl_slist, SlistDeleter> headers(curl_slist_append(nullptr, auth.c_str()));
  headers.reset(curl_slist_append(headers.release(), "Accept: application/json"));
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_path.c_str());
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_WRITE_ERROR && body.size() + CURL_MAX_WRITE_SIZE > options_.max_body_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "kubelet ", options_.url, ": reply larger than ", options_.max_body_bytes, " bytes"));
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("kubelet ", options_.url, ": ", errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  long http = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
  if (http == 401 || http == 403) {
    return absl::PermissionDeniedError(absl::StrCat("kubelet ", options_.url, ": HTTP ", http));
  }
  if (http != 200) {
    return absl::UnavailableError(absl::StrCat("kubelet ", options_.url, ": HTTP ", http));
  }
  return ParseKubeletPods(body);
}

absl::Status KubeletPodCache::Refresh() {
  absl::StatusOr<KubeletPodList> list = fetch_();
  absl::MutexLock l(&mu_);
  ++stats_.refreshes_total;
  if (!list.ok()) {
    ++stats_.refresh_failures_total;
    return list.status();
  }
  stats_.skipped_items_total += list->skipped_items;
  auto index = std::make_shared<std::unordered_map<std::string, KubeletPod>>();
  for (KubeletPod& p : list->pods) {
    std::string uid = p.uid;
    (*index)[uid] = std::move(p);
  }
  stats_.pods = index->size();
  pods_ = std::move(index);
  return absl::OkStatus();
}

std::optional<KubeletPod> KubeletPodCache::Pod(absl::string_view pod_uid) const {
  absl::MutexLock l(&mu_);
  if (pods_ == nullptr) return std::nullopt;
  auto it = pods_->find(std::string(pod_uid));
  if (it == pods_->end()) return std::nullopt;
  return it->second;
}

std::optional<KubeletContainer> KubeletPodCache::Container(absl::string_view pod_uid,
                                                           absl::string_view container_name) const {
  absl::MutexLock l(&mu_);
  if (pods_ == nullptr) return std::nullopt;
  auto it = pods_->find(std::string(pod_uid));
  if (it == pods_->end()) return std::nullopt;
  for (const KubeletContainer& c : it->second.containers) {
    if (c.name == container_name) return c;
  }
  return std::nullopt;
}

KubeletPodCache::Stats KubeletPodCache::stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

}  // namespace tapio::attrib
