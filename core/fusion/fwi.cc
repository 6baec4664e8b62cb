#include "firehub/fwi.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace firehub::fusion {
namespace {

// The FFMC moisture scale constant of the updated reference code (Wang et al. 2015); the
// original 1985 code used 147.2.
constexpr double kFfmcMoisture = 147.27723;

}  // namespace

double fineFuelMoistureCode(double ffmc_yda, const FwiWeather& w) {
  const double temp = w.temp_c, rh = w.rh_pct, ws = w.wind_kmh, prec = w.prec_mm;
  double mo = kFfmcMoisture * (101.0 - ffmc_yda) / (59.5 + ffmc_yda);  // Eq. 1
  if (prec > 0.5) {                                                    // Eqs. 2, 3a, 3b
    double rf = prec - 0.5;
    double wet = 42.5 * rf * std::exp(-100.0 / (251.0 - mo)) * (1.0 - std::exp(-6.93 / rf));
    if (mo > 150.0) wet += 0.0015 * (mo - 150.0) * (mo - 150.0) * std::sqrt(rf);
    mo = std::min(mo + wet, 250.0);
  }
  const double ed = 0.942 * std::pow(rh, 0.679) + 11.0 * std::exp((rh - 100.0) / 10.0) +
                    0.18 * (21.1 - temp) * (1.0 - 1.0 / std::exp(0.115 * rh));  // Eq. 4
  const double ew = 0.618 * std::pow(rh, 0.753) + 10.0 * std::exp((rh - 100.0) / 10.0) +
                    0.18 * (21.1 - temp) * (1.0 - 1.0 / std::exp(0.115 * rh));  // Eq. 5
  double m = mo;
  if (mo > ed) {  // drying, Eqs. 6a, 6b, 8
    double k0 = 0.424 * (1.0 - std::pow(rh / 100.0, 1.7)) +
                0.0694 * std::sqrt(ws) * (1.0 - std::pow(rh / 100.0, 8.0));
    double kd = k0 * 0.581 * std::exp(0.0365 * temp);
    m = ed + (mo - ed) / std::pow(10.0, kd);
  } else if (mo < ew) {  // wetting, Eqs. 7a, 7b, 9
    double k1 = 0.424 * (1.0 - std::pow((100.0 - rh) / 100.0, 1.7)) +
                0.0694 * std::sqrt(ws) * (1.0 - std::pow((100.0 - rh) / 100.0, 8.0));
    double kw = k1 * 0.581 * std::exp(0.0365 * temp);
    m = ew - (ew - mo) / std::pow(10.0, kw);
  }
  double ffmc = 59.5 * (250.0 - m) / (kFfmcMoisture + m);  // Eq. 10
  return std::clamp(ffmc, 0.0, 101.0);
}

double duffMoistureCode(double dmc_yda, const FwiWeather& w, double lat, int month) {
  // Effective day lengths by month for the latitude bands of the reference implementation.
  static const double kEll01[12] = {6.5,  7.5,  9.0, 12.8, 13.9, 13.9,
                                    12.4, 10.9, 9.4, 8.0,  7.0,  6.0};
  static const double kEll02[12] = {7.9, 8.4, 8.9, 9.5, 9.9, 10.2, 10.1, 9.7, 9.1, 8.6, 8.1, 7.8};
  static const double kEll03[12] = {10.1, 9.6, 9.1, 8.5, 8.1, 7.8, 7.9, 8.3, 8.9, 9.4, 9.9, 10.2};
  static const double kEll04[12] = {11.5, 10.5, 9.2, 7.9,  6.8,  6.2,
                                    6.5,  7.4,  8.7, 10.0, 11.2, 11.8};
  const int m = std::clamp(month, 1, 12) - 1;
  double ell = kEll01[m];
  if (lat <= 30 && lat > 10)
    ell = kEll02[m];
  else if (lat <= -10 && lat > -30)
    ell = kEll03[m];
  else if (lat <= -30)
    ell = kEll04[m];
  else if (lat <= 10 && lat > -10)
    ell = 9.0;
  const double temp = std::max(w.temp_c, -1.1);
  const double rk = 1.894 * (temp + 1.1) * (100.0 - w.rh_pct) * ell * 1e-4;  // Eq. 16
  double pr = dmc_yda;
  if (w.prec_mm > 1.5) {
    double rw = 0.92 * w.prec_mm - 1.27;                        // Eq. 11
    double wmi = 20.0 + 280.0 / std::exp(0.023 * dmc_yda);      // Eq. 12
    double b = dmc_yda <= 33   ? 100.0 / (0.5 + 0.3 * dmc_yda)  // Eqs. 13a-c
               : dmc_yda <= 65 ? 14.0 - 1.3 * std::log(dmc_yda)
                               : 6.2 * std::log(dmc_yda) - 17.2;
    double wmr = wmi + 1000.0 * rw / (48.77 + b * rw);  // Eq. 14
    pr = 43.43 * (5.6348 - std::log(wmr - 20.0));       // Eq. 15
  }
  pr = std::max(pr, 0.0);
  return std::max(pr + rk, 0.0);
}

double droughtCode(double dc_yda, const FwiWeather& w, double lat, int month) {
  static const double kFl01[12] = {-1.6, -1.6, -1.6, 0.9, 3.8, 5.8, 6.4, 5.0, 2.4, 0.4, -1.6, -1.6};
  static const double kFl02[12] = {6.4, 5.0, 2.4, 0.4, -1.6, -1.6, -1.6, -1.6, -1.6, 0.9, 3.8, 5.8};
  const int m = std::clamp(month, 1, 12) - 1;
  const double temp = std::max(w.temp_c, -2.8);
  double fl = kFl01[m];
  if (lat <= -20)
    fl = kFl02[m];
  else if (lat > -20 && lat <= 20)
    fl = 1.4;
  const double pe = std::max((0.36 * (temp + 2.8) + fl) / 2.0, 0.0);  // Eq. 22
  double dr = dc_yda;
  if (w.prec_mm > 2.8) {
    double rw = 0.83 * w.prec_mm - 1.27;                                    // Eq. 18
    double smi = 800.0 * std::exp(-dc_yda / 400.0);                         // Eq. 19
    dr = std::max(dc_yda - 400.0 * std::log(1.0 + 3.937 * rw / smi), 0.0);  // Eqs. 20, 21
  }
  return std::max(dr + pe, 0.0);  // Eq. 23
}

double initialSpreadIndex(double ffmc, double wind_kmh) {
  const double fm = kFfmcMoisture * (101.0 - ffmc) / (59.5 + ffmc);
  const double fw = std::exp(0.05039 * wind_kmh);                                         // Eq. 24
  const double ff = 91.9 * std::exp(-0.1386 * fm) * (1.0 + std::pow(fm, 5.31) / 4.93e7);  // Eq. 25
  return 0.208 * fw * ff;                                                                 // Eq. 26
}

double buildupIndex(double dmc, double dc) {
  if (dmc == 0 && dc == 0) return 0;
  double bui = 0.8 * dc * dmc / (dmc + 0.4 * dc);  // Eq. 27a
  if (bui < dmc) {                                 // Eq. 27b
    double p = dmc == 0 ? 0 : (dmc - bui) / dmc;
    double cc = 0.92 + std::pow(0.0114 * dmc, 1.7);
    bui = std::max(dmc - cc * p, 0.0);
  }
  return bui;
}

double fireWeatherIndex(double isi, double bui) {
  double bb = bui > 80 ? 0.1 * isi * (1000.0 / (25.0 + 108.64 / std::exp(0.023 * bui)))  // Eq. 28b
                       : 0.1 * isi * (0.626 * std::pow(bui, 0.809) + 2.0);               // Eq. 28a
  return bb <= 1 ? bb : std::exp(2.72 * std::pow(0.434 * std::log(bb), 0.647));  // Eqs. 30a, 30b
}

double dailySeverityRating(double fwi) { return 0.0272 * std::pow(fwi, 1.77); }  // Eq. 31

FwiIndices advanceDay(FwiState& state, const FwiWeather& w, double lat, int month) {
  FwiIndices out;
  out.ffmc = fineFuelMoistureCode(state.ffmc, w);
  out.dmc = duffMoistureCode(state.dmc, w, lat, month);
  out.dc = droughtCode(state.dc, w, lat, month);
  out.isi = initialSpreadIndex(out.ffmc, w.wind_kmh);
  out.bui = buildupIndex(out.dmc, out.dc);
  out.fwi = fireWeatherIndex(out.isi, out.bui);
  out.dsr = dailySeverityRating(out.fwi);
  state = {out.ffmc, out.dmc, out.dc};
  return out;
}

double overwinterDroughtCode(double fall_dc, double winter_prec_mm, double a, double b) {
  const double qf = 800.0 * std::exp(-fall_dc / 400.0);  // Eq. 3: the autumn moisture equivalent
  const double qs = a * qf + b * 3.94 * winter_prec_mm;  // Eq. 2: the spring one
  return std::max(400.0 * std::log(800.0 / qs), 15.0);   // Eq. 4
}

std::string checkFwiState(const FwiState& s) {
  if (!std::isfinite(s.ffmc) || s.ffmc < 0 || s.ffmc > 101) return "FFMC must be in 0..101";
  if (!std::isfinite(s.dmc) || s.dmc < 0 || s.dmc > 1000) return "DMC must be in 0..1000";
  if (!std::isfinite(s.dc) || s.dc < 0 || s.dc > 2000) return "DC must be in 0..2000";
  return "";
}

long daysBetween(long from, long to) {
  // Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
  auto days = [](long ymd) {
    long y = ymd / 10000;
    const long m = ymd / 100 % 100, d = ymd % 100;
    y -= m <= 2;
    const long era = (y >= 0 ? y : y - 399) / 400;
    const long yoe = y - era * 400;
    const long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
  };
  return days(to) - days(from);
}

std::string checkFwiWeather(const FwiWeather& w) {
  char buf[96];
  if (!(w.temp_c >= -60 && w.temp_c <= 60)) {
    std::snprintf(buf, sizeof buf, "temp = %g is outside [-60, 60]", w.temp_c);
  } else if (!(w.rh_pct >= 0 && w.rh_pct <= 100)) {
    std::snprintf(buf, sizeof buf, "rh = %g is outside [0, 100]", w.rh_pct);
  } else if (!(w.wind_kmh >= 0 && w.wind_kmh <= 500)) {
    std::snprintf(buf, sizeof buf, "ws = %g is outside [0, 500]", w.wind_kmh);
  } else if (!(w.prec_mm >= 0 && w.prec_mm <= 2000)) {
    std::snprintf(buf, sizeof buf, "prec = %g is outside [0, 2000]", w.prec_mm);
  } else {
    return "";
  }
  return buf;
}

}  // namespace firehub::fusion
