// The precision records are kept at: what their JSON (the API, the topics) writes, so a record
// read back from a topic is the record that was stored (replicas of one lake stay identical).
#pragma once

#include <google/protobuf/message.h>

namespace firehub::v1 {

// A double as it is kept: under 1e8 in magnitude, rounded to 7 decimal places (1e-7 degree is
// about a centimetre); larger ones and non-finite ones as they are.
double keptDouble(double v);

// Rounds every double of `message` (nested messages included) with keptDouble() and cuts every
// google.protobuf.Timestamp to the millisecond. Idempotent.
void roundToKeptPrecision(google::protobuf::Message& message);

}  // namespace firehub::v1
