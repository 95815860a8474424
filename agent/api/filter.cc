#include "agent/api/filter.h"

#include <algorithm>
#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tapio::api {
namespace {

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool IsNameChar(char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; }
bool IsKeyChar(char c) { return IsNameChar(c) || c == '/'; }

// Kubernetes "qualified name" value rules (apimachinery validation.IsQualifiedName /
// IsValidLabelValue): at most 63 characters, [A-Za-z0-9._-], alphanumeric at both ends.
absl::Status ValidateName(absl::string_view name, absl::string_view what, bool allow_empty) {
  if (name.empty()) {
    if (allow_empty) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("empty ", what));
  }
  if (name.size() > 63) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", name, "' is longer than 63 characters"));
  }
  if (!IsAlnum(name.front()) || !IsAlnum(name.back()) ||
      !std::all_of(name.begin(), name.end(), IsNameChar)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " '", name,
        "' must consist of alphanumerics, '-', '_' or '.', and start and end alphanumeric"));
  }
  return absl::OkStatus();
}

absl::Status ValidateKey(absl::string_view key) {
  const size_t slash = key.find('/');
  if (slash == absl::string_view::npos) return ValidateName(key, "label key", false);
  absl::string_view prefix = key.substr(0, slash);
  absl::string_view name = key.substr(slash + 1);
  if (prefix.empty() || prefix.size() > 253) {
    return absl::InvalidArgumentError(
        absl::StrCat("label key prefix of '", key, "' must be 1..253 characters"));
  }
  for (absl::string_view part : absl::StrSplit(prefix, '.')) {
    if (part.empty() || !IsAlnum(part.front()) || !IsAlnum(part.back()) ||
        !std::all_of(part.begin(), part.end(),
                     [](char c) { return (IsAlnum(c) && !std::isupper(c)) || c == '-'; })) {
      return absl::InvalidArgumentError(
          absl::StrCat("label key prefix of '", key, "' must be a lowercase DNS subdomain"));
    }
  }
  return ValidateName(name, "label key name", false);
}

const std::string* FindLabel(const LabelSelector::Labels& labels, absl::string_view key) {
  for (const auto& [k, v] : labels) {
    if (k == key) return &v;
  }
  return nullptr;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// LabelSelector

class LabelSelectorParser {
 public:
  explicit LabelSelectorParser(absl::string_view text) : text_(text) {}

  absl::StatusOr<LabelSelector> Parse() {
    LabelSelector selector;
    SkipSpace();
    if (AtEnd()) return selector;
    while (true) {
      auto requirement = ParseRequirement();
      if (!requirement.ok()) return requirement.status();
      selector.requirements_.push_back(*std::move(requirement));
      SkipSpace();
      if (AtEnd()) break;
      if (Peek() != ',') return Unexpected("',' between requirements");
      ++pos_;
    }
    return selector;
  }

 private:
  using Op = LabelSelector::Op;

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }
  void SkipSpace() {
    while (!AtEnd() && std::isspace(static_cast<unsigned char>(Peek()))) ++pos_;
  }
  absl::Status Unexpected(absl::string_view expected) const {
    if (AtEnd()) return absl::InvalidArgumentError(absl::StrCat("expected ", expected, " at end"));
    return absl::InvalidArgumentError(absl::StrCat("expected ", expected, ", found '",
                                                   text_.substr(pos_, 1), "' at offset ", pos_));
  }
  absl::string_view Word(bool (*pred)(char)) {
    const size_t start = pos_;
    while (!AtEnd() && pred(Peek())) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  bool Consume(absl::string_view token) {
    if (text_.substr(pos_, token.size()) != token) return false;
    pos_ += token.size();
    return true;
  }

  absl::StatusOr<LabelSelector::Requirement> ParseRequirement() {
    LabelSelector::Requirement req;
    SkipSpace();
    const bool negated = Consume("!");
    if (negated) SkipSpace();
    absl::string_view key = Word(IsKeyChar);
    if (key.empty()) return Unexpected("a label key");
    if (absl::Status s = ValidateKey(key); !s.ok()) return s;
    req.key = std::string(key);
    SkipSpace();
    if (negated) {
      req.op = Op::kDoesNotExist;
      return req;
    }
    if (AtEnd() || Peek() == ',') {
      req.op = Op::kExists;
      return req;
    }
    bool binary = true;
    if (Consume("==") || Consume("=")) {
      req.op = Op::kEquals;
    } else if (Consume("!=")) {
      req.op = Op::kNotEquals;
    } else {
      binary = false;
    }
    if (binary) {
      SkipSpace();
      absl::string_view value = Word(IsNameChar);
      if (absl::Status s = ValidateName(value, "label value", true); !s.ok()) return s;
      req.values.emplace_back(value);
      return req;
    }
    absl::string_view op_word = Word(IsAlnum);
    if (op_word == "in") {
      req.op = Op::kIn;
    } else if (op_word == "notin") {
      req.op = Op::kNotIn;
    } else {
      pos_ -= op_word.size();
      return Unexpected("'=', '==', '!=', 'in', 'notin', ',' or end after a key");
    }
    SkipSpace();
    if (!Consume("(")) return Unexpected(absl::StrCat("'(' after '", op_word, "'"));
    while (true) {
      SkipSpace();
      absl::string_view value = Word(IsNameChar);
      if (absl::Status s = ValidateName(value, "label value", true); !s.ok()) return s;
      SkipSpace();
      if (value.empty() && !AtEnd() && Peek() == ')' && req.values.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("empty value set for '", req.key, " ", op_word, "'"));
      }
      req.values.emplace_back(value);
      if (Consume(",")) continue;
      if (Consume(")")) break;
      return Unexpected("',' or ')' in a value set");
    }
    return req;
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

absl::StatusOr<LabelSelector> LabelSelector::Parse(absl::string_view text) {
  return LabelSelectorParser(text).Parse();
}

bool LabelSelector::Matches(const Labels& labels) const {
  for (const Requirement& req : requirements_) {
    const std::string* value = FindLabel(labels, req.key);
    bool ok = false;
    switch (req.op) {
      case Op::kExists:
        ok = value != nullptr;
        break;
      case Op::kDoesNotExist:
        ok = value == nullptr;
        break;
      case Op::kEquals:
      case Op::kIn:
        ok = value != nullptr &&
             std::find(req.values.begin(), req.values.end(), *value) != req.values.end();
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        ok = value == nullptr ||
             std::find(req.values.begin(), req.values.end(), *value) == req.values.end();
        break;
    }
    if (!ok) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// GlobPattern

bool GlobPattern::Token::MatchesChar(unsigned char c) const {
  switch (type) {
    case Type::kLiteral:
      return static_cast<unsigned char>(literal) == c;
    case Type::kAnyChar:
      return true;
    case Type::kStar:
      return false;  // handled by the matcher
    case Type::kClass: {
      bool in = false;
      for (const auto& [lo, hi] : ranges) {
        if (c >= lo && c <= hi) {
          in = true;
          break;
        }
      }
      return in != negated;
    }
  }
  return false;
}

absl::StatusOr<GlobPattern> GlobPattern::Compile(absl::string_view pattern) {
  if (pattern.empty()) return absl::InvalidArgumentError("empty pattern");
  GlobPattern glob;
  glob.pattern_ = std::string(pattern);
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    Token token;
    token.type = Token::Type::kLiteral;
    if (c == '*') {
      if (!glob.tokens_.empty() && glob.tokens_.back().type == Token::Type::kStar) continue;
      token.type = Token::Type::kStar;
    } else if (c == '?') {
      token.type = Token::Type::kAnyChar;
    } else if (c == '\\') {
      if (i + 1 == pattern.size()) {
        return absl::InvalidArgumentError(absl::StrCat("pattern '", pattern, "' ends with '\\'"));
      }
      token.literal = pattern[++i];
    } else if (c == '[') {
      token.type = Token::Type::kClass;
      size_t j = i + 1;
      if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) {
        token.negated = true;
        ++j;
      }
      bool first = true;
      while (j < pattern.size() && (pattern[j] != ']' || first)) {
        first = false;
        unsigned char lo = static_cast<unsigned char>(pattern[j]);
        unsigned char hi = lo;
        if (j + 2 < pattern.size() && pattern[j + 1] == '-' && pattern[j + 2] != ']') {
          hi = static_cast<unsigned char>(pattern[j + 2]);
          if (hi < lo) {
            return absl::InvalidArgumentError(absl::StrCat(
                "pattern '", pattern, "' has a reversed range '", pattern.substr(j, 3), "'"));
          }
          j += 2;
        }
        token.ranges.emplace_back(lo, hi);
        ++j;
      }
      if (j >= pattern.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("pattern '", pattern, "' has an unterminated '[' at offset ", i));
      }
      i = j;  // at ']'
    } else {
      token.literal = c;
    }
    glob.tokens_.push_back(std::move(token));
  }
  return glob;
}

bool GlobPattern::Matches(absl::string_view text) const {
  // Iterative matcher with backtracking to the last star: O(tokens * text) worst case.
  size_t t = 0, s = 0;
  size_t star_t = std::string::npos, star_s = 0;
  while (s < text.size()) {
    if (t < tokens_.size() && tokens_[t].type == Token::Type::kStar) {
      star_t = t++;
      star_s = s;
    } else if (t < tokens_.size() && tokens_[t].MatchesChar(static_cast<unsigned char>(text[s]))) {
      ++t;
      ++s;
    } else if (star_t != std::string::npos) {
      t = star_t + 1;
      s = ++star_s;
    } else {
      return false;
    }
  }
  while (t < tokens_.size() && tokens_[t].type == Token::Type::kStar) ++t;
  return t == tokens_.size();
}

// ---------------------------------------------------------------------------------------------
// CompiledSelector / EventFilter

absl::StatusOr<CompiledSelector> CompiledSelector::Compile(const SelectorSpec& spec,
                                                           absl::string_view field) {
  CompiledSelector out;
  for (size_t i = 0; i < spec.namespaces.size(); ++i) {
    if (spec.namespaces[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".namespaces[", i, "]: empty"));
    }
  }
  out.namespaces_ = spec.namespaces;
  for (size_t i = 0; i < spec.pod_name_patterns.size(); ++i) {
    auto glob = GlobPattern::Compile(spec.pod_name_patterns[i]);
    if (!glob.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".pod_name_patterns[", i, "]: ", glob.status().message()));
    }
    out.pod_name_patterns_.push_back(*std::move(glob));
  }
  for (size_t i = 0; i < spec.container_names.size(); ++i) {
    if (spec.container_names[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".container_names[", i, "]: empty"));
    }
  }
  out.container_names_ = spec.container_names;
  auto labels = LabelSelector::Parse(spec.label_selector);
  if (!labels.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".label_selector: ", labels.status().message()));
  }
  out.labels_ = *std::move(labels);
  for (size_t i = 0; i < spec.event_kinds.size(); ++i) {
    const auto index = static_cast<unsigned>(spec.event_kinds[i]);
    if (index >= static_cast<unsigned>(kEventKindCount)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".event_types[", i, "]: unknown event type ", index));
    }
    out.kind_mask_ |= 1u << index;
  }
  return out;
}

bool CompiledSelector::matches_everything() const {
  return namespaces_.empty() && pod_name_patterns_.empty() && container_names_.empty() &&
         labels_.empty() && kind_mask_ == 0;
}

bool CompiledSelector::matches_every_identity() const {
  return namespaces_.empty() && pod_name_patterns_.empty() && container_names_.empty() &&
         labels_.empty();
}

bool CompiledSelector::MatchesIdentity(const WorkloadIdentity& id) const {
  if (!namespaces_.empty() &&
      std::find(namespaces_.begin(), namespaces_.end(), id.pod_namespace) == namespaces_.end()) {
    return false;
  }
  if (!container_names_.empty() && std::find(container_names_.begin(), container_names_.end(),
                                             id.container_name) == container_names_.end()) {
    return false;
  }
  if (!pod_name_patterns_.empty() &&
      std::none_of(pod_name_patterns_.begin(), pod_name_patterns_.end(),
                   [&](const GlobPattern& g) { return g.Matches(id.pod_name); })) {
    return false;
  }
  return labels_.Matches(id.labels);
}

bool CompiledSelector::Matches(const Event& event) const {
  if (kind_mask_ != 0 && (kind_mask_ & (1u << static_cast<unsigned>(event.kind()))) == 0) {
    return false;
  }
  static const WorkloadIdentity kNoIdentity;
  return MatchesIdentity(event.identity ? *event.identity : kNoIdentity);
}

absl::StatusOr<EventFilter> EventFilter::Compile(const FilterSpec& spec) {
  EventFilter filter;
  for (size_t i = 0; i < spec.allow.size(); ++i) {
    auto sel = CompiledSelector::Compile(spec.allow[i], absl::StrCat("allow[", i, "]"));
    if (!sel.ok()) return sel.status();
    filter.allow_.push_back(*std::move(sel));
  }
  for (size_t i = 0; i < spec.deny.size(); ++i) {
    const std::string field = absl::StrCat("deny[", i, "]");
    auto sel = CompiledSelector::Compile(spec.deny[i], field);
    if (!sel.ok()) return sel.status();
    if (sel->matches_everything()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": an empty deny selector would deny every event"));
    }
    filter.deny_.push_back(*std::move(sel));
  }
  if (spec.min_severity.has_value()) filter.min_severity_ = *spec.min_severity;
  return filter;
}

Interest EventFilter::interest() const {
  Interest interest{0, min_severity_};
  if (allow_.empty()) interest.kinds = Interest::kAllKinds;
  for (const CompiledSelector& s : allow_) {
    interest.kinds |= s.kind_mask() == 0 ? Interest::kAllKinds : s.kind_mask();
  }
  for (const CompiledSelector& s : deny_) {
    if (s.matches_every_identity()) interest.kinds &= ~s.kind_mask();
  }
  return interest;
}

bool EventFilter::Matches(const Event& event) const {
  if (event.severity < min_severity_) return false;
  if (!allow_.empty() && std::none_of(allow_.begin(), allow_.end(), [&](const CompiledSelector& s) {
        return s.Matches(event);
      })) {
    return false;
  }
  return std::none_of(deny_.begin(), deny_.end(),
                      [&](const CompiledSelector& s) { return s.Matches(event); });
}

}  // namespace tapio::api
