#include "agent/predict/model_params.h"

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tapio::predict {
namespace {

using ::testing::HasSubstr;

TEST(LoadModelParamsTest, EmptyObjectKeepsCompiledInDefaults) {
  absl::StatusOr<ModelParams> p = LoadModelParams("{}");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(ModelParamsToJson(*p), ModelParamsToJson(ModelParams()));
}

TEST(LoadModelParamsTest, ShippedDefaultModelFileEqualsCompiledInDefaults) {
  std::ifstream in(std::string(TAPIO_SOURCE_DIR) + "/models/default.json");
  ASSERT_TRUE(in) << "models/default.json missing";
  std::stringstream buf;
  buf << in.rdbuf();
  absl::StatusOr<ModelParams> p = LoadModelParams(buf.str());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(ModelParamsToJson(*p), ModelParamsToJson(ModelParams()))
      << "regenerate with: tapio-eval --dump_default_model > models/default.json";
}

TEST(LoadModelParamsTest, OverridesApply) {
  absl::StatusOr<ModelParams> p =
      LoadModelParams(R"({"name":"strict","slow_z":5.5,"raise_consecutive":3})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "strict");
  EXPECT_DOUBLE_EQ(p->slow_z, 5.5);
  EXPECT_EQ(p->raise_consecutive, 3);
}

TEST(LoadModelParamsTest, RoundTripsThroughJson) {
  ModelParams in;
  in.fast_tau_s = 3.25;
  in.cadence_idle_ms = 4000;
  absl::StatusOr<ModelParams> out = LoadModelParams(ModelParamsToJson(in));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_DOUBLE_EQ(out->fast_tau_s, 3.25);
  EXPECT_EQ(out->cadence_idle_ms, 4000);
}

TEST(LoadModelParamsTest, UnknownKeyIsRefusedByName) {
  absl::StatusOr<ModelParams> p = LoadModelParams(R"({"slow_zz": 3})");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'slow_zz'"));
  EXPECT_THAT(p.status().message(), HasSubstr("unknown key"));
}

TEST(LoadModelParamsTest, WrongTypeIsRefusedByName) {
  absl::StatusOr<ModelParams> p = LoadModelParams(R"({"fast_horizon_s": "30"})");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'fast_horizon_s'"));
  EXPECT_THAT(p.status().message(), HasSubstr("expected a number"));
}

TEST(LoadModelParamsTest, OutOfRangeIsRefusedByName) {
  absl::StatusOr<ModelParams> p = LoadModelParams(R"({"drop_min_fraction": 1.5})");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'drop_min_fraction'"));
  EXPECT_THAT(p.status().message(), HasSubstr("must be in"));
}

TEST(LoadModelParamsTest, FractionForAnIntegerKeyIsRefused) {
  absl::StatusOr<ModelParams> p = LoadModelParams(R"({"raise_consecutive": 2.5})");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'raise_consecutive'"));
  EXPECT_THAT(p.status().message(), HasSubstr("integer"));
}

TEST(LoadModelParamsTest, InconsistentHorizonsAreRefused) {
  absl::StatusOr<ModelParams> p = LoadModelParams(R"({"fast_horizon_s": 400})");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'fast_horizon_s'"));
}

TEST(LoadModelParamsTest, AStepNoWiderThanThePlateauBandIsRefused) {
  absl::StatusOr<ModelParams> p = LoadModelParams(R"({"step_band_fraction": 0.05})");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'step_band_fraction'"));
  EXPECT_TRUE(LoadModelParams(R"({"step_band_fraction": 0.05, "step_min_fraction": 0})").ok())
      << "the staircase off: its band is not used";
}

TEST(LoadModelParamsTest, NotJsonOrNotAnObjectIsRefused) {
  EXPECT_THAT(LoadModelParams("{slow_z: 1").status().message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(LoadModelParams("[1,2]").status().message(), HasSubstr("object"));
  EXPECT_THAT(LoadModelParams(R"({"name": 3})").status().message(), HasSubstr("'name'"));
}

}  // namespace
}  // namespace tapio::predict
