// The risk model: how each factor of a cell is scored from the records around it, how the
// factors combine and which warning level a score falls in. Everything a fire service would tune
// is configuration (RiskConfig, read from `risk.*` and `warnings.*` properties); the functions
// here are pure so every rule can be checked by hand.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "firehub/status.h"
#include "firehub/v1/building.pb.h"
#include "firehub/v1/police.pb.h"
#include "firehub/v1/weather.pb.h"

namespace firehub::fusion {

// The factors, in the order explanations list them.
inline const std::vector<std::string>& factorNames() {
  static const std::vector<std::string> names = {"building", "alarm",   "weather",      "water",
                                                 "response", "medical", "public_safety"};
  return names;
}

struct WarningLevel {
  std::string name;      // e.g. "I"
  std::string name_zh;   // e.g. "红色"
  std::string name_en;   // e.g. "red"
  std::string colour;    // #rrggbb
  double min_score = 0;  // the level applies from this composite score up
};

struct RiskConfig {
  // Factor weights (risk.weight.<factor>). Composite = 100 * sum(weight * score).
  // Defaults: building 0.25, alarm 0.20, weather 0.15, water 0.10, response 0.15, medical 0.05,
  // public_safety 0.10.
  std::map<std::string, double> weights = {
      {"building", 0.25}, {"alarm", 0.20},   {"weather", 0.15},      {"water", 0.10},
      {"response", 0.15}, {"medical", 0.05}, {"public_safety", 0.10}};
  // Warning scale, highest first (risk.levels). Default: I 红色 red #d7191c >= 75,
  // II 橙色 orange #fd8d3c >= 50, III 黄色 yellow #fecc5c >= 25, IV 蓝色 blue #2c7bb6 below.
  std::vector<WarningLevel> levels = {{"I", "红色", "red", "#d7191c", 75},
                                      {"II", "橙色", "orange", "#fd8d3c", 50},
                                      {"III", "黄色", "yellow", "#fecc5c", 25},
                                      {"IV", "蓝色", "blue", "#2c7bb6", 0}};
  // Hydrant protection radius, m (risk.water.radius_m). Default: 150 (GB 50974).
  double hydrant_radius_m = 150;
  // Below this pressure a hydrant only half protects, MPa (risk.water.min_pressure_mpa).
  // Default: 0.10.
  double hydrant_min_pressure_mpa = 0.10;
  // Average road speed of an engine, km/h (risk.response.speed_kmh). Default: 30.
  double response_speed_kmh = 30;
  // Road distance per straight-line distance (risk.response.detour). Default: 1.3.
  double response_detour = 1.3;
  // Travel time scoring 0 (the 5-minute circle) and 1, s (risk.response.good_s, .bad_s).
  // Defaults: 300 and 900.
  double response_good_s = 300;
  double response_bad_s = 900;
  // Distance to a hospital with free emergency or burn beds scoring 0 and 1, km
  // (risk.medical.good_km, .bad_km). Defaults: 5 and 20.
  double medical_good_km = 5;
  double medical_bad_km = 20;
  // Police incidents count while open and reported within this window, h
  // (risk.public_safety.window_h). Default: 24.
  double incident_window_h = 24;
  // Weather stations farther than this do not speak for a cell, km (risk.weather.max_station_km).
  // Default: 50.
  double weather_max_station_km = 50;
  // Drafted CAP warnings: cells at or above this level (warnings.level; default "II") make an
  // area warn; areas are S2 cells of warnings.area_level (default 12, about 2 km).
  std::string warning_level = "II";
  int warning_area_level = 12;
  // CAP sender and instruction text per level (warnings.sender, warnings.instruction.<level>).
  std::string warning_sender = "firehub@fire.local";
  std::map<std::string, std::string> warning_instructions;
  // A change must last this long before it is drafted (hysteresis against flapping cells);
  // a rise to the highest level is drafted at once (warnings.hold_s). Default: 60.
  double warning_hold_s = 60;
  // Drafts per fusion step at most (warnings.max_per_step; 0: no limit); the other changed areas
  // wait, in the order they changed, for the next steps, so a burst of new warnings does not hold
  // back the map's cells of the records behind it. Default: 8.
  size_t warning_max_per_step = 8;
  // CAP status of machine drafts (warnings.status): Draft, Exercise, Test or System; never Actual
  // (an operator issues a draft as an Actual message). Default: Draft.
  std::string warning_status = "Draft";

  // The level a composite score falls in (an unresolved fire alarm passes `forced`: the highest).
  const WarningLevel& levelFor(double score, bool forced) const;
  // Rank of a level name, 1 = highest; 0 when unknown.
  int rankOf(const std::string& level) const;
  double weight(const std::string& factor) const;
};

// Reads risk.* and warnings.* keys; unknown factor names, weights outside 0..1, a scale that is
// not strictly decreasing or lacks a 0 floor are errors that name the key.
Result<RiskConfig> riskConfigFrom(const std::map<std::string, std::string>& properties);

// --- Factor rules (scores in 0..1) ---

// Hazard weight of an occupancy: petrochemical 1.0, super high-rise 0.9, underground, large
// complexes and elderly care 0.8, hospitals, crowded places and group rentals 0.7, high-rise,
// heritage, schools and warehouses 0.6, factories 0.5, offices and residential 0.3, other 0.2.
double occupancyWeight(firehub::v1::Building::Occupancy occupancy);
// A building's score: its occupancy weight, +0.1 for a key unit, +0.2 on the black list,
// +0.1 per open general hazard and +0.25 per open major hazard; at most 1.
double buildingScore(firehub::v1::Building::Occupancy occupancy, bool key_unit, bool black_list,
                     int open_general, int open_major);
// Alarm: an unresolved fire alarm 1; else 0.1 per unresolved fault, at most 0.5.
double alarmScore(int unresolved_fires, int unresolved_faults);
// Fire weather danger class score: low 0, moderate 0.25, high 0.5, very high 0.75, extreme 1.
double fwiScore(double fwi);
// An active CAP warning raises the weather score to: extreme 1, severe 0.75, moderate 0.5,
// minor 0.25.
double capSeverityScore(firehub::v1::WeatherWarning::Severity severity);
// Water: 0 with an in-service hydrant at full pressure in reach, 0.5 when those in reach are all
// below the minimum pressure, 1 with none.
double waterScore(int full_pressure_in_reach, int low_pressure_in_reach);
// Travel time of `distance_m` straight-line metres at the configured speed and detour, s.
double travelSeconds(const RiskConfig& config, double distance_m);
// Response: 0 up to good_s, 1 from bad_s, linear between; no station at all scores 1.
double responseScore(const RiskConfig& config, std::optional<double> travel_s);
// Medical: 0 up to good_km, 1 from bad_km, linear between; no hospital with free beds 1.
double medicalScore(const RiskConfig& config, std::optional<double> distance_km);
// Weight of an open police incident type: arson 1.0, hazmat 0.8, fireworks 0.6, crowd events and
// fire reports 0.5, road closures 0.3, traffic accidents 0.2, other 0.1.
double incidentWeight(firehub::v1::PoliceIncident::Type type);
// Public safety: the heaviest incident's weight +0.1 per further incident; at most 1.
double publicSafetyScore(const std::vector<double>& incident_weights);

// CAP severity word of a level: the highest level Extreme, the second Severe, the third Moderate,
// the rest Minor.
const char* capSeverityOfRank(int rank);

}  // namespace firehub::fusion
