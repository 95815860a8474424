// Subscription filters: which events a subscriber wants. Pure code, plain C++ types: the gRPC edge
// (convert.h) turns a tapio.v1.SubscribeRequest into a FilterSpec; EventFilter::Compile validates
// it once, and EventFilter::Matches then runs on the publish path for every event and subscriber
// (under the EventBus publish lock), so it allocates nothing and does no I/O.
//
// Semantics (documented for clients in api/tapio/v1/service.proto and docs/api.md):
//  - A selector matches an event if every non-empty field matches (AND); inside one repeated field,
//    any entry may match (OR). An all-empty selector matches every event.
//  - An event passes if its severity >= min_severity, it matches at least one allow selector (or
//    there is none), and it matches no deny selector.
#ifndef TAPIO_AGENT_API_FILTER_H_
#define TAPIO_AGENT_API_FILTER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/core/event.h"
#include "agent/core/event_bus.h"

namespace tapio::api {

// A Kubernetes label selector (the string form of apimachinery's labels.Parse):
// comma-separated requirements, all of which must hold:
//   key=value, key==value   the label is present with that value
//   key!=value              the label is absent or has another value
//   key in (v1,v2)          present with one of the values
//   key notin (v1,v2)       absent or none of the values
//   key                     present
//   !key                    absent
// Keys are [prefix/]name (name: 1..63 of [A-Za-z0-9._-], starting and ending alphanumeric;
// prefix: a DNS subdomain of at most 253 characters); values are 0..63 characters of the same set.
class LabelSelector {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  // The empty string is the empty selector, which matches everything. Errors are
  // INVALID_ARGUMENT with a message saying what is wrong and where (without a field name).
  static absl::StatusOr<LabelSelector> Parse(absl::string_view text);

  bool Matches(const Labels& labels) const;
  bool empty() const { return requirements_.empty(); }
  size_t size() const { return requirements_.size(); }

 private:
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };
  struct Requirement {
    std::string key;
    Op op = Op::kExists;
    std::vector<std::string> values;  // one for kEquals/kNotEquals, >= 1 for kIn/kNotIn
  };
  friend class LabelSelectorParser;

  std::vector<Requirement> requirements_;
};

// A shell-style glob (the fnmatch(3) subset without FNM_PATHNAME): '*' any run (also empty),
// '?' one character, '[abc]', '[a-z]', '[!a]' or '[^a]' one character of / not of a class,
// '\' makes the next character literal. Bytes, not Unicode characters.
class GlobPattern {
 public:
  // Errors (INVALID_ARGUMENT): empty pattern, unterminated '[', trailing '\', reversed range.
  static absl::StatusOr<GlobPattern> Compile(absl::string_view pattern);

  bool Matches(absl::string_view text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Token {
    enum class Type : uint8_t { kLiteral, kAnyChar, kStar, kClass };
    Type type = Type::kLiteral;
    char literal = 0;
    bool negated = false;
    std::vector<std::pair<unsigned char, unsigned char>> ranges;  // inclusive
    bool MatchesChar(unsigned char c) const;
  };

  std::string pattern_;
  std::vector<Token> tokens_;
};

// Plain C++ mirror of tapio.v1.Selector.
struct SelectorSpec {
  std::vector<std::string> namespaces;
  std::vector<std::string> pod_name_patterns;
  std::vector<std::string> container_names;
  std::string label_selector;
  std::vector<EventKind> event_kinds;
};

// Plain C++ mirror of the filter part of tapio.v1.SubscribeRequest.
struct FilterSpec {
  std::vector<SelectorSpec> allow;
  std::vector<SelectorSpec> deny;
  std::optional<Severity> min_severity;  // nullopt: every severity
};

// A validated SelectorSpec.
class CompiledSelector {
 public:
  // `field` names the selector in error messages, e.g. "allow[0]"; errors read
  // "allow[0].label_selector: ...".
  static absl::StatusOr<CompiledSelector> Compile(const SelectorSpec& spec,
                                                  absl::string_view field);

  bool Matches(const Event& event) const;
  // Ignores event_kinds: for snapshots (ListContainers), which are about identities, not events.
  bool MatchesIdentity(const WorkloadIdentity& identity) const;
  bool has_event_kinds() const { return kind_mask_ != 0; }
  uint32_t kind_mask() const { return kind_mask_; }  // 0 = any kind
  bool matches_everything() const;
  // No namespace, pod, container or label constraint: only the event kinds (if any) decide.
  bool matches_every_identity() const;

 private:
  std::vector<std::string> namespaces_;
  std::vector<GlobPattern> pod_name_patterns_;
  std::vector<std::string> container_names_;
  LabelSelector labels_;
  uint32_t kind_mask_ = 0;  // bit per EventKind; 0 = any kind
};

class EventFilter {
 public:
  // Validates every field; the first error names its field ("deny[1].pod_name_patterns[0]: ...").
  // A deny selector with no field set would deny everything, and is refused as a likely mistake.
  static absl::StatusOr<EventFilter> Compile(const FilterSpec& spec);

  // Thread-safe (const, no mutable state). Never allocates.
  bool Matches(const Event& event) const;
  // The kinds and severities this filter can match at all (EventBus::Wants): the allowed kinds,
  // less those a kinds-only deny selector removes entirely.
  Interest interest() const;

 private:
  std::vector<CompiledSelector> allow_;
  std::vector<CompiledSelector> deny_;
  Severity min_severity_ = Severity::kDebug;
};

}  // namespace tapio::api

#endif  // TAPIO_AGENT_API_FILTER_H_
