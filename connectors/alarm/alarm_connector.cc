// firehub.connector.alarm: fire-IoT remote monitoring. GB/T 26875.3-2011 frames from user
// information transmission devices over TCP (the hub listens, confirms each accepted frame and
// denies bad ones), the device registry as CSV, and a JSON webhook variant of the same events.
// See README.md.
#include <iconv.h>

#include <chrono>
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

// Sizes of one information object without / with its 6-byte time tag, by type.
struct ObjectLayout {
  uint8_t type;
  size_t size;
  const char* entity_type;
};
constexpr ObjectLayout kLayouts[] = {
    {1, 4, "fire_alarm_system"},      // system type, system address, 2-byte state
    {2, 40, "fire_alarm_component"},  // + component type, 4-byte address, state, 31-byte text
    {4, 4, "fire_alarm_system"},      // system type, system address, operation, operator
    {21, 1, "transmission_device"},   // 1-byte state
    {24, 2, "transmission_device"},   // operation, operator
};

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
      if (f.command != gb::kCmdSendData) {
        sink.reject(Stage::kDecode,
                    "command " + std::to_string(f.command) + " is not accepted (only 2, send data)",
                    piece.raw, offset);
        sink.reply(gb::reply(f, gb::kCmdDeny, nowTag()));
        continue;
      }
      sink.source(piece.raw);
      std::string reason = sendData(f, piece.raw, offset, sink);
      if (!reason.empty()) {
        sink.reject(Stage::kDecode, reason, piece.raw, offset);
        sink.reply(gb::reply(f, gb::kCmdDeny, nowTag()));
      } else {
        sink.reply(gb::reply(f, gb::kCmdConfirm, nowTag()));
      }
    }
    sink.consumed(consumed);
  }

  // Decodes the information objects of a "send data" frame. Returns a reason when the frame's
  // application data is malformed (then nothing of it is emitted).
  // Objects of a type not mapped yet are kept whole as a dead letter (the raw frame), and the
  // frame is confirmed: the device never resends a confirmed frame, so nothing may be dropped.
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
                      " is not mapped yet: the frame is kept here whole (and confirmed)",
                  raw, offset);
      return "";
    }
    size_t rest = f.data.size() - 2;
    bool timed;
    if (rest == count * (layout->size + 6))
      timed = true;
    else if (rest == count * layout->size)
      timed = false;
    else
      return "information objects of type " + std::to_string(type) + ": " + std::to_string(rest) +
             " bytes do not hold " + std::to_string(count) + " objects";
    auto frame_time = tagTime(reinterpret_cast<const uint8_t*>(f.time));
    if (!frame_time) return "frame time tag is not a valid date";
    std::vector<firehub::v1::Record> records;
    size_t step = layout->size + (timed ? 6 : 0);
    for (size_t i = 0; i < count; ++i) {
      std::string_view o = f.data.substr(2 + i * step, step);
      auto u8 = [&](size_t k) { return static_cast<uint8_t>(o[k]); };
      firehub::v1::Record r;
      auto* e = r.mutable_fire_alarm_event();
      e->set_device_address(gb::hex(f.source));
      e->set_info_type(static_cast<FireAlarmEvent::InfoType>(type));
      e->set_serial(f.serial);
      uint32_t flags = 0;
      std::string entity = e->device_address();
      if (type == 1 || type == 2 || type == 4) {
        e->set_system_type(u8(0));
        e->set_system_address(u8(1));
        entity += "/" + std::to_string(u8(0)) + "-" + std::to_string(u8(1));
      }
      if (type == 1) {
        flags = u8(2) | (u8(3) << 8);
      } else if (type == 2) {
        e->set_component_type(u8(2));
        e->set_component_address(u8(3) | (u8(4) << 8) | (u8(5) << 16) |
                                 (static_cast<uint32_t>(u8(6)) << 24));
        flags = u8(7) | (u8(8) << 8);
        auto text = fromGb18030(o.substr(9, 31));
        if (!text)
          return "object " + std::to_string(i) + ": description is not valid GB 18030 text";
        e->set_description(*text);
        entity += "/" + std::to_string(e->component_address());
      } else if (type == 4 || type == 24) {
        flags = type == 4 ? u8(2) : u8(0);
      } else if (type == 21) {
        flags = u8(0);
      }
      e->set_state_flags(flags);
      bool operation = type == 4 || type == 24;
      // State bits (GB/T 26875.3): bit1 fire alarm, bit2 fault; type 1 adds power and bus
      // faults (bits 8-10), type 21 power, channel and line faults (bits 3-6). Operations: bit0
      // reset.
      bool fire = !operation && (flags & 0x2);
      bool fault = !operation && ((flags & 0x4) || (type == 1 && (flags & 0x700)) ||
                                  (type == 21 && (flags & 0x78)));
      e->set_fire_alarm(fire);
      e->set_fault(fault);
      e->set_resolved(operation ? (flags & 0x1) != 0 : !fire && !fault);
      auto when =
          timed ? tagTime(reinterpret_cast<const uint8_t*>(o.data() + layout->size)) : frame_time;
      if (!when) return "object " + std::to_string(i) + ": time tag is not a valid date";
      *e->mutable_event_time() = *when;
      r.set_domain("alarm");
      r.set_entity_type(operation ? "fire_alarm_operation" : layout->entity_type);
      r.set_entity_id(entity);
      *r.mutable_observed_at() = *when;
      r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
      r.set_op(firehub::v1::OP_UPSERT);
      placeAtDevice(r, e->device_address());
      r.mutable_provenance()->set_source_record_id(
          e->device_address() + "#" + std::to_string(f.serial) + "#" + std::to_string(i) + "@" +
          firehub::v1::rfc3339(*when));
      r.mutable_provenance()->set_source_offset(offset + " object " + std::to_string(i));
      records.push_back(std::move(r));
    }
    for (const auto& r : records) sink.emit(r);
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
