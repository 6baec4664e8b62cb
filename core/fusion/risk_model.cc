#include <algorithm>
#include <cmath>
#include <sstream>

#include "firehub/risk.h"

namespace firehub::fusion {
namespace {

using firehub::v1::Building;
using firehub::v1::PoliceIncident;
using firehub::v1::WeatherWarning;

double clamp01(double v) { return std::clamp(v, 0.0, 1.0); }

// Linear 0 at `good`, 1 at `bad`.
double ramp(double value, double good, double bad) {
  if (bad <= good) return value <= good ? 0.0 : 1.0;
  return clamp01((value - good) / (bad - good));
}

Result<double> number(const std::string& key, const std::string& text) {
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used != text.size() || !std::isfinite(v)) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    return Status::invalidArgument(key + ": '" + text + "' is not a number");
  }
}

// A whole number in [min, max]; `what` says what the key takes.
Result<int64_t> wholeNumber(const std::string& key, const std::string& text, int64_t min,
                            int64_t max, const char* what) {
  auto v = number(key, text);
  if (!v.isOk()) return v.status();
  if (*v < static_cast<double>(min) || *v > static_cast<double>(max) || *v != std::floor(*v)) {
    return Status::invalidArgument(key + ": " + what);
  }
  return static_cast<int64_t>(*v);
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, sep)) {
    size_t a = item.find_first_not_of(" \t");
    size_t b = item.find_last_not_of(" \t");
    out.push_back(a == std::string::npos ? std::string() : item.substr(a, b - a + 1));
  }
  return out;
}

}  // namespace

const WarningLevel& RiskConfig::levelFor(double score, bool forced) const {
  if (forced) return levels.front();
  for (const auto& level : levels) {
    if (score >= level.min_score) return level;
  }
  return levels.back();
}

int RiskConfig::rankOf(const std::string& level) const {
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels[i].name == level) return static_cast<int>(i) + 1;
  }
  return 0;
}

double RiskConfig::weight(const std::string& factor) const {
  auto it = weights.find(factor);
  return it == weights.end() ? 0.0 : it->second;
}

// Long: one branch per setting key.
Result<RiskConfig> riskConfigFrom(const std::map<std::string, std::string>& properties) {
  RiskConfig c;
  const auto& names = factorNames();
  struct Scalar {
    const char* key;
    double* target;
    double min;
    double max;
  };
  const Scalar scalars[] = {
      {"risk.water.radius_m", &c.hydrant_radius_m, 1, 5000},
      {"risk.water.min_pressure_mpa", &c.hydrant_min_pressure_mpa, 0, 2},
      {"risk.response.speed_kmh", &c.response_speed_kmh, 1, 200},
      {"risk.response.detour", &c.response_detour, 1, 5},
      {"risk.response.good_s", &c.response_good_s, 0, 7200},
      {"risk.response.bad_s", &c.response_bad_s, 1, 7200},
      {"risk.medical.good_km", &c.medical_good_km, 0, 500},
      {"risk.medical.bad_km", &c.medical_bad_km, 0.1, 500},
      {"risk.public_safety.window_h", &c.incident_window_h, 0.1, 24 * 365},
      {"risk.weather.max_station_km", &c.weather_max_station_km, 1, 1000},
      {"warnings.hold_s", &c.warning_hold_s, 0, 86400},
  };
  for (const auto& [key, text] : properties) {
    if (key.rfind("risk.", 0) != 0 && key.rfind("warnings.", 0) != 0) continue;
    if (key.rfind("risk.weight.", 0) == 0) {
      std::string factor = key.substr(12);
      if (std::find(names.begin(), names.end(), factor) == names.end()) {
        return Status::invalidArgument(key + ": unknown factor '" + factor +
                                       "' (building, alarm, weather, water, response, medical, "
                                       "public_safety)");
      }
      auto v = number(key, text);
      if (!v.isOk()) return v.status();
      if (*v < 0 || *v > 1) return Status::invalidArgument(key + ": a weight is between 0 and 1");
      c.weights[factor] = *v;
      continue;
    }
    if (key == "risk.levels") {
      // name|中文|english|#rrggbb|min_score; ... highest first, the last with min_score 0.
      std::vector<WarningLevel> levels;
      for (const auto& item : split(text, ';')) {
        if (item.empty()) continue;
        auto parts = split(item, '|');
        if (parts.size() != 5) {
          return Status::invalidArgument(key + ": '" + item +
                                         "' is not name|name_zh|name_en|#rrggbb|min_score");
        }
        if (parts[3].size() != 7 || parts[3][0] != '#' ||
            parts[3].find_first_not_of("0123456789abcdefABCDEF", 1) != std::string::npos) {
          return Status::invalidArgument(key + ": colour '" + parts[3] + "' is not #rrggbb");
        }
        auto min = number(key, parts[4]);
        if (!min.isOk()) return min.status();
        if (!levels.empty() && *min >= levels.back().min_score) {
          return Status::invalidArgument(key + ": levels go from the highest score down");
        }
        levels.push_back({parts[0], parts[1], parts[2], parts[3], *min});
      }
      if (levels.size() < 2) return Status::invalidArgument(key + ": at least two levels");
      if (levels.back().min_score != 0) {
        return Status::invalidArgument(key + ": the last level starts at 0");
      }
      c.levels = levels;
      continue;
    }
    if (key == "warnings.level") {
      c.warning_level = text;
      continue;
    }
    if (key == "warnings.area_level") {
      auto v = wholeNumber(key, text, 4, 20, "an S2 level 4..20");
      if (!v.isOk()) return v.status();
      c.warning_area_level = static_cast<int>(*v);
      continue;
    }
    if (key == "warnings.max_per_step") {
      auto v = wholeNumber(key, text, 0, 100000, "a whole number 0..100000 (0: no limit)");
      if (!v.isOk()) return v.status();
      c.warning_max_per_step = static_cast<size_t>(*v);
      continue;
    }
    if (key == "warnings.sender") {
      c.warning_sender = text;
      continue;
    }
    if (key == "warnings.status") {
      // A machine draft is never Actual: an operator issues it (POST /api/v1/warnings/{id}/issue).
      static const char* kStatuses[] = {"Draft", "Exercise", "Test", "System"};
      if (std::find(std::begin(kStatuses), std::end(kStatuses), text) == std::end(kStatuses)) {
        return Status::invalidArgument(
            key +
            ": the CAP status of machine drafts is Draft, Exercise, Test or "
            "System (an operator issues a draft as Actual)");
      }
      c.warning_status = text;
      continue;
    }
    if (key.rfind("warnings.instruction.", 0) == 0) {
      c.warning_instructions[key.substr(21)] = text;
      continue;
    }
    bool known = false;
    for (const auto& s : scalars) {
      if (key != s.key) continue;
      auto v = number(key, text);
      if (!v.isOk()) return v.status();
      if (*v < s.min || *v > s.max) {
        std::ostringstream why;
        why << key << ": " << *v << " is outside " << s.min << ".." << s.max;
        return Status::invalidArgument(why.str());
      }
      *s.target = *v;
      known = true;
    }
    if (!known) return Status::invalidArgument(key + ": unknown setting");
  }
  if (c.response_bad_s <= c.response_good_s) {
    return Status::invalidArgument("risk.response.bad_s must be above risk.response.good_s");
  }
  if (c.medical_bad_km <= c.medical_good_km) {
    return Status::invalidArgument("risk.medical.bad_km must be above risk.medical.good_km");
  }
  if (c.rankOf(c.warning_level) == 0) {
    return Status::invalidArgument("warnings.level: '" + c.warning_level +
                                   "' is not a level of risk.levels");
  }
  return c;
}

double occupancyWeight(Building::Occupancy occupancy) {
  switch (occupancy) {
    case Building::OCCUPANCY_PETROCHEMICAL:
      return 1.0;
    case Building::OCCUPANCY_SUPER_HIGH_RISE:
      return 0.9;
    case Building::OCCUPANCY_UNDERGROUND:
    case Building::OCCUPANCY_LARGE_COMMERCIAL_COMPLEX:
    case Building::OCCUPANCY_ELDERLY_CARE:
      return 0.8;
    case Building::OCCUPANCY_HOSPITAL:
    case Building::OCCUPANCY_CROWDED_PLACE:
    case Building::OCCUPANCY_GROUP_RENTAL:
      return 0.7;
    case Building::OCCUPANCY_HIGH_RISE:
    case Building::OCCUPANCY_HERITAGE:
    case Building::OCCUPANCY_SCHOOL:
    case Building::OCCUPANCY_WAREHOUSE:
      return 0.6;
    case Building::OCCUPANCY_FACTORY:
      return 0.5;
    case Building::OCCUPANCY_OFFICE:
    case Building::OCCUPANCY_RESIDENTIAL:
      return 0.3;
    default:
      return 0.2;
  }
}

double buildingScore(Building::Occupancy occupancy, bool key_unit, bool black_list,
                     int open_general, int open_major) {
  double s = occupancyWeight(occupancy);
  if (key_unit) s += 0.1;
  if (black_list) s += 0.2;
  s += 0.1 * open_general + 0.25 * open_major;
  return clamp01(s);
}

double alarmScore(int unresolved_fires, int unresolved_faults) {
  if (unresolved_fires > 0) return 1.0;
  return std::min(0.5, 0.1 * unresolved_faults);
}

double fwiScore(double fwi) {
  if (fwi < 5) return 0.0;
  if (fwi < 10) return 0.25;
  if (fwi < 20) return 0.5;
  if (fwi < 30) return 0.75;
  return 1.0;
}

double capSeverityScore(WeatherWarning::Severity severity) {
  switch (severity) {
    case WeatherWarning::SEVERITY_EXTREME:
      return 1.0;
    case WeatherWarning::SEVERITY_SEVERE:
      return 0.75;
    case WeatherWarning::SEVERITY_MODERATE:
      return 0.5;
    case WeatherWarning::SEVERITY_MINOR:
      return 0.25;
    default:
      return 0.0;
  }
}

double waterScore(int full_pressure_in_reach, int low_pressure_in_reach) {
  if (full_pressure_in_reach > 0) return 0.0;
  if (low_pressure_in_reach > 0) return 0.5;
  return 1.0;
}

double travelSeconds(const RiskConfig& config, double distance_m) {
  return distance_m * config.response_detour / (config.response_speed_kmh / 3.6);
}

double responseScore(const RiskConfig& config, std::optional<double> travel_s) {
  if (!travel_s) return 1.0;
  return ramp(*travel_s, config.response_good_s, config.response_bad_s);
}

double medicalScore(const RiskConfig& config, std::optional<double> distance_km) {
  if (!distance_km) return 1.0;
  return ramp(*distance_km, config.medical_good_km, config.medical_bad_km);
}

double incidentWeight(PoliceIncident::Type type) {
  switch (type) {
    case PoliceIncident::TYPE_ARSON:
      return 1.0;
    case PoliceIncident::TYPE_HAZMAT:
      return 0.8;
    case PoliceIncident::TYPE_FIREWORKS:
      return 0.6;
    case PoliceIncident::TYPE_CROWD_EVENT:
    case PoliceIncident::TYPE_FIRE_REPORT:
      return 0.5;
    case PoliceIncident::TYPE_ROAD_CLOSURE:
      return 0.3;
    case PoliceIncident::TYPE_TRAFFIC_ACCIDENT:
      return 0.2;
    default:
      return 0.1;
  }
}

double publicSafetyScore(const std::vector<double>& weights) {
  if (weights.empty()) return 0.0;
  double top = *std::max_element(weights.begin(), weights.end());
  return clamp01(top + 0.1 * static_cast<double>(weights.size() - 1));
}

const char* capSeverityOfRank(int rank) {
  switch (rank) {
    case 1:
      return "Extreme";
    case 2:
      return "Severe";
    case 3:
      return "Moderate";
    default:
      return "Minor";
  }
}

}  // namespace firehub::fusion
