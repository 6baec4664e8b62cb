// firehub.connector.police: incidents from the public security bureau's CAD export, as a JSON
// array or NDJSON. Reporter identity and notes are restricted fields. See README.md.
#include "config_schema.h"
#include "firehub/sdk/connector.h"
#include "firehub/sdk/items.h"

namespace firehub::connectors {
namespace {

using firehub::sdk::Stage;
using firehub::v1::PoliceIncident;

class PoliceConnector final : public firehub::sdk::Connector {
 public:
  static std::unique_ptr<Connector> create(firehub::sdk::Config& config) {
    auto c = std::make_unique<PoliceConnector>();
    c->offset_minutes_ = firehub::sdk::readFormatConfig(config, c->options_);
    c->options_.accept_csv = false;
    return c;
  }

  void decode(const firehub::sdk::Input& in, firehub::sdk::Sink& sink) override {
    firehub::sdk::forEachItem(in, options_, sink, [&](firehub::sdk::Item& item) {
      auto& f = *item.fields;
      std::string reason;
      firehub::v1::Record r;
      PoliceIncident::Type type;
      PoliceIncident::Status status;
      auto id = f.text("incident_id");
      if (!id || id->size() > 128) reason = "field 'incident_id' is missing or longer than 128";
      if (reason.empty())
        reason = firehub::sdk::parseEnumWord(f.text("type"), "type", "TYPE_", true, &type);
      if (reason.empty())
        reason = firehub::sdk::parseEnumWord(f.text("status"), "status", "STATUS_", true, &status);
      if (reason.empty()) {
        reason = item.geometry ? "" : firehub::sdk::pointFromFields(f, *r.mutable_geometry());
        if (item.geometry) *r.mutable_geometry() = *item.geometry;
      }
      auto reported = firehub::sdk::timeField(f, "reported_at", offset_minutes_, reason);
      auto updated = firehub::sdk::timeField(f, "updated_at", offset_minutes_, reason);
      auto closure = firehub::sdk::timeField(f, "closure_until", offset_minutes_, reason);
      if (reason.empty() && !reported) reason = "field 'reported_at' is missing";
      auto address = f.text("address");
      auto reporter_name = f.text("reporter_name");
      auto reporter_phone = f.text("reporter_phone");
      auto notes = f.text("notes");
      if (firehub::sdk::rejectIfInvalid(item, reason, sink)) return;
      r.set_domain("police");
      r.set_entity_type("police_incident");
      r.set_entity_id(*id);
      *r.mutable_observed_at() = updated ? *updated : *reported;
      r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
      r.set_op(firehub::v1::OP_UPSERT);
      r.mutable_provenance()->set_source_record_id(*id + "#" +
                                                   firehub::sdk::contentVersion(item.raw));
      r.mutable_provenance()->set_source_offset(item.offset);
      auto* b = r.mutable_police_incident();
      b->set_incident_id(*id);
      b->set_type(type);
      b->set_status(status);
      *b->mutable_reported_at() = *reported;
      if (address) b->set_address(*address);
      if (closure) *b->mutable_closure_until() = *closure;
      if (reporter_name) b->set_reporter_name(*reporter_name);
      if (reporter_phone) b->set_reporter_phone(*reporter_phone);
      if (notes) b->set_notes(*notes);
      sink.emit(r);
    });
  }

 private:
  firehub::sdk::ItemOptions options_;
  int offset_minutes_ = 480;
};

}  // namespace
}  // namespace firehub::connectors

FIREHUB_DECLARE_CONNECTOR(police, firehub::connectors::PoliceConnector, "firehub.connector.police",
                          "1.0.0", "police", "Police CAD incidents (JSON array, NDJSON)",
                          kConfigSchema)
