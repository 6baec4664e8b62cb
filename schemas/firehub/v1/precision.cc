#include "firehub/v1/precision.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/timestamp.pb.h>

#include <cmath>

namespace firehub::v1 {

double keptDouble(double v) {
  return std::isfinite(v) && std::fabs(v) < 1e8 ? std::round(v * 1e7) / 1e7 : v;
}

void roundToKeptPrecision(google::protobuf::Message& m) {
  using google::protobuf::FieldDescriptor;
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  if (d == google::protobuf::Timestamp::descriptor()) {
    auto& t = static_cast<google::protobuf::Timestamp&>(m);
    if (t.nanos() > 0 && t.nanos() <= 999999999) t.set_nanos(t.nanos() / 1000000 * 1000000);
    return;
  }
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);  // the set ones only: nothing is added
  for (const FieldDescriptor* f : fields) {
    if (f->is_repeated()) {
      const int n = r->FieldSize(m, f);
      for (int k = 0; k < n; ++k) {
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE)
          r->SetRepeatedDouble(&m, f, k, keptDouble(r->GetRepeatedDouble(m, f, k)));
        else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE)
          roundToKeptPrecision(*r->MutableRepeatedMessage(&m, f, k));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
      const double v = r->GetDouble(m, f);
      if (const double kept = keptDouble(v); kept != v) r->SetDouble(&m, f, kept);
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      roundToKeptPrecision(*r->MutableMessage(&m, f));
    }
  }
}

}  // namespace firehub::v1
