// firehub.connector.alarm: fire-IoT remote monitoring. GB/T 26875.3-2011 frames from user
// information transmission devices over TCP (the hub listens, confirms each accepted frame and
// denies bad ones), the device registry as CSV, and a JSON webhook variant of the same events.
// See README.md.
#include <iconv.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>

#include "config_schema.h"
#include "firehub/sdk/connector.h"
#include "firehub/sdk/items.h"
#include "firehub/v1/time_text.h"
#include "gbt26875.h"

namespace firehub::connectors {
namespace {

using firehub::sdk::Stage;
using firehub::v1::FireAlarmEvent;
namespace gb = gbt26875;

// The information objects a device uploads (GB/T 26875.3-2011, 8.2.1): size without the
// optional 6-byte time tag (0: its size is in the object, a 1-byte length before its text), and
// whether a time tag may follow.
struct ObjectLayout {
  uint8_t type;
  size_t size;
  bool timed;
  const char* entity_type;
};
constexpr ObjectLayout kLayouts[] = {
    {1, 4, true, "fire_alarm_system"},            // system type, address, 2-byte state
    {2, 40, true, "fire_alarm_component"},        // + component type, 4-byte address, state, text
    {3, 10, true, "fire_alarm_analog"},           // + component, analog type, 2-byte value
    {4, 4, true, "fire_alarm_operation"},         // system type, address, operation, operator
    {5, 4, false, "fire_alarm_system_info"},      // system type, address, major, minor
    {6, 0, false, "fire_alarm_system_info"},      // system type, address, length, text
    {7, 38, false, "fire_alarm_component_info"},  // system, component type, address, 31-byte text
    {8, 8, false, "fire_alarm_system_info"},      // system type, address, 6-byte clock
    {21, 1, true, "transmission_device"},         // 1-byte state
    {24, 2, true, "fire_alarm_operation"},        // operation, operator
    {25, 2, false, "transmission_device_info"},   // major, minor
    {26, 0, false, "transmission_device_info"},   // length, text
    {28, 6, false, "transmission_device_info"},   // 6-byte clock
};

// GB/T 26875.3's analog types (8.2.1.3): quantity, unit, and the resolution of one count.
struct AnalogType {
  const char* quantity;
  const char* unit;
  double resolution;
};
std::optional<AnalogType> analogType(uint8_t t) {
  static const AnalogType kTypes[] = {
      {"event count", "1", 1},  {"height", "m", 0.01},         {"temperature", "°C", 0.1},
      {"pressure", "MPa", 0.1}, {"pressure", "kPa", 0.1},      {"gas concentration", "%LEL", 0.1},
      {"time", "s", 1},         {"voltage", "V", 0.1},         {"current", "A", 0.1},
      {"flow", "L/s", 0.1},     {"air volume", "m³/min", 0.1}, {"wind speed", "m/s", 1},
  };
  if (t >= 1 && t <= 12) return kTypes[t - 1];
  if (t >= 128) return AnalogType{"user defined", "", 1};  // 128-255: the vendor's own
  return std::nullopt;
}

// GB 18030 to UTF-8 with iconv; trailing NULs and spaces removed. nullopt when not valid.
std::optional<std::string> fromGb18030(std::string_view in) {
  while (!in.empty() && (in.back() == '\0' || in.back() == ' ')) in.remove_suffix(1);
  if (in.empty()) return std::string();
  iconv_t cd = iconv_open("UTF-8", "GB18030");
  if (cd == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
  std::string out(in.size() * 4 + 4, '\0');
  char* src = const_cast<char*>(in.data());
  size_t src_left = in.size();
  char* dst = out.data();
  size_t dst_left = out.size();
  size_t rc = iconv(cd, &src, &src_left, &dst, &dst_left);
  iconv_close(cd);
  if (rc == static_cast<size_t>(-1) || src_left != 0) return std::nullopt;
  out.resize(out.size() - dst_left);
  return out;
}

class AlarmConnector final : public firehub::sdk::Connector {
 public:
  static std::unique_ptr<Connector> create(firehub::sdk::Config& config) {
    auto c = std::make_unique<AlarmConnector>();
    c->offset_minutes_ = firehub::sdk::readFormatConfig(config, c->options_);
    config.getString("listen", "");  // read by the hub's TCP transport
    return c;
  }

  void decode(const firehub::sdk::Input& in, firehub::sdk::Sink& sink) override {
    if (in.content_type == "application/x-gbt26875") return decodeStream(in.data, sink);
    options_.required_columns = {"device_address", "building_id", "lon", "lat"};
    firehub::sdk::forEachItem(in, options_, sink, [&](firehub::sdk::Item& item) {
      if (item.fields->text("info_type"))
        webhookEvent(item, sink);
      else
        device(item, sink);
    });
  }

 private:
  void decodeStream(std::string_view data, firehub::sdk::Sink& sink) {
    size_t consumed = 0;
    for (const auto& piece : gb::scan(data, consumed)) {
      if (piece.kind == gb::Piece::Kind::kGarbage) {
        sink.reject(Stage::kDecode, piece.reason, piece.raw, "stream");
        continue;
      }
      const auto& f = piece.frame;
      std::string offset =
          "frame serial " + std::to_string(f.serial) + " from " + gb::hex(f.source);
      if (piece.kind == gb::Piece::Kind::kBadFrame) {
        sink.reject(Stage::kDecode, piece.reason, piece.raw, offset);
        sink.reply(gb::reply(f, gb::kCmdDeny, nowTag()));
        continue;
      }
      if (f.command == gb::kCmdConfirm || f.command == gb::kCmdDeny) continue;  // to our replies
      if (f.command == gb::kCmdRequest) {  // a query: answered, not stored
        sink.reply(answerRequest(f));
        continue;
      }
      if (f.command != gb::kCmdSendData && f.command != gb::kCmdAnswer) {
        sink.reject(Stage::kDecode,
                    "command " + std::to_string(f.command) +
                        " is not accepted (2 send data, 4 request, 5 answer)",
                    piece.raw, offset);
        sink.reply(gb::reply(f, gb::kCmdDeny, nowTag()));
        continue;
      }
      sink.source(piece.raw);
      std::string reason = sendData(f, piece.raw, offset, sink);
      if (!reason.empty()) sink.reject(Stage::kDecode, reason, piece.raw, offset);
      // Data the device sends is confirmed or denied; an answer (5) to a query is not.
      if (f.command == gb::kCmdSendData)
        sink.reply(gb::reply(f, reason.empty() ? gb::kCmdConfirm : gb::kCmdDeny, nowTag()));
    }
    sink.consumed(consumed);
  }

  // A request (command 4): one for the time of day (type 68 for the systems named, 88 for the
  // device) is answered (command 5) with the hub's clock as type 8 / 28 objects; other requests
  // read a facility's state, which the hub does not hold: denied (command 6).
  std::string answerRequest(const gb::Frame& f) {
    const uint8_t type = f.data.size() >= 2 ? static_cast<uint8_t>(f.data[0]) : 0;
    const size_t count = f.data.size() >= 2 ? static_cast<uint8_t>(f.data[1]) : 0;
    const uint8_t* now = nowTag();
    std::string data;
    if (type == 68 && count > 0 && f.data.size() == 2 + 2 * count) {
      data = {'\x08', static_cast<char>(count)};
      for (size_t i = 0; i < count; ++i) {
        data.append(f.data.substr(2 + 2 * i, 2));  // system type and address
        data.append(reinterpret_cast<const char*>(now), 6);
      }
    } else if (type == 88 && count > 0 && f.data.size() >= 2) {
      data = {'\x1c', '\x01'};
      data.append(reinterpret_cast<const char*>(now), 6);
    } else {
      return gb::reply(f, gb::kCmdDeny, now);
    }
    return gb::reply(f, gb::kCmdAnswer, now, data);
  }

  // The information objects of a frame, one view each; `timed`: each ends with a time tag.
  // Returns a reason when they do not fit the frame.
  static std::string slice(const ObjectLayout& l, std::string_view body, size_t count,
                           std::vector<std::string_view>& objects, bool& timed) {
    const std::string what = "information objects of type " + std::to_string(l.type) + ": " +
                             std::to_string(body.size()) + " bytes do not hold " +
                             std::to_string(count) + " objects";
    timed = false;
    if (l.size == 0) {  // text objects: a length byte (after system type and address for 6)
      const size_t len_at = l.type == 6 ? 2 : 0;
      size_t pos = 0;
      for (size_t i = 0; i < count; ++i) {
        if (pos + len_at + 1 > body.size()) return what;
        const size_t n = len_at + 1 + static_cast<uint8_t>(body[pos + len_at]);
        if (pos + n > body.size()) return what;
        objects.push_back(body.substr(pos, n));
        pos += n;
      }
      return pos == body.size() ? "" : what;
    }
    if (l.timed && body.size() == count * (l.size + 6))
      timed = true;
    else if (body.size() != count * l.size)
      return what;
    const size_t step = l.size + (timed ? 6 : 0);
    for (size_t i = 0; i < count; ++i) objects.push_back(body.substr(i * step, step));
    return "";
  }

  // Decodes the information objects of a frame of data (command 2, or 5 answering a query).
  // Returns a reason when the frame's application data is malformed (then nothing of it is
  // emitted). Objects of a type the standard does not define for upload are kept whole as a dead
  // letter (the raw frame), and the frame is confirmed: a device never resends a confirmed frame.
  std::string sendData(const gb::Frame& f, std::string_view raw, const std::string& offset,
                       firehub::sdk::Sink& sink) {
    if (f.data.empty()) return "";  // a heartbeat: confirmed, nothing to store
    if (f.data.size() < 2) return "application data shorter than type and count";
    uint8_t type = static_cast<uint8_t>(f.data[0]);
    size_t count = static_cast<uint8_t>(f.data[1]);
    const ObjectLayout* layout = nullptr;
    for (const auto& l : kLayouts) {
      if (l.type == type) layout = &l;
    }
    if (!layout) {
      sink.reject(Stage::kDecode,
                  "GB/T 26875 information object type " + std::to_string(type) +
                      " is not one a device uploads (1-8, 21, 24-26, 28): the frame is kept "
                      "here whole (and confirmed)",
                  raw, offset);
      return "";
    }
    std::vector<std::string_view> objects;
    bool timed = false;
    if (std::string why = slice(*layout, f.data.substr(2), count, objects, timed); !why.empty())
      return why;
    auto frame_time = tagTime(reinterpret_cast<const uint8_t*>(f.time));
    if (!frame_time) return "frame time tag is not a valid date";
    std::vector<firehub::v1::Record> records;
    for (size_t i = 0; i < objects.size(); ++i) {
      firehub::v1::Record r;
      std::string why = object(*layout, objects[i], timed, f, *frame_time, r);
      if (!why.empty()) return "object " + std::to_string(i) + ": " + why;
      r.mutable_provenance()->set_source_record_id(
          r.fire_alarm_event().device_address() + "#" + std::to_string(f.serial) + "#" +
          std::to_string(i) + "@" + firehub::v1::rfc3339(r.observed_at()));
      r.mutable_provenance()->set_source_offset(offset + " object " + std::to_string(i));
      records.push_back(std::move(r));
    }
    for (const auto& r : records) sink.emit(r);
    return "";
  }

  // One information object as a record; a reason when it cannot be read.
  std::string object(const ObjectLayout& l, std::string_view o, bool timed, const gb::Frame& f,
                     const google::protobuf::Timestamp& frame_time, firehub::v1::Record& r) {
    auto u8 = [&](size_t k) { return static_cast<uint8_t>(o[k]); };
    auto u32 = [&](size_t k) {
      return u8(k) | (u8(k + 1) << 8) | (u8(k + 2) << 16) |
             (static_cast<uint32_t>(u8(k + 3)) << 24);
    };
    const uint8_t type = l.type;
    auto* e = r.mutable_fire_alarm_event();
    e->set_device_address(gb::hex(f.source));
    e->set_info_type(static_cast<FireAlarmEvent::InfoType>(type));
    e->set_serial(f.serial);
    std::string entity = e->device_address();
    if (type <= 8) {  // a fire protection system's object: its type and address first
      e->set_system_type(u8(0));
      e->set_system_address(u8(1));
      entity += "/" + std::to_string(u8(0)) + "-" + std::to_string(u8(1));
    }
    auto text = [&](size_t at, size_t n) -> std::optional<std::string> {
      return fromGb18030(o.substr(at, n));
    };
    auto clock = [&](size_t at) -> std::string {
      auto t = tagTime(reinterpret_cast<const uint8_t*>(o.data() + at));
      if (!t) return "the clock is not a valid date";
      *e->mutable_reported_clock() = *t;
      e->set_clock_offset_s(t->seconds() - firehub::sdk::now().seconds());
      return "";
    };
    uint32_t flags = 0;
    bool state = false;  // a state word or an operation record (types 1, 2, 4, 21, 24)
    std::string why;
    switch (type) {
      case 1:
        flags = u8(2) | (u8(3) << 8);
        state = true;
        break;
      case 2: {
        e->set_component_type(u8(2));
        e->set_component_address(u32(3));
        flags = u8(7) | (u8(8) << 8);
        state = true;
        auto d = text(9, 31);
        if (!d) return "description is not valid GB 18030 text";
        e->set_description(*d);
        entity += "/" + std::to_string(e->component_address());
        break;
      }
      case 3: {
        e->set_component_type(u8(2));
        e->set_component_address(u32(3));
        const uint8_t kind = u8(7);
        const auto raw_value = static_cast<int16_t>(u8(8) | (u8(9) << 8));
        const AnalogType at = analogType(kind).value_or(AnalogType{"reserved", "", 1});
        e->set_analog_type(kind);
        e->set_analog_quantity(at.quantity);
        e->set_analog_unit(at.unit);
        e->set_analog_value(std::round(raw_value * at.resolution * 100.0) / 100.0);
        entity += "/" + std::to_string(e->component_address()) + "/a" + std::to_string(kind);
        break;
      }
      case 4:
      case 24:
        flags = type == 4 ? u8(2) : u8(0);
        e->set_operator_id(type == 4 ? u8(3) : u8(1));
        state = true;
        break;
      case 5:
      case 25:
        e->set_software_version(std::to_string(u8(type == 5 ? 2 : 0)) + "." +
                                std::to_string(u8(type == 5 ? 3 : 1)));
        entity += "/version";
        break;
      case 6:
      case 26: {
        const size_t at = type == 6 ? 3 : 1;
        auto d = text(at, o.size() - at);
        if (!d) return "configuration text is not valid GB 18030 text";
        e->set_description(*d);
        entity += "/config";
        break;
      }
      case 7: {
        e->set_component_type(u8(2));
        e->set_component_address(u32(3));
        auto d = text(7, 31);
        if (!d) return "component description is not valid GB 18030 text";
        e->set_description(*d);
        entity += "/" + std::to_string(e->component_address()) + "/config";
        break;
      }
      case 8:
      case 28:
        why = clock(type == 8 ? 2 : 0);
        if (!why.empty()) return why;
        entity += "/clock";
        break;
      case 21:
        flags = u8(0);
        state = true;
        break;
    }
    if (state) {
      e->set_state_flags(flags);
      const bool operation = type == 4 || type == 24;
      // State bits (GB/T 26875.3): bit1 fire alarm, bit2 fault; type 1 adds power and bus
      // faults (bits 8-10), type 21 power, channel and line faults (bits 3-6). Operations: bit0
      // reset.
      const bool fire = !operation && (flags & 0x2);
      const bool fault = !operation && ((flags & 0x4) || (type == 1 && (flags & 0x700)) ||
                                        (type == 21 && (flags & 0x78)));
      e->set_fire_alarm(fire);
      e->set_fault(fault);
      e->set_resolved(operation ? (flags & 0x1) != 0 : !fire && !fault);
    }
    auto when = timed ? tagTime(reinterpret_cast<const uint8_t*>(o.data() + l.size)) : frame_time;
    if (!when) return "time tag is not a valid date";
    *e->mutable_event_time() = *when;
    r.set_domain("alarm");
    r.set_entity_type(l.entity_type);
    r.set_entity_id(entity);
    *r.mutable_observed_at() = *when;
    r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
    r.set_op(firehub::v1::OP_UPSERT);
    placeAtDevice(r, e->device_address());
    return "";
  }

  static void placeAtDevice(firehub::v1::Record& r, const std::string& device) {
    auto* at = r.mutable_located_by();
    at->set_domain("alarm");
    at->set_entity_type("alarm_device");
    at->set_entity_id(device);
    at->set_keep_unplaced(true);  // never drop an alarm because its device is not registered
  }

  // A sender that names the building places the event there, registered device or not.
  static void placeAtBuilding(firehub::v1::Record& r, const std::string& building) {
    auto* at = r.mutable_located_by();
    at->set_domain("building");
    at->set_entity_type("building");
    at->set_entity_id(building);
    at->set_keep_unplaced(true);
  }

  // A 6-byte time tag (s, min, h, day, month, year-2000) in the devices' local time.
  std::optional<google::protobuf::Timestamp> tagTime(const uint8_t* t) const {
    if (t[0] > 59 || t[1] > 59 || t[2] > 23 || t[3] < 1 || t[3] > 31 || t[4] < 1 || t[4] > 12) {
      return std::nullopt;
    }
    char text[32];
    std::snprintf(text, sizeof text, "20%02u-%02u-%02uT%02u:%02u:%02u", t[5], t[4], t[3], t[2],
                  t[1], t[0]);
    return firehub::sdk::parseIsoTime(text, offset_minutes_);
  }

  const uint8_t* nowTag() {
    std::time_t now = std::time(nullptr) + offset_minutes_ * 60;
    std::tm tm{};
    gmtime_r(&now, &tm);
    now_tag_[0] = static_cast<uint8_t>(tm.tm_sec);
    now_tag_[1] = static_cast<uint8_t>(tm.tm_min);
    now_tag_[2] = static_cast<uint8_t>(tm.tm_hour);
    now_tag_[3] = static_cast<uint8_t>(tm.tm_mday);
    now_tag_[4] = static_cast<uint8_t>(tm.tm_mon + 1);
    now_tag_[5] = static_cast<uint8_t>(tm.tm_year - 100);
    return now_tag_;
  }

  static std::optional<std::string> deviceAddress(firehub::sdk::Fields& f) {
    auto a = f.text("device_address");
    if (!a || a->size() != 12 ||
        a->find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return std::nullopt;
    }
    for (auto& c : *a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return a;
  }

  // Device registry row: device_address,building_id,lon,lat.
  void device(firehub::sdk::Item& item, firehub::sdk::Sink& sink) {
    auto& f = *item.fields;
    std::string reason;
    firehub::v1::Record r;
    auto address = deviceAddress(f);
    auto building = f.text("building_id");
    if (!address) reason = "field 'device_address' must be 12 hex digits";
    if (reason.empty() && !building) reason = "field 'building_id' is missing";
    if (reason.empty()) {
      if (item.geometry)
        *r.mutable_geometry() = *item.geometry;
      else
        reason = firehub::sdk::pointFromFields(f, *r.mutable_geometry());
    }
    if (firehub::sdk::rejectIfInvalid(item, reason, sink)) return;
    r.set_domain("alarm");
    r.set_entity_type("alarm_device");
    r.set_entity_id(*address);
    *r.mutable_observed_at() = firehub::sdk::now();
    r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
    r.set_op(firehub::v1::OP_UPSERT);
    r.mutable_provenance()->set_source_record_id(*address + "#" +
                                                 firehub::sdk::contentVersion(item.raw));
    r.mutable_provenance()->set_source_offset(item.offset);
    r.mutable_alarm_device()->set_device_address(*address);
    r.mutable_alarm_device()->set_building_id(*building);
    sink.emit(r);
  }

  // JSON webhook: the same event as a GB/T 26875 information object, for vendors that push JSON.
  void webhookEvent(firehub::sdk::Item& item, firehub::sdk::Sink& sink) {
    auto& f = *item.fields;
    std::string reason;
    firehub::v1::Record r;
    auto address = deviceAddress(f);
    auto event_id = f.text("event_id");
    FireAlarmEvent::InfoType type;
    if (!address) reason = "field 'device_address' must be 12 hex digits";
    if (reason.empty() && !event_id) reason = "field 'event_id' is missing";
    if (reason.empty())
      reason =
          firehub::sdk::parseEnumWord(f.text("info_type"), "info_type", "INFO_TYPE_", true, &type);
    auto when = firehub::sdk::timeField(f, "time", offset_minutes_, reason);
    if (reason.empty() && !when) reason = "field 'time' is missing";
    // GB/T 26875 codes and addresses: unsigned integers (a negative or fractional value is a bad
    // field, not something to wrap around).
    auto number = [&](const char* name) -> uint32_t {
      double v = f.number(name).value_or(0);
      if (!(v >= 0 && v <= 4294967295.0) || v != static_cast<double>(static_cast<uint32_t>(v))) {
        if (reason.empty())
          reason = std::string("field '") + name + "' must be an integer in 0..4294967295";
        return 0;
      }
      return static_cast<uint32_t>(v);
    };
    auto* e = r.mutable_fire_alarm_event();
    e->set_system_type(number("system_type"));
    e->set_system_address(number("system_address"));
    e->set_component_type(number("component_type"));
    e->set_component_address(number("component_address"));
    e->set_state_flags(number("state_flags"));
    auto fire = f.boolean("fire_alarm");
    auto fault = f.boolean("fault");
    auto description = f.text("description");
    auto building = f.text("building_id");
    if (item.geometry)
      *r.mutable_geometry() = *item.geometry;
    else if (f.number("lon") || f.number("lat")) {
      std::string where = firehub::sdk::pointFromFields(f, *r.mutable_geometry());
      if (reason.empty()) reason = where;
    }
    if (firehub::sdk::rejectIfInvalid(item, reason, sink)) return;
    e->set_device_address(*address);
    e->set_info_type(type);
    e->set_fire_alarm(fire.value_or((e->state_flags() & 0x2) != 0));
    e->set_fault(fault.value_or((e->state_flags() & 0x4) != 0));
    e->set_resolved(!e->fire_alarm() && !e->fault());
    if (description) e->set_description(*description);
    if (building) e->set_building_id(*building);
    *e->mutable_event_time() = *when;
    r.set_domain("alarm");
    r.set_entity_type(type == FireAlarmEvent::INFO_TYPE_COMPONENT_STATE ? "fire_alarm_component"
                      : type == FireAlarmEvent::INFO_TYPE_DEVICE_STATE  ? "transmission_device"
                                                                        : "fire_alarm_system");
    std::string entity = *address;
    if (type != FireAlarmEvent::INFO_TYPE_DEVICE_STATE) {
      entity.append("/")
          .append(std::to_string(e->system_type()))
          .append("-")
          .append(std::to_string(e->system_address()));
    }
    if (type == FireAlarmEvent::INFO_TYPE_COMPONENT_STATE)
      entity.append("/").append(std::to_string(e->component_address()));
    r.set_entity_id(entity);
    *r.mutable_observed_at() = *when;
    r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
    r.set_op(firehub::v1::OP_UPSERT);
    if (!r.has_geometry()) {
      if (building && !building->empty())
        placeAtBuilding(r, *building);
      else
        placeAtDevice(r, *address);
    }
    r.mutable_provenance()->set_source_record_id(*address + "#" + *event_id);
    r.mutable_provenance()->set_source_offset(item.offset);
    sink.emit(r);
  }

  firehub::sdk::ItemOptions options_;
  int offset_minutes_ = 480;
  uint8_t now_tag_[6] = {};
};

}  // namespace
}  // namespace firehub::connectors

FIREHUB_DECLARE_CONNECTOR(
    alarm, firehub::connectors::AlarmConnector, "firehub.connector.alarm", "1.0.0", "alarm",
    "Fire-IoT remote monitoring: GB/T 26875.3 over TCP, device registry, JSON webhook",
    kConfigSchema)
