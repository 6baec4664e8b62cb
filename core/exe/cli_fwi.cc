// `firehub fwi --input FILE`: the FWI System over a CSV of daily noon weather
// (long,lat,yr,mon,day,temp,rh,ws,prec; comma or semicolon separated). Writes the input columns
// followed by FFMC,DMC,DC,ISI,BUI,FWI,DSR. Rows of one station (long, lat) must be in date order;
// several stations may be interleaved, each carries its own moisture codes from start-up values.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "cli.h"
#include "firehub/fwi.h"
#include "firehub/sdk/text.h"

namespace firehub::cli {
namespace {

// Long: a CSV read, checked and written in one pass, column by column.
int runFwi(const std::string& input) {
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
    Station& s = stations[key];
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

}  // namespace

void addFwiCommand(CLI::App& app) {
  static std::string input;
  auto* cmd = app.add_subcommand(
      "fwi", "Fire Weather Index System (CFFDRS) over a CSV of daily noon weather");
  cmd->add_option("--input", input, "CSV: long,lat,yr,mon,day,temp,rh,ws,prec")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->callback([] { std::exit(runFwi(input)); });
}

}  // namespace firehub::cli
