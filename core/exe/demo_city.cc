#include "demo_city.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/StreamSocket.h>

#include <iconv.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <thread>

#include "firehub/log.h"
#include "http_client.h"

namespace firehub::cli {
namespace {

// The demo city: central Shenyang.
constexpr double kWest = 123.25, kEast = 123.62, kSouth = 41.70, kNorth = 41.90;

struct Weighted {
  const char* name;
  double weight;
};

const char* pick(std::mt19937& rng, const std::vector<Weighted>& table) {
  double total = 0;
  for (const auto& w : table) total += w.weight;
  double x = std::uniform_real_distribution<double>(0, total)(rng);
  for (const auto& w : table) {
    if ((x -= w.weight) <= 0) return w.name;
  }
  return table.back().name;
}

std::string isoNow(int offset_s = 0) {
  std::time_t t = std::time(nullptr) + offset_s;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A GB/T 26875.3 frame as a device sends it (the hub's connector is the receiving side).
std::string deviceFrame(uint16_t serial, const std::string& source, const std::string& data) {
  std::time_t now = std::time(nullptr) + 8 * 3600;  // device clocks run on Beijing time
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::string body;
  body.push_back(static_cast<char>(serial & 0xff));
  body.push_back(static_cast<char>(serial >> 8));
  body += std::string("\x01\x00", 2);
  for (int v : {tm.tm_sec, tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon + 1, tm.tm_year - 100}) {
    body.push_back(static_cast<char>(v));
  }
  body += source;
  body += std::string(6, '\0');
  body.push_back(static_cast<char>(data.size() & 0xff));
  body.push_back(static_cast<char>(data.size() >> 8));
  body.push_back(2);  // send data
  body += data;
  unsigned sum = 0;
  for (unsigned char c : body) sum += c;
  return "@@" + body + static_cast<char>(sum & 0xff) + "##";
}

std::string toGb18030(const std::string& utf8) {
  iconv_t cd = iconv_open("GB18030", "UTF-8");
  if (cd == reinterpret_cast<iconv_t>(-1)) return "";
  std::string out(utf8.size() * 2 + 4, '\0');
  char* src = const_cast<char*>(utf8.data());
  size_t src_left = utf8.size();
  char* dst = out.data();
  size_t dst_left = out.size();
  size_t rc = iconv(cd, &src, &src_left, &dst, &dst_left);
  iconv_close(cd);
  if (rc == static_cast<size_t>(-1)) return "";
  out.resize(out.size() - dst_left);
  return out;
}

std::string bytesOfHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

}  // namespace

DemoCity::DemoCity(std::string base_url, DemoCityOptions options, std::string api_key)
    : base_(std::move(base_url)), key_(std::move(api_key)), options_(options), rng_(20261122) {}

bool DemoCity::registerFeed(const std::string& json) {
  try {
    auto reply = httpRequest(base_, "POST", "/api/v1/feeds", "application/json", json, key_);
    if (reply.status == 200 || reply.status == 201) return true;
    FIREHUB_LOG(kError, "demo", "feed refused: HTTP " << reply.status << " " << reply.body);
  } catch (const Poco::Exception& e) {
    FIREHUB_LOG(kError, "demo", "cannot register a feed: " << e.displayText());
  }
  return false;
}

bool DemoCity::push(const std::string& feed, const std::string& type, const std::string& body) {
  try {
    auto reply = httpRequest(base_, "POST", "/api/v1/feeds/" + feed + "/records", type, body, key_);
    if (reply.status == 202) {
      FIREHUB_LOG(kDebug, "demo", feed << ": " << reply.body);
      return true;
    }
    FIREHUB_LOG(kError, "demo", feed << ": HTTP " << reply.status << " " << reply.body);
  } catch (const Poco::Exception& e) {
    FIREHUB_LOG(kWarning, "demo", feed << ": push failed: " << e.displayText());
  }
  return false;
}

// Long: the demo city's script, one agency after the other.
bool DemoCity::seed() {
  auto feed = [](const char* id, const char* agency, const char* connector, int cadence,
                 const char* description, const char* config = "{}") {
    return std::string(R"({"id":")") + id + R"(","agency":")" + agency +
           R"(","connector":"firehub.connector.)" + connector + R"(","cadence_s":)" +
           std::to_string(cadence) + R"(,"description":")" + description + R"(","config":)" +
           config + "}";
  };
  bool ok =
      registerFeed(feed("wx-shenyang", "liaoning-meteorology", "weather",
                        options_.weather_interval_s, "Automatic weather stations, Shenyang")) &&
      registerFeed(
          feed("buildings", "shenyang-housing", "building", 86400, "Buildings and fire hazards")) &&
      registerFeed(
          feed("hydrants", "shenyang-water", "water", 900, "Fire water sources and pressure")) &&
      registerFeed(
          feed("stations", "shenyang-fire-rescue", "station", 86400, "Fire and rescue stations")) &&
      registerFeed(feed("hospitals", "shenyang-health", "health", 600,
                        "Hospitals, care homes, free beds")) &&
      registerFeed(feed("cad", "shenyang-public-security", "police", 60, "110 CAD incidents")) &&
      registerFeed(feed("fire-iot", "liaoning-fire-iot", "alarm", 60,
                        "Remote monitoring (GB/T 26875)", R"({"listen":"127.0.0.1:0"})"));
  if (!ok) return false;

  std::uniform_real_distribution<double> lon(kWest, kEast), lat(kSouth, kNorth), u(0, 1);
  // Buildings: footprints of 15-60 m around random centres, a realistic occupancy mix.
  const std::vector<Weighted> occupancy = {
      {"residential", 55},  {"office", 9},       {"high_rise", 8},
      {"crowded_place", 4}, {"group_rental", 4}, {"warehouse", 3},
      {"factory", 3},       {"school", 2},       {"large_commercial_complex", 1.2},
      {"underground", 1},   {"elderly_care", 1}, {"super_high_rise", 0.5},
      {"hospital", 0.5},    {"heritage", 0.3},   {"petrochemical", 0.2},
      {"other", 7.3}};
  std::string features;
  char buf[1024];
  for (int i = 1; i <= options_.buildings; ++i) {
    double x = lon(rng_), y = lat(rng_);
    double w = (15 + 45 * u(rng_)) / 85000.0, h = (15 + 45 * u(rng_)) / 111000.0;
    std::string occ = pick(rng_, occupancy);
    bool high_risk = occ != "residential" && occ != "office" && occ != "other";
    bool key = high_risk && u(rng_) < 0.6;
    int floors = occ == "super_high_rise" ? 60 + static_cast<int>(u(rng_) * 40)
                 : occ == "high_rise"     ? 12 + static_cast<int>(u(rng_) * 20)
                                          : 1 + static_cast<int>(u(rng_) * 8);
    const char* credit = u(rng_) < 0.02 ? "black_list" : (u(rng_) < 0.03 ? "red_list" : "normal");
    std::snprintf(
        buf, sizeof buf,
        R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[%.6f,%.6f],[%.6f,%.6f],[%.6f,%.6f],[%.6f,%.6f],[%.6f,%.6f]]]},)"
        R"("properties":{"building_id":"SY-B-%06d","occupancy":"%s","floors":%d,"height_m":%.1f,"key_unit":%s,"year_built":%d,"floor_area_m2":%.0f,"credit_status":"%s"}})",
        x, y, x + w, y, x + w, y + h, x, y + h, x, y, i, occ.c_str(), floors, floors * 3.1,
        key ? "true" : "false", 1960 + static_cast<int>(u(rng_) * 65),
        w * h * 85000 * 111000 * floors, credit);
    if (!features.empty()) features += ',';
    features += buf;
    char id[16];
    std::snprintf(id, sizeof id, "SY-B-%06d", i);
    buildings_.push_back({id, x + w / 2, y + h / 2, key});
    if (i % 2000 == 0 || i == options_.buildings) {
      if (!push("buildings", "application/json",
                R"({"type":"FeatureCollection","features":[)" + features + "]}"))
        return false;
      features.clear();
    }
  }
  // Hazards found by inspections, mostly in key units.
  std::string hazards = "hazard_id,building_id,type,level,status,found_at,rectified_at\n";
  const std::vector<Weighted> hazard_types = {{"blocked_exit", 3},         {"faulty_sprinkler", 2},
                                              {"faulty_alarm", 2},         {"illegal_wiring", 2},
                                              {"missing_extinguisher", 3}, {"locked_fire_door", 1}};
  for (int i = 1; i <= options_.buildings / 25; ++i) {
    const auto& b = buildings_[rng_() % buildings_.size()];
    bool open = u(rng_) < 0.55;
    std::snprintf(buf, sizeof buf, "HZ-2026-%05d,%s,%s,%s,%s,%s,%s\n", i, b.id.c_str(),
                  pick(rng_, hazard_types), u(rng_) < 0.2 ? "major" : "general",
                  open ? "open" : "rectified", isoNow(-86400 * 40).c_str(),
                  open ? "" : isoNow(-86400 * 5).c_str());
    hazards += buf;
  }
  if (!push("buildings", "text/csv", hazards)) return false;

  // Water sources: mostly hydrants; some out of service, some low pressure.
  std::string water = "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n";
  const std::vector<Weighted> kinds = {
      {"hydrant", 90}, {"pool", 5}, {"natural_intake", 3}, {"water_crane", 2}};
  for (int i = 1; i <= options_.water_sources; ++i) {
    std::string kind = pick(rng_, kinds);
    const char* status =
        u(rng_) < 0.05 ? "out_of_service" : (u(rng_) < 0.04 ? "unknown" : "in_service");
    double pressure = u(rng_) < 0.08 ? 0.04 + u(rng_) * 0.05 : 0.15 + u(rng_) * 0.35;
    char id[16], reading[16] = "";
    std::snprintf(id, sizeof id, "SY-W-%05d", i);
    if (kind == "hydrant") {
      std::snprintf(reading, sizeof reading, "%.2f", pressure);
      hydrants_.push_back(id);
    }
    std::snprintf(buf, sizeof buf, "%s,%s,%.6f,%.6f,%s,%s,%s\n", id, kind.c_str(), lon(rng_),
                  lat(rng_), status, reading, isoNow(-3600).c_str());
    water += buf;
  }
  if (!push("hydrants", "text/csv", water)) return false;

  // Stations.
  std::string stations = "station_id,name,kind,lon,lat,status,engines\n";
  const char* districts[] = {"和平", "沈河", "大东", "皇姑",   "铁西",
                             "浑南", "于洪", "沈北", "苏家屯", "东陵"};
  for (int i = 1; i <= 20; ++i) {
    const char* kind =
        i <= 2 ? "special_duty" : (i <= 10 ? "class1" : (i <= 16 ? "class2" : "micro"));
    std::snprintf(buf, sizeof buf, "SY-S-%03d,%s区第%d消防救援站,%s,%.6f,%.6f,%s,%d\n", i,
                  districts[i % 10], i, kind, lon(rng_), lat(rng_),
                  i == 13 ? "out_of_service" : "in_service",
                  kind[0] == 's' ? 8 : (kind[0] == 'm' ? 1 : 4));
    stations += buf;
  }
  if (!push("stations", "text/csv", stations)) return false;

  // Hospitals and care homes (FHIR) with free beds.
  std::string bundle = R"({"resourceType":"Bundle","type":"collection","entry":[)";
  const char* names[] = {"中国医科大学附属第一医院", "中国医科大学附属盛京医院",
                         "沈阳市第四人民医院",       "沈阳市第一人民医院",
                         "辽宁省人民医院",           "沈阳市烧伤救治中心",
                         "和平区颐养中心",           "沈河区福寿园养老院",
                         "皇姑区夕阳红养老院",       "浑南区康乐护理院"};
  for (int i = 0; i < 10; ++i) {
    bool hospital = i < 6;
    std::snprintf(
        buf, sizeof buf,
        R"(%s{"resource":{"resourceType":"Location","id":"sy-h-%02d","status":"active","name":"%s","type":[{"coding":[{"code":"%s"}]}],"position":{"longitude":%.6f,"latitude":%.6f}}})",
        i ? "," : "", i, names[i], hospital ? (i == 5 ? "BURN" : "HOSP") : "NURS", lon(rng_),
        lat(rng_));
    bundle += buf;
    if (hospital) {
      for (const char* bed : {"emergency", "burn", "icu"}) {
        std::snprintf(
            buf, sizeof buf,
            R"(,{"resource":{"resourceType":"Observation","id":"beds-%02d-%s","status":"final","code":{"text":"%s"},"subject":{"reference":"Location/sy-h-%02d"},"effectiveDateTime":"%s","valueQuantity":{"value":%d}}})",
            i, bed, bed, i, isoNow().c_str(), static_cast<int>(u(rng_) * 20));
        bundle += buf;
      }
    }
  }
  bundle += "]}";
  if (!push("hospitals", "application/json", bundle)) return false;

  // Alarm devices on key units, then incidents.
  std::string devices = "device_address,building_id,lon,lat\n";
  for (const auto& b : buildings_) {
    if (!b.key_unit || static_cast<int>(devices_.size()) >= options_.alarm_devices) continue;
    char address[16];
    std::snprintf(address, sizeof address, "%012llx", 0x210000000000ull + devices_.size());
    devices_.push_back(address);
    std::snprintf(buf, sizeof buf, "%s,%s,%.6f,%.6f\n", address, b.id.c_str(), b.lon, b.lat);
    devices += buf;
  }
  if (!push("fire-iot", "text/csv", devices)) return false;
  for (int i = 0; i < 40; ++i) pushIncident(i);

  try {
    auto reply = httpRequest(base_, "GET", "/api/v1/feeds/fire-iot", "", "", key_);
    Poco::JSON::Parser parser;
    alarm_port_ = parser.parse(reply.body)
                      .extract<Poco::JSON::Object::Ptr>()
                      ->optValue<int>("listen_port", 0);
  } catch (const Poco::Exception& e) {
    FIREHUB_LOG(kError, "demo", "cannot read the alarm feed's port: " << e.displayText());
  }
  for (size_t i = 0; i < static_cast<size_t>(options_.weather_stations); ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "A%04zu", 7101 + i);
    weather_stations_.push_back({id, lon(rng_), lat(rng_), false});
  }
  // Noon observations of the last three days, so each station starts with a fire weather day
  // (the FWI System is computed from noon weather): a dry, windy east and a damper west.
  {
    std::time_t now = std::time(nullptr);
    std::time_t local_midnight = (now + 8 * 3600) / 86400 * 86400 - 8 * 3600;
    std::string csv = "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n";
    char line[256];
    for (int day = 3; day >= 1; --day) {
      std::time_t noon = local_midnight - day * 86400 + 12 * 3600;
      std::tm tm{};
      gmtime_r(&noon, &tm);
      char at[32];
      std::strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
      for (const auto& s : weather_stations_) {
        double east = (s.lon - kWest) / (kEast - kWest);  // 0 west .. 1 east
        std::snprintf(line, sizeof line, "%s,%.5f,%.5f,%s,%.1f,%.0f,%.1f,%.0f,%.1f\n", s.id.c_str(),
                      s.lon, s.lat, at, 12.0 + 6 * east, 55.0 - 40 * east, 10.0 + 30 * east, 300.0,
                      east < 0.2 ? 3.0 : 0.0);
        csv += line;
      }
    }
    if (!push("wx-shenyang", "text/csv", csv)) return false;
  }
  FIREHUB_LOG(kInfo, "demo",
              "seeded " << buildings_.size() << " buildings, " << options_.water_sources
                        << " water sources, 20 stations, 10 health facilities, " << devices_.size()
                        << " alarm devices, 40 incidents");
  return true;
}

void DemoCity::pushIncident(int n) {
  std::uniform_real_distribution<double> u(0, 1), lon(kWest, kEast), lat(kSouth, kNorth);
  const std::vector<Weighted> types = {{"fire_report", 3},  {"arson", 1},
                                       {"fireworks", 2},    {"crowd_event", 2},
                                       {"road_closure", 2}, {"traffic_accident", 4},
                                       {"hazmat", 0.5},     {"other", 2}};
  std::string type = pick(rng_, types);
  char buf[640];
  std::snprintf(
      buf, sizeof buf,
      R"({"incident_id":"SY-110-%s-%04d","type":"%s","status":"%s","reported_at":"%s","lon":%.6f,"lat":%.6f,"address":"沈阳市第%d街区","reporter_name":"报警人%d","reporter_phone":"1380000%04d"%s})",
      isoNow().substr(0, 10).c_str(), n, type.c_str(), u(rng_) < 0.7 ? "open" : "closed",
      isoNow(-static_cast<int>(u(rng_) * 7200)).c_str(), lon(rng_), lat(rng_), n % 97, n, n,
      type == "road_closure"
          ? (std::string(R"(,"closure_until":")") + isoNow(4 * 3600) + "\"").c_str()
          : "");
  push("cad", "application/x-ndjson", std::string(buf) + "\n");
}

std::string DemoCity::weatherCsv() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  double hour = std::fmod(utc.tm_hour + 8 + utc.tm_min / 60.0, 24.0);  // local time, warmest ~14:00
  double diurnal = std::cos((hour - 14.0) / 24.0 * 2 * M_PI);
  std::normal_distribution<double> noise(0, 0.6);
  std::uniform_real_distribution<double> u(0, 1);
  std::string csv = "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n";
  char line[256];
  for (const auto& s : weather_stations_) {
    double temp = 6.0 + 6.0 * diurnal + noise(rng_);
    double rh = std::clamp(45.0 - 20.0 * diurnal + noise(rng_) * 5, 8.0, 100.0);
    double wind = std::max(0.0, 14.0 + 8.0 * u(rng_) + noise(rng_) * 3);
    std::snprintf(line, sizeof line, "%s,%.5f,%.5f,%s,%.1f,%.0f,%.1f,%.0f,%.1f\n", s.id.c_str(),
                  s.lon, s.lat, isoNow().c_str(), temp, rh, wind,
                  std::fmod(300 + 40 * u(rng_), 360), u(rng_) < 0.03 ? 0.2 : 0.0);
    csv += line;
  }
  return csv;
}

void DemoCity::simulateDevices(const std::atomic<bool>& stop) {
  std::uniform_real_distribution<double> u(0, 1);
  uint16_t serial = 1;
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> burning;
  while (!stop) {
    try {
      Poco::Net::StreamSocket socket(
          Poco::Net::SocketAddress("127.0.0.1", static_cast<uint16_t>(alarm_port_)));
      socket.setReceiveTimeout(Poco::Timespan(5, 0));
      FIREHUB_LOG(kInfo, "demo", "device simulator connected to 127.0.0.1:" << alarm_port_);
      while (!stop) {
        std::string device = devices_[rng_() % devices_.size()];
        std::string data;
        double x = u(rng_);
        // A detector in fire alarm is reset (someone checked it) after about a minute.
        auto due = std::find_if(burning.begin(), burning.end(), [](const auto& b) {
          return std::chrono::steady_clock::now() - b.second > std::chrono::seconds(60);
        });
        if (due != burning.end()) {
          device = due->first;
          burning.erase(due);
          data = std::string("\x02\x01\x01\x01\x28", 5) + std::string("\x03\x02\x00\x00", 4) +
                 std::string("\x01\x00", 2) + std::string(31, '\0');  // normal operation: reset
        } else if (x < 0.08) {
          burning.emplace_back(device, std::chrono::steady_clock::now());
          // A detector in fire alarm (state: normal operation | fire alarm), with its text in
          // GB 18030 as devices send it.
          static const char* kText[] = {"3层走廊感烟探测器火警", "地下车库手动报警按钮",
                                        "厨房感温探测器火警", "2层配电室烟感火警"};
          data = std::string("\x02\x01\x01\x01\x28", 5) + std::string("\x03\x02\x00\x00", 4) +
                 std::string("\x03\x00", 2);
          std::string desc = toGb18030(kText[rng_() % 4]);
          desc.resize(31, '\0');
          data += desc;
        } else if (x < 0.28) {
          data = std::string("\x15\x01", 2) +
                 std::string(1, u(rng_) < 0.5 ? '\x05' : '\x01');  // device fault / normal
        } else {
          data = std::string("\x01\x01\x01\x01\x01\x00", 6);  // system normal
        }
        std::string frame = deviceFrame(serial++, bytesOfHex(device), data);
        socket.sendBytes(frame.data(), static_cast<int>(frame.size()));
        char reply[64];
        socket.receiveBytes(reply, sizeof reply);  // the hub's confirm
        for (int i = 0; i < 20 && !stop; ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    } catch (const Poco::Exception& e) {
      FIREHUB_LOG(kWarning, "demo", "device simulator: " << e.displayText() << "; reconnecting");
      for (int i = 0; i < 20 && !stop; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

void DemoCity::runLive(const std::atomic<bool>& stop) {
  std::thread devices([&] {
    if (alarm_port_ > 0 && !devices_.empty()) simulateDevices(stop);
  });
  std::uniform_real_distribution<double> u(0, 1);
  int tick = 0, incident = 40;
  while (!stop) {
    if (tick % options_.weather_interval_s == 0) push("wx-shenyang", "text/csv", weatherCsv());
    if (tick % 15 == 0 && !hydrants_.empty()) {
      std::string readings;
      char line[160];
      for (int i = 0; i < 50; ++i) {
        std::snprintf(line, sizeof line,
                      R"({"source_id":"%s","time":"%s","pressure_mpa":%.2f})"
                      "\n",
                      hydrants_[rng_() % hydrants_.size()].c_str(), isoNow().c_str(),
                      u(rng_) < 0.08 ? 0.05 + u(rng_) * 0.04 : 0.15 + u(rng_) * 0.35);
        readings += line;
      }
      push("hydrants", "application/x-ndjson", readings);
    }
    if (tick % 30 == 0 && tick > 0) pushIncident(incident++);
    for (int i = 0; i < 10 && !stop; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ++tick;
  }
  devices.join();
}

}  // namespace firehub::cli
