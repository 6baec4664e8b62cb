// recordToJson must be exactly protobuf's JSON mapping (proto names, primitive fields printed) of
// the record at the precision the hub writes (doubles to 7 decimal places, times to the
// millisecond): parsed back by protobuf's own parser it gives that message, for many varied
// records.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "firehub/bus.h"
#include "firehub/classification.h"
#include "firehub/v1/precision.h"

namespace firehub::bus {
namespace {

firehub::v1::Record randomRecord(std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-1, 1);
  firehub::v1::Record r;
  r.set_id("wx:A" + std::to_string(rng() % 1000) + "@2026-11-22T00:00:00Z");
  r.set_feed_id("wx");
  r.set_agency(rng() % 2 ? "met" : "气象局 \"quoted\" \\ back\tslash\n\x01");
  r.set_domain("weather");
  r.set_entity_type("weather_station");
  r.set_entity_id(std::to_string(rng()));
  r.mutable_observed_at()->set_seconds(1795305600 + rng() % 100000);
  if (rng() % 2) r.mutable_observed_at()->set_nanos(static_cast<int32_t>(rng() % 1000000000));
  r.mutable_received_at()->set_seconds(1795305600);
  if (rng() % 3 == 0) {
    auto* ring = r.mutable_geometry()->mutable_polygon()->add_rings();
    for (int i = 0; i < 4; ++i) {
      auto* p = ring->add_points();
      p->set_lon(123 + u(rng));
      p->set_lat(41 + u(rng));
    }
  } else {
    r.mutable_geometry()->mutable_point()->set_lon(123.4 + u(rng) * 1e-3);
    r.mutable_geometry()->mutable_point()->set_lat(41.8 + u(rng) * 1e-9);
  }
  r.set_s2_cell("5e2f87e54");
  r.set_classification(static_cast<firehub::v1::Classification>(rng() % 4));
  r.set_op(static_cast<firehub::v1::Op>(rng() % 3));
  r.mutable_provenance()->set_connector_id("firehub.connector.weather");
  r.mutable_provenance()->set_source_offset("line " + std::to_string(rng() % 100));
  auto* w = r.mutable_weather_observation();
  w->set_station_id(r.entity_id());
  w->set_temperature_c(u(rng) * 60);
  w->set_relative_humidity_pct(rng() % 2 ? 0.0 : 50 + u(rng) * 50);
  w->set_wind_speed_kmh(1e-7 * (rng() % 1000));
  if (rng() % 2) w->set_wind_direction_deg(rng() % 2 ? 0.0 : 359.99);
  w->set_precipitation_mm(rng() % 2 ? 0.0 : 1e300);
  return r;
}

// The message as the writer's precision leaves it: doubles under 1e8 rounded to 7 decimal places,
// timestamps cut to the millisecond.
void roundAsWritten(google::protobuf::Message& m) {
  using google::protobuf::FieldDescriptor;
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  if (d == google::protobuf::Timestamp::descriptor()) {
    auto& t = static_cast<google::protobuf::Timestamp&>(m);
    t.set_nanos(t.nanos() / 1000000 * 1000000);
    return;
  }
  auto round = [](double v) { return std::fabs(v) < 1e8 ? std::round(v * 1e7) / 1e7 : v; };
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) {
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE)
          r->SetRepeatedDouble(&m, f, k, round(r->GetRepeatedDouble(m, f, k)));
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE)
          roundAsWritten(*r->MutableRepeatedMessage(&m, f, k));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
      if (!f->has_presence() || r->HasField(m, f)) r->SetDouble(&m, f, round(r->GetDouble(m, f)));
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && r->HasField(m, f)) {
      roundAsWritten(*r->MutableMessage(&m, f));
    }
  }
}

firehub::v1::Record asWritten(firehub::v1::Record r) {
  roundAsWritten(r);
  return r;
}

TEST(RecordJsonTest, DoublesAreRoundedAndTimesCutToTheMillisecond) {
  firehub::v1::Record r;
  r.set_id("x");
  r.mutable_observed_at()->set_seconds(1795305600);
  r.mutable_observed_at()->set_nanos(123456789);
  r.mutable_geometry()->mutable_point()->set_lon(0.1 + 0.7);  // 0.7999999999999999
  r.mutable_geometry()->mutable_point()->set_lat(41.123456789);
  const std::string json = recordToJson(r);
  EXPECT_NE(json.find("\"observed_at\":\"2026-11-22T00:00:00.123Z\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"lon\":0.8,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"lat\":41.1234568}"), std::string::npos) << json;
}

// Every double set to an awkward value, in nested messages too (to `depth` levels).
void fillDoubles(google::protobuf::Message& m, int depth) {
  using google::protobuf::FieldDescriptor;
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->real_containing_oneof() && f->real_containing_oneof()->field(0) != f) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
      if (f->is_repeated()) {
        r->AddDouble(&m, f, 0.1 + 0.7);
        r->AddDouble(&m, f, 123.456789012345);
      } else {
        r->SetDouble(&m, f, 41.123456789);
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && depth > 0) {
      if (f->message_type() == google::protobuf::Timestamp::descriptor()) {
        auto* t = static_cast<google::protobuf::Timestamp*>(
            f->is_repeated() ? r->AddMessage(&m, f) : r->MutableMessage(&m, f));
        t->set_seconds(1795305600);
        t->set_nanos(123456789);
      } else {
        fillDoubles(f->is_repeated() ? *r->AddMessage(&m, f) : *r->MutableMessage(&m, f),
                    depth - 1);
      }
    }
  }
}

// The lake keeps records at the precision their JSON is written with: the same rounding as the
// reference above, for varied records and for every body of the oneof with all its doubles set.
TEST(RecordJsonTest, RecordsAreKeptAtThePrecisionTheirJsonIsWritten) {
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    auto r = randomRecord(rng);
    firehub::v1::Record kept = r;
    firehub::v1::roundToKeptPrecision(kept);
    ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(asWritten(r), kept))
        << kept.DebugString();
  }
  const auto* body = firehub::v1::Record::descriptor()->FindOneofByName("body");
  ASSERT_NE(body, nullptr);
  for (int i = 0; i < body->field_count(); ++i) {
    firehub::v1::Record r;
    r.mutable_observed_at()->set_nanos(987654321);
    fillDoubles(*r.GetReflection()->MutableMessage(&r, body->field(i)), 3);
    firehub::v1::Record kept = r;
    firehub::v1::roundToKeptPrecision(kept);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(asWritten(r), kept))
        << body->field(i)->name() << ": " << kept.DebugString();
    firehub::v1::roundToKeptPrecision(kept);  // idempotent
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(asWritten(r), kept));
  }
}

TEST(RecordJsonTest, MatchesProtobufJsonMappingExactly) {
  std::mt19937 rng(1);
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  for (int i = 0; i < 2000; ++i) {
    auto r = randomRecord(rng);
    std::string ours = recordToJson(r);
    firehub::v1::Record back;
    auto parsed = google::protobuf::util::JsonStringToMessage(ours, &back);
    ASSERT_TRUE(parsed.ok()) << parsed.ToString() << "\n" << ours;
    ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(asWritten(r), back)) << ours;

    // Same set of keys as protobuf's printer: compare after parsing both into a message is not
    // enough for presence, so also compare the key sets textually.
    std::string theirs;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(r, &theirs, options).ok());
    for (const char* key :
         {"\"wind_direction_deg\"", "\"polygon\"", "\"point\"", "\"nanos\"", "\"precipitation_mm\"",
          "\"relative_humidity_pct\"", "\"op\"", "\"station_name\"", "\"rings\""}) {
      EXPECT_EQ(ours.find(key) == std::string::npos, theirs.find(key) == std::string::npos)
          << key << "\nours:   " << ours << "\ntheirs: " << theirs;
    }
  }
}

// Every body the schema has (a oneof): the one set is written, with all its fields as protobuf
// writes them, and no other member of the oneof.
TEST(RecordJsonTest, EachBodyOfTheOneofIsWrittenAndNoOther) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  const auto* body = firehub::v1::Record::descriptor()->FindOneofByName("body");
  ASSERT_NE(body, nullptr);
  ASSERT_GT(body->field_count(), 3);
  std::mt19937 rng(2);
  for (int i = 0; i < body->field_count(); ++i) {
    const auto* member = body->field(i);
    auto r = randomRecord(rng);
    r.GetReflection()->MutableMessage(&r, member);  // replaces the weather body
    const std::string ours = recordToJson(r);
    firehub::v1::Record back;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ours, &back).ok()) << ours;
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(asWritten(r), back)) << ours;
    std::string theirs;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(r, &theirs, options).ok());
    // The member and each field of its (empty) message that protobuf prints.
    EXPECT_NE(ours.find("\"" + member->name() + "\":{"), std::string::npos) << ours;
    const auto* type = member->message_type();
    for (int k = 0; k < type->field_count(); ++k) {
      std::string key = "\"" + type->field(k)->name() + "\":";
      EXPECT_EQ(ours.find(key) == std::string::npos, theirs.find(key) == std::string::npos)
          << key << "\nours:   " << ours << "\ntheirs: " << theirs;
    }
    for (int j = 0; j < body->field_count(); ++j) {
      if (j == i) continue;
      EXPECT_EQ(ours.find("\"" + body->field(j)->name() + "\""), std::string::npos) << ours;
    }
  }
}

// Every field of `m` (and of its messages, to `depth`) set to a varied value: negative and
// extreme numbers, NaN and infinities, escapes and UTF-8 in strings, empty and full repeated
// fields, one member of each oneof (or none).
void fillEverything(google::protobuf::Message& m, std::mt19937& rng, int depth) {
  using google::protobuf::FieldDescriptor;
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  static const std::vector<std::string> kTexts = {"", "plain", "气象局 \"q\" \\ \t\n\x01\x7f", "é",
                                                  "line\r\n"};
  static const std::vector<double> kDoubles = {0.0,
                                               -0.0,
                                               1e300,
                                               -2.5,
                                               123.456789012345,
                                               1e-7,
                                               std::numeric_limits<double>::quiet_NaN(),
                                               std::numeric_limits<double>::infinity(),
                                               -std::numeric_limits<double>::infinity()};
  std::vector<const google::protobuf::OneofDescriptor*> chosen;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (const auto* oneof = f->real_containing_oneof()) {
      if (std::find(chosen.begin(), chosen.end(), oneof) != chosen.end()) continue;
      chosen.push_back(oneof);
      const int pick = static_cast<int>(rng() % (oneof->field_count() + 1));
      if (pick == oneof->field_count()) continue;  // none set
      f = oneof->field(pick);
    }
    if (f->message_type() && depth == 0) continue;
    if (!f->is_repeated() && f->has_presence() && !f->message_type() && rng() % 3 == 0) continue;
    const int n = f->is_repeated() ? static_cast<int>(rng() % 4) : 1;
    for (int k = 0; k < n; ++k) {
      const bool rep = f->is_repeated();
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32: {
          int32_t v = std::vector<int32_t>{0, -1, 7, INT32_MIN, INT32_MAX}[rng() % 5];
          rep ? r->AddInt32(&m, f, v) : r->SetInt32(&m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_INT64: {
          int64_t v = std::vector<int64_t>{0, -1, 1795305600, INT64_MIN, INT64_MAX}[rng() % 5];
          rep ? r->AddInt64(&m, f, v) : r->SetInt64(&m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT32: {
          uint32_t v = std::vector<uint32_t>{0, 1, UINT32_MAX}[rng() % 3];
          rep ? r->AddUInt32(&m, f, v) : r->SetUInt32(&m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT64: {
          uint64_t v = std::vector<uint64_t>{0, 1, UINT64_MAX}[rng() % 3];
          rep ? r->AddUInt64(&m, f, v) : r->SetUInt64(&m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_DOUBLE: {
          double v = kDoubles[rng() % kDoubles.size()];
          rep ? r->AddDouble(&m, f, v) : r->SetDouble(&m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_FLOAT: {
          float v = static_cast<float>(kDoubles[rng() % kDoubles.size()]);
          rep ? r->AddFloat(&m, f, v) : r->SetFloat(&m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_BOOL: {
          bool v = rng() % 2;
          rep ? r->AddBool(&m, f, v) : r->SetBool(&m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_ENUM: {
          const auto* e = f->enum_type();
          int v = rng() % 5 == 0 ? 1000
                                 : e->value(static_cast<int>(rng() % e->value_count()))->number();
          rep ? r->AddEnumValue(&m, f, v) : r->SetEnumValue(&m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_STRING: {
          std::string v = kTexts[rng() % kTexts.size()];
          if (f->type() == FieldDescriptor::TYPE_BYTES) v += std::string("\0\xff", 2);
          rep ? r->AddString(&m, f, v) : r->SetString(&m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_MESSAGE:
          fillEverything(rep ? *r->AddMessage(&m, f) : *r->MutableMessage(&m, f), rng, depth - 1);
          break;
      }
    }
  }
}

// The publisher writes a record's JSON from its stored bytes: the same text as from the parsed
// record, for every body and every kind of field, and redacted the same as redactRestricted.
TEST(RecordJsonTest, FromStoredBytesTheSameAsFromTheParsedRecord) {
  const auto* body = firehub::v1::Record::descriptor()->FindOneofByName("body");
  std::mt19937 rng(3);
  int redacted_differs = 0;
  for (int i = 0; i < 3000; ++i) {
    firehub::v1::Record r;
    fillEverything(r, rng, 4);
    if (i < 2 * body->field_count()) {  // each body at least twice
      fillEverything(*r.GetReflection()->MutableMessage(&r, body->field(i % body->field_count())),
                     rng, 3);
    }
    const std::string bytes = r.SerializeAsString();
    for (bool redact : {false, true}) {
      firehub::v1::Record expected_of = r;
      if (redact) redactRestricted(expected_of);
      const std::string expected =
          redact ? recordToJson(expected_of, /*redact=*/true) : recordToJson(expected_of);
      std::string ours = "prefix";
      WireRecordFacts facts;
      ASSERT_TRUE(appendRecordJsonFromWire(ours, bytes, redact, &facts)) << r.DebugString();
      ASSERT_EQ(ours, "prefix" + expected) << (redact ? "redacted\n" : "\n") << r.DebugString();
      EXPECT_EQ(facts.feed_id, r.feed_id());
      EXPECT_EQ(facts.agency, r.agency());
      EXPECT_EQ(facts.classification, static_cast<int>(r.classification()));
      const auto* set = r.GetReflection()->GetOneofFieldDescriptor(r, body);
      EXPECT_EQ(facts.body, set ? set->message_type() : nullptr);
      if (redact && expected != recordToJson(r)) ++redacted_differs;
    }
  }
  EXPECT_GT(redacted_differs, 50);  // restricted fields were there to redact
}

// Bytes protobuf's serialiser does not write are left to the parser: out stays as it was.
TEST(RecordJsonTest, FromStoredBytesGivesUpOnWhatTheSerialiserDoesNotWrite) {
  firehub::v1::Record r;
  r.set_id("wx:1");
  r.set_feed_id("wx");
  r.mutable_observed_at()->set_seconds(1795305600);
  r.mutable_weather_observation()->set_temperature_c(3.5);
  const std::string bytes = r.SerializeAsString();
  std::string out = "kept";
  // feed_id (2) written twice
  EXPECT_FALSE(appendRecordJsonFromWire(out, bytes + std::string("\x12\x02wy", 4), false));
  // a second member of the body oneof (water_source, 22, empty)
  EXPECT_FALSE(appendRecordJsonFromWire(out, bytes + std::string("\xb2\x01\x00", 3), false));
  // cut short, and a group
  EXPECT_FALSE(appendRecordJsonFromWire(out, bytes.substr(0, bytes.size() - 1), false));
  EXPECT_FALSE(appendRecordJsonFromWire(out, bytes + std::string("\x0b\x0c", 2), false));
  // id (1, a string) as a varint
  EXPECT_FALSE(appendRecordJsonFromWire(out, bytes + std::string("\x08\x01", 2), false));
  EXPECT_EQ(out, "kept");
  // Unknown fields are not printed, as protobuf's printer does not print them.
  EXPECT_TRUE(appendRecordJsonFromWire(out, bytes + std::string("\xf8\x3e\x05", 3), false));
  EXPECT_EQ(out, "kept" + recordToJson(r));
}

// Every character that needs escaping, at every position of strings of up to 24 bytes (the
// writer tests eight bytes at a time), among bytes of UTF-8 that pass as they are.
TEST(RecordJsonTest, StringsAreEscapedWhereverTheCharacterStands) {
  // The escapes JSON (RFC 8259) and protobuf's printer use, spelled out as a table.
  const std::map<unsigned char, std::string> escapes = {
      {'"', "\\\""}, {'\\', "\\\\"}, {'\b', "\\b"}, {'\f', "\\f"},
      {'\n', "\\n"}, {'\r', "\\r"},  {'\t', "\\t"}};
  auto reference = [&](const std::string& text) {
    std::string out = "\"";
    for (unsigned char c : text) {
      if (auto e = escapes.find(c); e != escapes.end()) {
        out += e->second;
      } else if (c < 0x20 || c == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    return out + "\"";
  };
  const std::string specials("\"\\\x7f\x01\n\t\x1f\0", 8);
  for (char special : specials) {
    for (size_t length = 1; length <= 24; ++length) {
      for (size_t at = 0; at < length; ++at) {
        std::string text(length, 'a');
        for (size_t k = 0; k < length; k += 3) text[k] = static_cast<char>(0xc3 + k % 2 * 0x3c);
        text[at] = special;
        std::string ours;
        appendJsonString(ours, text);
        EXPECT_EQ(ours, reference(text))
            << "byte " << int(special) << " at " << at << " of " << length;
      }
    }
  }
  std::string clean = "沈阳市和平区 Nanjing North Street 42";
  std::string ours;
  appendJsonString(ours, clean);
  EXPECT_EQ(ours, "\"" + clean + "\"");
}

TEST(RecordJsonTest, ReadableShape) {
  firehub::v1::Record r;
  r.set_id("wx:1");
  r.mutable_observed_at()->set_seconds(1795305600);
  r.mutable_weather_observation()->set_temperature_c(3.5);
  std::string json = recordToJson(r);
  EXPECT_NE(json.find(R"("observed_at":"2026-11-22T00:00:00Z")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("temperature_c":3.5)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("precipitation_mm":0)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("classification":"CLASSIFICATION_UNSPECIFIED")"), std::string::npos)
      << json;
  EXPECT_EQ(json.find("\"geometry\""), std::string::npos) << json;  // unset message: absent
}

// As protobuf writes them, cut to the millisecond (0 or 3 fractional digits).
TEST(RecordJsonTest, TimestampsAreWrittenAsProtobufWritesThem) {
  std::mt19937_64 rng(7);
  const int64_t min = -62135596800, max = 253402300799;
  std::vector<int64_t> seconds = {
      min,        max, 0, -1, 86399, 86400, 951782400 /* 2000-02-29 */, 4107542400 /* 2100-03-01 */,
      -2208988800 /* 1900-01-01 */};
  for (int i = 0; i < 20000; ++i)
    seconds.push_back(min + static_cast<int64_t>(rng() % (max - min)));
  for (int64_t s : seconds) {
    for (int32_t nanos : {0, 5000000, 123456000, 1, 999999999}) {
      google::protobuf::Timestamp t, cut;
      t.set_seconds(s);
      t.set_nanos(nanos);
      cut.set_seconds(s);
      cut.set_nanos(nanos / 1000000 * 1000000);
      std::string expected = "\"";
      expected += google::protobuf::util::TimeUtil::ToString(cut);
      expected += '"';
      ASSERT_EQ(messageToJson(t), expected) << s << " " << nanos;
    }
  }
}

}  // namespace
}  // namespace firehub::bus
