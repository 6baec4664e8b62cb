// The Canadian Forest Fire Weather Index (FWI) System: FFMC, DMC, DC, ISI, BUI, FWI and DSR from
// daily noon weather, after Van Wagner (1987) and Van Wagner & Pickett (1985), with the
// refinements of the updated reference implementation (Wang, Anderson & Suddaby 2015): day-length
// factors by latitude band, the FFMC moisture constant 147.27723, rain thresholds 0.5 / 1.5 /
// 2.8 mm.
#pragma once

#include <string>

namespace firehub::fusion {

// One day's noon observation.
struct FwiWeather {
  double temp_c = 0;    // air temperature, °C
  double rh_pct = 0;    // relative humidity, % (0..100)
  double wind_kmh = 0;  // 10 m wind speed, km/h
  double prec_mm = 0;   // 24-hour precipitation ending at noon, mm
};

// The moisture codes carried from one day to the next. Start-up values: FFMC 85, DMC 6, DC 15.
struct FwiState {
  double ffmc = 85.0;
  double dmc = 6.0;
  double dc = 15.0;
};

struct FwiIndices {
  double ffmc = 0, dmc = 0, dc = 0, isi = 0, bui = 0, fwi = 0, dsr = 0;
};

double fineFuelMoistureCode(double ffmc_yesterday, const FwiWeather& w);
double duffMoistureCode(double dmc_yesterday, const FwiWeather& w, double lat, int month);
double droughtCode(double dc_yesterday, const FwiWeather& w, double lat, int month);
double initialSpreadIndex(double ffmc, double wind_kmh);
double buildupIndex(double dmc, double dc);
double fireWeatherIndex(double isi, double bui);
double dailySeverityRating(double fwi);

// Advances `state` by one day at latitude `lat` in month `month` (1..12) and returns all indices.
FwiIndices advanceDay(FwiState& state, const FwiWeather& w, double lat, int month);

// Checks an observation's ranges; returns "" or the reason.
std::string checkFwiWeather(const FwiWeather& w);

// The spring start-up DC from last autumn's final DC and the winter's precipitation (Lawson &
// Armitage 2008, Eqs. 2-4): `a` the carry-over fraction of the autumn moisture, `b` the
// effectiveness of winter precipitation in recharging it (0.75 each unless the site's soils say
// otherwise; the guide tabulates them). At least 15.
double overwinterDroughtCode(double fall_dc, double winter_prec_mm, double a = 0.75,
                             double b = 0.75);
// "" or why start codes cannot be used (each finite; FFMC 0..101, DMC and DC >= 0).
std::string checkFwiState(const FwiState& s);

// A station that stops reporting: the codes carry over the days without weather (no drying is
// invented for them; the rain of the gap arrives with the next observation). After more than
// this many days without a computed day the FFMC restarts at 85: its time lag is two thirds of a
// day, so a value from days ago says nothing of today's fine fuels. DMC (time lag 12 days) and
// DC (52 days) carry over.
inline constexpr long kFfmcRestartAfterDays = 3;
// Days from one YYYYMMDD date to another (negative when `to` is earlier).
long daysBetween(long from_yyyymmdd, long to_yyyymmdd);

}  // namespace firehub::fusion
