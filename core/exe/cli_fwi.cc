// `firehub fwi --input FILE`: the FWI System over a CSV of daily noon weather
// (long,lat,yr,mon,day,temp,rh,ws,prec; comma or semicolon separated). Writes the input columns
// followed by FFMC,DMC,DC,ISI,BUI,FWI,DSR. Rows of one station (long, lat) must be in date order;
// several stations may be interleaved, each carries its own moisture codes from the start codes
// (--init, default 85,6,15; --overwinter sets the DC from last autumn's). A row with the columns
// ffmc_yda,dmc_yda,dc_yda (all three filled) is computed from those codes, as the reference
// implementations' single-day functions do. `firehub fwi start` sets a station's season start
// codes on a running hub.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "cli.h"
#include "cli_client.h"
#include "firehub/fwi.h"
#include "firehub/sdk/text.h"

namespace firehub::cli {
namespace {

// Long: a CSV read, checked and written in one pass, column by column.
int runFwi(const std::string& input, const fusion::FwiState& init) {
  std::ifstream in(input, std::ios::binary);
  if (!in) {
    std::cerr << "firehub fwi: cannot read " << input << "\n";
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string data = text.str();
  // Lines starting with '#' are comments (the reference data ships with a citation on top).
  auto comment = [](const sdk::CsvRow& r) {
    return !r.fields.empty() && sdk::trim(r.fields[0]).substr(0, 1) == "#";
  };
  size_t header_at = 0;
  while (header_at < data.size() && data[header_at] == '#') {
    size_t nl = data.find('\n', header_at);
    header_at = nl == std::string::npos ? data.size() : nl + 1;
  }
  const std::string header_line = data.substr(header_at, data.find('\n', header_at) - header_at);
  char delimiter = header_line.find(';') != std::string::npos ? ';' : ',';

  sdk::CsvReader reader(data, delimiter);
  sdk::CsvRow row;
  std::string error;
  bool have_header = false;
  while ((have_header = reader.next(row, error)) && error.empty() && comment(row)) {
  }
  if (!have_header) {
    std::cerr << "firehub fwi: " << input << " is empty\n";
    return 2;
  }
  std::map<std::string, size_t> column;
  for (size_t i = 0; i < row.fields.size(); ++i) column[std::string(sdk::trim(row.fields[i]))] = i;
  for (const char* name : {"long", "lat", "yr", "mon", "day", "temp", "rh", "ws", "prec"}) {
    if (!column.count(name)) {
      std::cerr << "firehub fwi: header lacks column '" << name
                << "' (expected long,lat,yr,mon,day,temp,rh,ws,prec)\n";
      return 2;
    }
  }
  std::string out(row.raw);
  out += std::string(1, delimiter) + "FFMC" + delimiter + "DMC" + delimiter + "DC" + delimiter +
         "ISI" + delimiter + "BUI" + delimiter + "FWI" + delimiter + "DSR\n";

  struct Station {
    fusion::FwiState state;
    long last_date = 0;
  };
  // The previous day's codes given per row (all three, or none).
  const bool yda = column.count("ffmc_yda") && column.count("dmc_yda") && column.count("dc_yda");
  std::map<std::string, Station> stations;
  while (reader.next(row, error)) {
    auto fail = [&](const std::string& why) {
      std::cerr << "firehub fwi: " << input << " line " << row.line << ": " << why << "\n";
      return 2;
    };
    if (!error.empty()) return fail(error);
    if (comment(row)) continue;
    if (row.fields.size() != column.size()) return fail("wrong number of fields");
    auto number = [&](const char* name, double& v) {
      auto parsed = sdk::parseDouble(row.fields[column[name]]);
      if (parsed) v = *parsed;
      return parsed.has_value();
    };
    double lon, lat, yr, mon, day;
    fusion::FwiWeather w;
    for (auto [name, target] : {std::pair{"long", &lon},
                                {"lat", &lat},
                                {"yr", &yr},
                                {"mon", &mon},
                                {"day", &day},
                                {"temp", &w.temp_c},
                                {"rh", &w.rh_pct},
                                {"ws", &w.wind_kmh},
                                {"prec", &w.prec_mm}}) {
      if (!number(name, *target)) return fail(std::string("'") + name + "' is not a number");
    }
    if (lat < -90 || lat > 90 || lon < -180 || lon > 180) return fail("long/lat out of range");
    if (mon < 1 || mon > 12 || day < 1 || day > 31) return fail("mon/day out of range");
    std::string why = fusion::checkFwiWeather(w);
    if (!why.empty()) return fail(why);
    std::string key = std::string(sdk::trim(row.fields[column["long"]])) + "/" +
                      std::string(sdk::trim(row.fields[column["lat"]]));
    auto [placed, fresh] = stations.try_emplace(key);
    Station& s = placed->second;
    if (fresh) s.state = init;
    if (yda) {
      fusion::FwiState given;
      int filled = 0;
      for (auto [name, target] :
           {std::pair{"ffmc_yda", &given.ffmc}, {"dmc_yda", &given.dmc}, {"dc_yda", &given.dc}}) {
        if (sdk::trim(row.fields[column[name]]).empty()) continue;
        if (!number(name, *target)) return fail(std::string("'") + name + "' is not a number");
        ++filled;
      }
      if (filled != 0 && filled != 3) return fail("give all of ffmc_yda,dmc_yda,dc_yda or none");
      if (filled == 3) {
        if (std::string why = fusion::checkFwiState(given); !why.empty()) return fail(why);
        s.state = given;
      }
    }
    long date =
        static_cast<long>(yr) * 10000 + static_cast<long>(mon) * 100 + static_cast<long>(day);
    if (date <= s.last_date) return fail("rows of station " + key + " are not in date order");
    s.last_date = date;
    auto idx = fusion::advanceDay(s.state, w, lat, static_cast<int>(mon));
    char buf[256];
    std::snprintf(buf, sizeof buf, "%c%g%c%g%c%g%c%g%c%g%c%g%c%g\n", delimiter, idx.ffmc, delimiter,
                  idx.dmc, delimiter, idx.dc, delimiter, idx.isi, delimiter, idx.bui, delimiter,
                  idx.fwi, delimiter, idx.dsr);
    out.append(row.raw);
    out += buf;
  }
  std::cout << out;
  return 0;
}

// "a,b,c[,d]" as numbers; empty when it is not.
std::vector<double> numbers(const std::string& text) {
  std::vector<double> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    auto v = sdk::parseDouble(part);
    if (!v || !std::isfinite(*v)) return {};
    out.push_back(*v);
  }
  return out;
}

}  // namespace

void addFwiCommand(CLI::App& app) {
  static std::string input, init, overwinter;
  auto* cmd = app.add_subcommand(
      "fwi", "Fire Weather Index System (CFFDRS) over a CSV of daily noon weather");
  cmd->add_option("--input", input,
                  "CSV: long,lat,yr,mon,day,temp,rh,ws,prec[,ffmc_yda,dmc_yda,dc_yda]")
      ->check(CLI::ExistingFile);
  cmd->add_option("--init", init, "start codes FFMC,DMC,DC (default 85,6,15)");
  cmd->add_option("--overwinter", overwinter,
                  "the start DC from last autumn's: FALL_DC,WINTER_PREC_MM[,A,B] (a, b: 0.75)");
  cmd->callback([cmd] {
    if (!cmd->get_subcommands().empty()) return;
    if (input.empty()) {
      std::cerr << "firehub fwi: --input is required (or: firehub fwi start ...)\n";
      std::exit(2);
    }
    fusion::FwiState start;
    if (!init.empty()) {
      auto v = numbers(init);
      if (v.size() != 3) {
        std::cerr << "firehub fwi: --init takes FFMC,DMC,DC\n";
        std::exit(2);
      }
      start = {v[0], v[1], v[2]};
    }
    if (!overwinter.empty()) {
      auto v = numbers(overwinter);
      if (v.size() != 2 && v.size() != 4) {
        std::cerr << "firehub fwi: --overwinter takes FALL_DC,WINTER_PREC_MM[,A,B]\n";
        std::exit(2);
      }
      start.dc = fusion::overwinterDroughtCode(v[0], v[1], v.size() == 4 ? v[2] : 0.75,
                                               v.size() == 4 ? v[3] : 0.75);
    }
    if (std::string why = fusion::checkFwiState(start); !why.empty()) {
      std::cerr << "firehub fwi: start codes: " << why << "\n";
      std::exit(2);
    }
    std::exit(runFwi(input, start));
  });

  // firehub fwi start --station ID --from YYYY-MM-DD [--codes F,D,C] [--overwinter ...]
  static HubTarget target;
  static std::string station, from, codes, season_overwinter;
  auto* start = cmd->add_subcommand("start", "Set a station's season start codes on a running hub");
  start->add_option("--station", station, "the weather station's id")->required();
  start->add_option("--from", from, "the season's first day, YYYY-MM-DD")->required();
  start->add_option("--codes", codes, "FFMC,DMC,DC (default 85,6,15)");
  start->add_option("--overwinter", season_overwinter,
                    "the DC from last autumn's: FALL_DC,WINTER_PREC_MM[,A,B]");
  addHubOptions(start, target);
  start->callback([] {
    auto c = codes.empty() ? std::vector<double>{85, 6, 15} : numbers(codes);
    if (c.size() != 3) {
      std::cerr << "firehub fwi start: --codes takes FFMC,DMC,DC\n";
      std::exit(2);
    }
    std::ostringstream body;
    body << "{\"ffmc\":" << c[0] << ",\"dmc\":" << c[1];
    if (!season_overwinter.empty()) {
      auto w = numbers(season_overwinter);
      if (w.size() != 2 && w.size() != 4) {
        std::cerr << "firehub fwi start: --overwinter takes FALL_DC,WINTER_PREC_MM[,A,B]\n";
        std::exit(2);
      }
      body << ",\"overwinter\":{\"fall_dc\":" << w[0] << ",\"winter_prec_mm\":" << w[1];
      if (w.size() == 4) body << ",\"a\":" << w[2] << ",\"b\":" << w[3];
      body << "}";
    } else {
      body << ",\"dc\":" << c[2];
    }
    body << ",\"from\":\"" << from << "\"}";
    std::exit(call(target, "PUT", "/api/v1/fwi/stations/" + uriComponent(station) + "/start",
                   body.str()));
  });
}

}  // namespace firehub::cli
