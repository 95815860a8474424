#include "agent/predict/model_params.h"

#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace tapio::predict {
namespace {

// One entry per tunable: the JSON key, the field, and the accepted closed range.
struct Field {
  const char* key;
  std::variant<double ModelParams::*, int64_t ModelParams::*> member;
  double min;
  double max;
};

const std::vector<Field>& Fields() {
  static const std::vector<Field>* fields = new std::vector<Field>{
      {"fast_tau_s", &ModelParams::fast_tau_s, 0.1, 3600},
      {"slow_tau_s", &ModelParams::slow_tau_s, 1, 86400},
      {"fast_min_samples", &ModelParams::fast_min_samples, 3, 1000},
      {"slow_min_history_s", &ModelParams::slow_min_history_s, 0, 86400},
      {"early_rise_fraction", &ModelParams::early_rise_fraction, 0, 2},
      {"early_min_history_s", &ModelParams::early_min_history_s, 0, 86400},
      {"oversized_early_min_history_s", &ModelParams::oversized_early_min_history_s, 0, 86400},
      {"slow_recent_slope_fraction", &ModelParams::slow_recent_slope_fraction, 0, 1},
      {"fast_z", &ModelParams::fast_z, 0, 100},
      {"slow_z", &ModelParams::slow_z, 0, 100},
      {"fast_error_inflation", &ModelParams::fast_error_inflation, 0.1, 100},
      {"slow_error_inflation", &ModelParams::slow_error_inflation, 0.1, 100},
      {"fast_horizon_s", &ModelParams::fast_horizon_s, 0.1, 86400},
      {"fast_confirm_fraction", &ModelParams::fast_confirm_fraction, 0, 10},
      {"slow_horizon_s", &ModelParams::slow_horizon_s, 0.1, 86400},
      {"drop_min_fraction", &ModelParams::drop_min_fraction, 0.001, 1},
      {"drop_max_duration_s", &ModelParams::drop_max_duration_s, 0.1, 3600},
      {"envelope_idle_s", &ModelParams::envelope_idle_s, 1, 86400},
      {"envelope_min_peaks", &ModelParams::envelope_min_peaks, 3, 8},
      {"envelope_z", &ModelParams::envelope_z, 0, 100},
      {"envelope_horizon_s", &ModelParams::envelope_horizon_s, 0.1, 86400},
      {"breakout_margin_fraction", &ModelParams::breakout_margin_fraction, 0, 1},
      {"step_min_fraction", &ModelParams::step_min_fraction, 0, 1},
      {"step_band_fraction", &ModelParams::step_band_fraction, 0, 1},
      {"step_plateau_s", &ModelParams::step_plateau_s, 0.1, 3600},
      {"step_max_duration_s", &ModelParams::step_max_duration_s, 0.1, 3600},
      {"step_stale_intervals", &ModelParams::step_stale_intervals, 0.1, 1000},
      {"restart_margin_fraction", &ModelParams::restart_margin_fraction, 0, 1},
      {"heap_cap_margin_fraction", &ModelParams::heap_cap_margin_fraction, 0, 1},
      {"psi_some_ref", &ModelParams::psi_some_ref, 0.01, 100},
      {"psi_full_ref", &ModelParams::psi_full_ref, 0.01, 100},
      {"stall_fraction_ref", &ModelParams::stall_fraction_ref, 0.0001, 1},
      {"pressure_slow_z", &ModelParams::pressure_slow_z, 0, 100},
      {"pressure_min_fraction", &ModelParams::pressure_min_fraction, 0, 1},
      {"pressure_fast_z", &ModelParams::pressure_fast_z, 0, 100},
      {"raise_consecutive", &ModelParams::raise_consecutive, 1, 1000},
      {"clear_hold_s", &ModelParams::clear_hold_s, 0, 86400},
      {"oversized_deadline_grace_s", &ModelParams::oversized_deadline_grace_s, 0, 86400},
      {"cooldown_s", &ModelParams::cooldown_s, 0, 86400},
      {"gap_reset_s", &ModelParams::gap_reset_s, 1, 86400},
      {"cadence_idle_ms", &ModelParams::cadence_idle_ms, 10, 3600000},
      {"cadence_default_ms", &ModelParams::cadence_default_ms, 10, 3600000},
      {"cadence_risk_ms", &ModelParams::cadence_risk_ms, 10, 3600000},
      {"cadence_urgent_ms", &ModelParams::cadence_urgent_ms, 10, 3600000},
      {"idle_fraction", &ModelParams::idle_fraction, 0, 1},
      {"jump_trigger_fraction", &ModelParams::jump_trigger_fraction, 0, 1},
  };
  return *fields;
}

absl::Status KeyError(const std::string& key, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("model file: key '", key, "': ", what));
}

}  // namespace

absl::StatusOr<ModelParams> LoadModelParams(const std::string& json_text) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError("model file: not valid JSON");
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError("model file: top level must be a JSON object");
  }
  ModelParams params;
  for (const auto& [key, value] : doc.items()) {
    if (key == "name") {
      if (!value.is_string()) return KeyError(key, "expected a string");
      params.name = value.get<std::string>();
      continue;
    }
    const Field* field = nullptr;
    for (const Field& f : Fields()) {
      if (key == f.key) field = &f;
    }
    if (field == nullptr) return KeyError(key, "unknown key");
    if (!value.is_number()) return KeyError(key, "expected a number");
    double v = value.get<double>();
    if (!(v >= field->min && v <= field->max)) {
      return KeyError(
          key, absl::StrCat("must be in [", field->min, ", ", field->max, "], got ", value.dump()));
    }
    if (auto* d = std::get_if<double ModelParams::*>(&field->member)) {
      params.** d = v;
    } else {
      if (!value.is_number_integer()) return KeyError(key, "expected an integer");
      params.*std::get<int64_t ModelParams::*>(field->member) = value.get<int64_t>();
    }
  }
  // Cross-field constraints.
  if (params.fast_horizon_s > params.slow_horizon_s) {
    return KeyError("fast_horizon_s", "must not exceed slow_horizon_s");
  }
  if (params.fast_tau_s >= params.slow_tau_s) {
    return KeyError("fast_tau_s", "must be below slow_tau_s");
  }
  if (params.step_min_fraction > 0 && params.step_band_fraction >= params.step_min_fraction) {
    return KeyError("step_band_fraction", "must be below step_min_fraction");
  }
  return params;
}

std::string ModelParamsToJson(const ModelParams& params) {
  nlohmann::ordered_json doc;
  doc["name"] = params.name;
  for (const Field& f : Fields()) {
    if (auto* d = std::get_if<double ModelParams::*>(&f.member)) {
      doc[f.key] = params.**d;
    } else {
      doc[f.key] = params.*std::get<int64_t ModelParams::*>(f.member);
    }
  }
  return doc.dump(2) + "\n";
}

}  // namespace tapio::predict
