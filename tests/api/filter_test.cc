// Subscription filters as pure code: label selectors, globs, allow/deny composition.
#include "agent/api/filter.h"

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tapio::api {
namespace {

using ::testing::HasSubstr;

LabelSelector::Labels Labels(std::initializer_list<std::pair<std::string, std::string>> l) {
  return LabelSelector::Labels(l);
}

bool SelectorMatches(const std::string& text, const LabelSelector::Labels& labels) {
  auto s = LabelSelector::Parse(text);
  EXPECT_TRUE(s.ok()) << text << ": " << s.status();
  return s.ok() && s->Matches(labels);
}

TEST(LabelSelectorTest, EmptySelectorMatchesEverything) {
  EXPECT_TRUE(SelectorMatches("", Labels({})));
  EXPECT_TRUE(SelectorMatches("   ", Labels({{"a", "b"}})));
}

TEST(LabelSelectorTest, EqualityNeedsThePresentValue) {
  EXPECT_TRUE(SelectorMatches("app=web", Labels({{"app", "web"}})));
  EXPECT_TRUE(SelectorMatches("app==web", Labels({{"app", "web"}})));
  EXPECT_FALSE(SelectorMatches("app=web", Labels({{"app", "db"}})));
  EXPECT_FALSE(SelectorMatches("app=web", Labels({})));
}

TEST(LabelSelectorTest, InequalityMatchesAbsentLabelsLikeKubernetes) {
  EXPECT_TRUE(SelectorMatches("app!=web", Labels({})));
  EXPECT_TRUE(SelectorMatches("app!=web", Labels({{"app", "db"}})));
  EXPECT_FALSE(SelectorMatches("app!=web", Labels({{"app", "web"}})));
}

TEST(LabelSelectorTest, SetOperators) {
  const auto web = Labels({{"app", "web"}, {"tier", "front"}});
  EXPECT_TRUE(SelectorMatches("app in (db, web)", web));
  EXPECT_FALSE(SelectorMatches("app in (db,cache)", web));
  EXPECT_FALSE(SelectorMatches("missing in (x)", web));
  EXPECT_TRUE(SelectorMatches("app notin (db)", web));
  EXPECT_FALSE(SelectorMatches("app notin (web,db)", web));
  EXPECT_TRUE(SelectorMatches("missing notin (x)", web));
}

TEST(LabelSelectorTest, ExistenceAndAbsence) {
  const auto l = Labels({{"app", "web"}});
  EXPECT_TRUE(SelectorMatches("app", l));
  EXPECT_FALSE(SelectorMatches("!app", l));
  EXPECT_TRUE(SelectorMatches("!other", l));
  EXPECT_FALSE(SelectorMatches("other", l));
}

TEST(LabelSelectorTest, RequirementsAreAnded) {
  const auto l = Labels({{"app", "web"}, {"env", "prod"}, {"example.com/team", "a"}});
  EXPECT_TRUE(SelectorMatches("app=web,env in (prod,stage),!canary,example.com/team=a", l));
  EXPECT_FALSE(SelectorMatches("app=web,env=stage", l));
}

TEST(LabelSelectorTest, MalformedSelectorsAreRejectedWithAReason) {
  for (const char* bad :
       {"app in (", "app in ()", "app in x", "=web", "app=web,", "app=web extra", "-app=web",
        "app=we b", "a/b/c=x", "Upper.Case/x=1", "app in (a b)", "!", "app ~ web"}) {
    auto s = LabelSelector::Parse(bad);
    EXPECT_FALSE(s.ok()) << "accepted: '" << bad << "'";
    if (!s.ok()) {
      EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_FALSE(s.status().message().empty());
    }
  }
}

TEST(LabelSelectorTest, EmptyValueIsAValidValue) {
  // Kubernetes allows "a=" (label present with the empty value).
  EXPECT_TRUE(SelectorMatches("a=", Labels({{"a", ""}})));
  EXPECT_FALSE(SelectorMatches("a=", Labels({{"a", "x"}})));
}

TEST(LabelSelectorTest, KeyLongerThan63IsRejected) {
  EXPECT_FALSE(LabelSelector::Parse(std::string(64, 'k') + "=v").ok());
  EXPECT_TRUE(LabelSelector::Parse(std::string(63, 'k') + "=v").ok());
}

bool GlobMatches(const std::string& pattern, const std::string& text) {
  auto g = GlobPattern::Compile(pattern);
  EXPECT_TRUE(g.ok()) << pattern << ": " << g.status();
  return g.ok() && g->Matches(text);
}

TEST(GlobPatternTest, StarsAndQuestionMarks) {
  EXPECT_TRUE(GlobMatches("web-*", "web-7d9f-abcde"));
  EXPECT_TRUE(GlobMatches("web-*", "web-"));
  EXPECT_FALSE(GlobMatches("web-*", "api-1"));
  EXPECT_TRUE(GlobMatches("*-db-?", "prod-db-1"));
  EXPECT_FALSE(GlobMatches("*-db-?", "prod-db-12"));
  EXPECT_TRUE(GlobMatches("*", ""));
  EXPECT_TRUE(GlobMatches("a*b*c", "a-xx-b-yy-c"));
  EXPECT_FALSE(GlobMatches("a*b*c", "a-xx-c-yy-b"));
  EXPECT_TRUE(GlobMatches("exact", "exact"));
  EXPECT_FALSE(GlobMatches("exact", "exact2"));
}

TEST(GlobPatternTest, ClassesAndEscapes) {
  EXPECT_TRUE(GlobMatches("pod-[0-9]", "pod-7"));
  EXPECT_FALSE(GlobMatches("pod-[0-9]", "pod-x"));
  EXPECT_TRUE(GlobMatches("pod-[!0-9]", "pod-x"));
  EXPECT_FALSE(GlobMatches("pod-[^0-9]", "pod-3"));
  EXPECT_TRUE(GlobMatches("[]x]", "]"));
  EXPECT_TRUE(GlobMatches("a\\*", "a*"));
  EXPECT_FALSE(GlobMatches("a\\*", "ab"));
}

TEST(GlobPatternTest, InvalidPatternsAreRejected) {
  for (const char* bad : {"", "pod-[0-9", "trailing\\", "[z-a]"}) {
    EXPECT_FALSE(GlobPattern::Compile(bad).ok()) << "accepted: '" << bad << "'";
  }
}

std::shared_ptr<const WorkloadIdentity> Pod(const std::string& ns, const std::string& pod,
                                            const std::string& container,
                                            LabelSelector::Labels labels = {}) {
  auto id = std::make_shared<WorkloadIdentity>();
  id->pod_namespace = ns;
  id->pod_name = pod;
  id->container_name = container;
  id->labels = std::move(labels);
  return id;
}

Event MakeEvent(std::shared_ptr<const WorkloadIdentity> id, EventPayload payload,
                Severity severity = Severity::kInfo) {
  Event e;
  e.identity = std::move(id);
  e.payload = std::move(payload);
  e.severity = severity;
  return e;
}

EventFilter MustCompile(const FilterSpec& spec) {
  auto f = EventFilter::Compile(spec);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *std::move(f) : *EventFilter::Compile(FilterSpec{});
}

TEST(EventFilterTest, NoSelectorsAcceptEverything) {
  EventFilter f = MustCompile(FilterSpec{});
  EXPECT_TRUE(f.Matches(MakeEvent(Pod("", "", ""), MemoryUsage{}, Severity::kDebug)));
  EXPECT_TRUE(f.Matches(MakeEvent(nullptr, OomKill{})));
}

TEST(EventFilterTest, AllowFieldsAreAndedAndEntriesOred) {
  FilterSpec spec;
  SelectorSpec allow;
  allow.namespaces = {"prod", "stage"};
  allow.pod_name_patterns = {"web-*"};
  allow.event_kinds = {EventKind::kOomKill, EventKind::kOomPrediction};
  spec.allow.push_back(allow);
  EventFilter f = MustCompile(spec);
  EXPECT_TRUE(f.Matches(MakeEvent(Pod("prod", "web-1", "c"), OomKill{})));
  EXPECT_TRUE(f.Matches(MakeEvent(Pod("stage", "web-2", "c"), OomPrediction{})));
  EXPECT_FALSE(f.Matches(MakeEvent(Pod("dev", "web-1", "c"), OomKill{})));       // namespace
  EXPECT_FALSE(f.Matches(MakeEvent(Pod("prod", "api-1", "c"), OomKill{})));      // pod
  EXPECT_FALSE(f.Matches(MakeEvent(Pod("prod", "web-1", "c"), MemoryUsage{})));  // type
}

TEST(EventFilterTest, SeveralAllowSelectorsAreOred) {
  FilterSpec spec;
  SelectorSpec a, b;
  a.namespaces = {"prod"};
  b.container_names = {"sidecar"};
  spec.allow = {a, b};
  EventFilter f = MustCompile(spec);
  EXPECT_TRUE(f.Matches(MakeEvent(Pod("prod", "p", "app"), MemoryUsage{})));
  EXPECT_TRUE(f.Matches(MakeEvent(Pod("dev", "p", "sidecar"), MemoryUsage{})));
  EXPECT_FALSE(f.Matches(MakeEvent(Pod("dev", "p", "app"), MemoryUsage{})));
}

TEST(EventFilterTest, DenyWinsOverAllow) {
  FilterSpec spec;
  SelectorSpec allow, deny_ns, deny_labels;
  allow.namespaces = {"prod"};
  deny_labels.label_selector = "canary=true";
  deny_ns.pod_name_patterns = {"*-debug"};
  spec.allow = {allow};
  spec.deny = {deny_ns, deny_labels};
  EventFilter f = MustCompile(spec);
  EXPECT_TRUE(f.Matches(MakeEvent(Pod("prod", "web", "c", {{"canary", "false"}}), OomKill{})));
  EXPECT_FALSE(f.Matches(MakeEvent(Pod("prod", "web", "c", {{"canary", "true"}}), OomKill{})));
  EXPECT_FALSE(f.Matches(MakeEvent(Pod("prod", "web-debug", "c"), OomKill{})));
}

TEST(EventFilterTest, DenyAloneRemovesOnlyWhatItMatches) {
  FilterSpec spec;
  SelectorSpec deny;
  deny.namespaces = {"kube-system"};
  deny.event_kinds = {EventKind::kMemoryUsage};
  spec.deny = {deny};
  EventFilter f = MustCompile(spec);
  EXPECT_FALSE(f.Matches(MakeEvent(Pod("kube-system", "p", "c"), MemoryUsage{})));
  EXPECT_TRUE(f.Matches(MakeEvent(Pod("kube-system", "p", "c"), OomKill{})));
  EXPECT_TRUE(f.Matches(MakeEvent(Pod("prod", "p", "c"), MemoryUsage{})));
}

TEST(EventFilterTest, MinimumSeverityKeepsThatLevelAndAbove) {
  FilterSpec spec;
  spec.min_severity = Severity::kWarning;
  EventFilter f = MustCompile(spec);
  EXPECT_FALSE(f.Matches(MakeEvent(Pod("a", "b", "c"), MemoryUsage{}, Severity::kInfo)));
  EXPECT_TRUE(f.Matches(MakeEvent(Pod("a", "b", "c"), OomPrediction{}, Severity::kWarning)));
  EXPECT_TRUE(f.Matches(MakeEvent(Pod("a", "b", "c"), OomKill{}, Severity::kCritical)));
}

TEST(EventFilterTest, LabelSelectorAppliesToPodLabels) {
  FilterSpec spec;
  SelectorSpec allow;
  allow.label_selector = "app in (web,api),tier!=batch";
  spec.allow = {allow};
  EventFilter f = MustCompile(spec);
  EXPECT_TRUE(f.Matches(MakeEvent(Pod("n", "p", "c", {{"app", "web"}}), OomKill{})));
  EXPECT_FALSE(
      f.Matches(MakeEvent(Pod("n", "p", "c", {{"app", "web"}, {"tier", "batch"}}), OomKill{})));
  EXPECT_FALSE(f.Matches(MakeEvent(Pod("n", "p", "c"), OomKill{})));  // plain cgroup, no labels
}

TEST(EventFilterTest, ErrorsNameTheField) {
  FilterSpec spec;
  SelectorSpec ok, bad;
  bad.label_selector = "app in (";
  spec.allow = {ok, bad};
  auto f = EventFilter::Compile(spec);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("allow[1].label_selector: "));

  FilterSpec spec2;
  SelectorSpec bad_glob;
  bad_glob.pod_name_patterns = {"ok-*", "pod-[0-9"};
  spec2.deny = {bad_glob};
  f = EventFilter::Compile(spec2);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("deny[0].pod_name_patterns[1]: "));

  FilterSpec spec3;
  SelectorSpec bad_kind;
  bad_kind.event_kinds = {static_cast<EventKind>(42)};
  spec3.allow = {bad_kind};
  f = EventFilter::Compile(spec3);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("allow[0].event_types[0]"));

  FilterSpec spec4;
  SelectorSpec empty_ns;
  empty_ns.namespaces = {""};
  spec4.allow = {empty_ns};
  f = EventFilter::Compile(spec4);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("allow[0].namespaces[0]"));
}

TEST(EventFilterTest, EmptyDenySelectorIsRefused) {
  FilterSpec spec;
  spec.deny = {SelectorSpec{}};
  auto f = EventFilter::Compile(spec);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("deny[0]"));
}

TEST(CompiledSelectorTest, IdentityMatchIgnoresEventKinds) {
  SelectorSpec spec;
  spec.namespaces = {"prod"};
  spec.event_kinds = {EventKind::kOomKill};
  auto s = CompiledSelector::Compile(spec, "selector");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->has_event_kinds());
  EXPECT_TRUE(s->MatchesIdentity(*Pod("prod", "p", "c")));
  EXPECT_FALSE(s->MatchesIdentity(*Pod("dev", "p", "c")));
}

TEST(EventFilterTest, InterestIsTheKindsAndSeverityItCanMatchAtAll) {
  EXPECT_EQ(MustCompile(FilterSpec{}).interest().kinds, Interest::kAllKinds);
  FilterSpec spec;
  SelectorSpec ooms, web;
  ooms.event_kinds = {EventKind::kOomKill};
  web.pod_name_patterns = {"web-*"};
  web.event_kinds = {EventKind::kOomPrediction, EventKind::kRssChange};
  spec.allow = {ooms, web};
  SelectorSpec no_rss, no_usage_in_prod;
  no_rss.event_kinds = {EventKind::kRssChange};  // kinds only: removes RSS changes everywhere
  no_usage_in_prod.namespaces = {"prod"};
  no_usage_in_prod.event_kinds = {EventKind::kOomPrediction};  // one namespace: keeps the kind
  spec.deny = {no_rss, no_usage_in_prod};
  spec.min_severity = Severity::kWarning;
  const Interest i = MustCompile(spec).interest();
  EXPECT_TRUE(i.Admits(EventKind::kOomKill, Severity::kCritical));
  EXPECT_TRUE(i.Admits(EventKind::kOomPrediction, Severity::kWarning));
  EXPECT_FALSE(i.Admits(EventKind::kOomPrediction, Severity::kInfo));
  EXPECT_FALSE(i.Admits(EventKind::kRssChange, Severity::kCritical));
  EXPECT_FALSE(i.Admits(EventKind::kMemoryUsage, Severity::kCritical));
  // A selector without kinds allows every kind.
  FilterSpec any;
  any.allow = {web, SelectorSpec{{"prod"}, {}, {}, "", {}}};
  EXPECT_EQ(MustCompile(any).interest().kinds, Interest::kAllKinds);
}

}  // namespace
}  // namespace tapio::api
