#include "firehub/v1/precision.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/timestamp.pb.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <vector>

namespace firehub::v1 {

double keptDouble(double v) {
  return std::isfinite(v) && std::fabs(v) < 1e8 ? std::round(v * 1e7) / 1e7 : v;
}

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

// What of a message type can need rounding, worked out once per type: its doubles and the
// message fields whose types hold a double or a timestamp at some depth. A record is walked along
// these alone (a walk over every set field, through reflection, was about a tenth of a push).
struct Plan;
struct Step {
  const FieldDescriptor* field;
  const Plan* plan;  // of a message field's type
};
struct Plan {
  bool timestamp = false;
  bool relevant = false;                       // the type holds a double or a timestamp
  std::vector<Step> fields;                    // such fields outside real oneofs
  std::vector<const OneofDescriptor*> oneofs;  // oneofs with such a member
  std::vector<const Plan*> member;             // by field index: such a member of a oneof
};

// Per thread, so no lock (descriptors never change). A plan holds its fields' plans, so a
// record's walk looks up one.
const Plan& planOf(const Descriptor* d) {
  thread_local std::unordered_map<const Descriptor*, Plan> plans;
  thread_local const Descriptor* last = nullptr;
  thread_local const Plan* last_plan = nullptr;
  if (d == last) return *last_plan;
  if (auto it = plans.find(d); it != plans.end()) {
    last = d;
    last_plan = &it->second;
    return it->second;
  }
  Plan& plan = plans[d];  // node-based: stays where it is while nested types are added
  plan.relevant = true;   // while it is worked out (a type that holds itself)
  if (d == google::protobuf::Timestamp::descriptor()) {
    plan.timestamp = true;
    return plan;
  }
  static const Plan kDouble;  // a double field's step (no plan of its own)
  plan.member.assign(static_cast<size_t>(d->field_count()), nullptr);
  bool relevant = false;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const Plan* step = nullptr;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
      step = &kDouble;
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const Plan& of = planOf(f->message_type());
      if (of.relevant) step = &of;
    }
    if (!step) continue;
    relevant = true;
    if (const OneofDescriptor* oneof = f->real_containing_oneof()) {
      plan.member[static_cast<size_t>(i)] = step;
      if (std::find(plan.oneofs.begin(), plan.oneofs.end(), oneof) == plan.oneofs.end())
        plan.oneofs.push_back(oneof);
    } else {
      plan.fields.push_back({f, step});
    }
  }
  plan.relevant = relevant;
  return plan;
}

void roundWith(Message& m, const Plan& plan);

void roundField(Message& m, const Reflection* r, const FieldDescriptor* f, const Plan& plan) {
  if (f->is_repeated()) {
    const int n = r->FieldSize(m, f);
    for (int k = 0; k < n; ++k) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE)
        r->SetRepeatedDouble(&m, f, k, keptDouble(r->GetRepeatedDouble(m, f, k)));
      else
        roundWith(*r->MutableRepeatedMessage(&m, f, k), plan);
    }
  } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
    // An unset field reads as 0, which stays 0: nothing is set that was not.
    const double v = r->GetDouble(m, f);
    if (const double kept = keptDouble(v); kept != v) r->SetDouble(&m, f, kept);
  } else if (r->HasField(m, f)) {
    roundWith(*r->MutableMessage(&m, f), plan);
  }
}

void roundWith(Message& m, const Plan& plan) {
  if (plan.timestamp) {
    auto& t = static_cast<google::protobuf::Timestamp&>(m);
    if (t.nanos() > 0 && t.nanos() <= 999999999) t.set_nanos(t.nanos() / 1000000 * 1000000);
    return;
  }
  if (!plan.relevant) return;
  const Reflection* r = m.GetReflection();
  for (const Step& step : plan.fields) roundField(m, r, step.field, *step.plan);
  for (const OneofDescriptor* oneof : plan.oneofs) {
    const FieldDescriptor* f = r->GetOneofFieldDescriptor(m, oneof);
    if (!f) continue;
    if (const Plan* of = plan.member[static_cast<size_t>(f->index())]) roundField(m, r, f, *of);
  }
}

}  // namespace

void roundToKeptPrecision(google::protobuf::Message& m) { roundWith(m, planOf(m.GetDescriptor())); }

}  // namespace firehub::v1
