#include "firehub/status.h"

#include <gtest/gtest.h>

namespace firehub {
namespace {

Result<int> half(int v) {
  if (v % 2) return Status::invalidArgument("odd: " + std::to_string(v));
  return v / 2;
}

Status chain(int v) {
  FIREHUB_RETURN_IF_ERROR(half(v).status());
  return Status::ok();
}

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.isOk());
  EXPECT_EQ(s.toString(), "ok");
}

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = Status::notFound("no feed 'x'");
  EXPECT_FALSE(s.isOk());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.toString(), "not_found: no feed 'x'");
}

TEST(StatusTest, RetryableOnlyForTransientFailures) {
  EXPECT_TRUE(Status::unavailable("broker down").retryable());
  EXPECT_TRUE(Status::resourceExhausted("disk full").retryable());
  EXPECT_FALSE(Status::invalidArgument("bad row").retryable());
  EXPECT_FALSE(Status::dataLoss("corrupt").retryable());
  EXPECT_FALSE(Status::ok().retryable());
}

TEST(ResultTest, ValueOrError) {
  auto good = half(8);
  ASSERT_TRUE(good.isOk());
  EXPECT_EQ(good.value(), 4);
  EXPECT_TRUE(good.status().isOk());
  auto bad = half(3);
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "odd: 3");
}

TEST(ResultTest, ReturnIfErrorPropagates) {
  EXPECT_TRUE(chain(2).isOk());
  EXPECT_EQ(chain(5).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace firehub
