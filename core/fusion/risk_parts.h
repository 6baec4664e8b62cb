// What the risk layer's files share. Private to the fusion module.
#pragma once

#include "fusion/risk_layer.h"
#include "firehub/lake.h"
#include <s2/s2cap.h>
#include <s2/s2cell.h>
#include <s2/s2closest_point_query.h>
#include <s2/s2earth.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>
#include <s2/s2loop.h>
#include <s2/s2metrics.h>
#include <s2/s2polygon.h>
#include <s2/s2region_coverer.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

namespace firehub::fusion {

// The factors of a cell, in the order of its factors array.
enum FactorIndex { kBuilding, kAlarm, kWeather, kWater, kResponse, kMedical, kPublicSafety };

inline constexpr uint8_t bit(int factor) { return static_cast<uint8_t>(1u << factor); }

}  // namespace firehub::fusion
