// Keys are random, stored only as hashes, checked in constant time and revocable; the audit
// chain names the first entry that was altered or removed.
#include "firehub/auth.h"

#include <gtest/gtest.h>
#include <chrono>
#include <sys/stat.h>

#include "test_support.h"

namespace firehub::auth {
namespace {

using firehub::testing::TempDir;

std::unique_ptr<lake::Lake> openLake(const std::string& path) {
  lake::LakeOptions lo;
  lo.path = path;
  lo.sync = false;
  auto lake = lake::Lake::open(lo);
  EXPECT_TRUE(lake.isOk());
  return std::move(lake).value();
}

TEST(AuthTest, KeysAuthenticateUntilRevokedAndAreStoredOnlyAsHashes) {
  TempDir dir;
  auto lake = openLake(dir.path());
  KeyStore keys(*lake);
  auto made = keys.create(Role::kAgency, "water-bureau", false, "test", "admin");
  ASSERT_TRUE(made.isOk());
  const std::string& key = made->second;
  ASSERT_EQ(key.rfind("fh_", 0), 0u);
  auto who = keys.authenticate(key);
  ASSERT_TRUE(who.isOk());
  EXPECT_EQ(who->role, Role::kAgency);
  EXPECT_EQ(who->agency, "water-bureau");
  EXPECT_FALSE(who->restricted);
  EXPECT_TRUE(who->mayWriteFeed("water-bureau"));
  EXPECT_FALSE(who->mayWriteFeed("met"));
  bool secret_stored = false;
  ASSERT_TRUE(lake->scanMeta("keys/",
                             [&](const std::string&, const std::string& v) {
                               secret_stored |= v.find(key.substr(16)) != std::string::npos;
                             })
                  .isOk());
  EXPECT_FALSE(secret_stored);
  std::string wrong = key;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_EQ(keys.authenticate(wrong).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(keys.authenticate("fh_short").status().code(), StatusCode::kUnauthenticated);
  ASSERT_TRUE(keys.revoke(made->first.id).isOk());
  EXPECT_EQ(keys.authenticate(key).status().code(), StatusCode::kUnauthenticated);
  EXPECT_FALSE(keys.create(Role::kAgency, "", false, "", "admin").isOk());

  // The first admin key is written once, mode 0600.
  auto admin = keys.ensureAdmin(dir.path() + "/admin.key");
  ASSERT_TRUE(admin.isOk());
  ASSERT_TRUE(admin.value().has_value());
  EXPECT_EQ(firehub::testing::adminKey(dir.path()), *admin.value());
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() + "/admin.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = keys.ensureAdmin(dir.path() + "/admin.key");
  ASSERT_TRUE(again.isOk());
  EXPECT_FALSE(again.value().has_value());
}

TEST(AuthTest, SessionsLiveOnlyWhileTheirKeyOrUserDoesAndUntilTheyEnd) {
  TempDir dir;
  auto lake = openLake(dir.path());
  KeyStore keys(*lake);
  UserStore users(*lake);
  const int64_t later = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count() +
                        3600000;
  // A session of a key acts as that key, and ends with it.
  auto made = keys.create(Role::kOperator, "", false, "desk", "admin");
  ASSERT_TRUE(made.isOk());
  auto parent = keys.authenticate(made->second);
  ASSERT_TRUE(parent.isOk());
  auto session = keys.createSession(parent.value(), "key:" + made->first.id, later);
  ASSERT_TRUE(session.isOk());
  auto as = keys.authenticate(session->second);
  ASSERT_TRUE(as.isOk());
  EXPECT_EQ(as->role, Role::kOperator);
  ASSERT_TRUE(keys.revoke(made->first.id).isOk());
  EXPECT_FALSE(keys.authenticate(session->second).isOk()) << "its key was revoked";
  EXPECT_FALSE(keys.principal(session->first.id).isOk());
  // A session past its end is refused.
  auto ended = keys.createSession(as.value(), "key:" + made->first.id, later - 7200000);
  ASSERT_TRUE(ended.isOk());
  auto refused = keys.authenticate(ended->second);
  ASSERT_FALSE(refused.isOk());
  // Users: a slow salted hash, one message for a wrong name and a wrong password.
  UserInfo u;
  u.name = "duty.officer";
  u.role = Role::kViewer;
  EXPECT_FALSE(users.create(u, "short").isOk()) << "at least 10 characters";
  UserInfo bad = u;
  bad.name = "Duty Officer";
  EXPECT_FALSE(users.create(bad, "long enough password").isOk());
  ASSERT_TRUE(users.create(u, "long enough password").isOk());
  EXPECT_EQ(users.create(u, "long enough password").status().code(), StatusCode::kAlreadyExists);
  auto wrong = users.verify("duty.officer", "not the password");
  auto unknown = users.verify("nobody", "long enough password");
  ASSERT_FALSE(wrong.isOk());
  ASSERT_FALSE(unknown.isOk());
  EXPECT_EQ(wrong.status().message(), unknown.status().message());
  auto right = users.verify("duty.officer", "long enough password");
  ASSERT_TRUE(right.isOk());
  bool plain = false;
  ASSERT_TRUE(lake->scanMeta("users/",
                             [&](const std::string&, const std::string& v) {
                               plain |= v.find("long enough password") != std::string::npos;
                             })
                  .isOk());
  EXPECT_FALSE(plain) << "the password is never stored";
  auto user_session =
      keys.createSession(principalOfUser(right.value()), "user:duty.officer", later);
  ASSERT_TRUE(user_session.isOk());
  EXPECT_TRUE(keys.authenticate(user_session->second).isOk());
  ASSERT_TRUE(users.remove("duty.officer").isOk());
  EXPECT_FALSE(keys.authenticate(user_session->second).isOk()) << "its user is gone";
  auto revoked = keys.revokeSessions("user:duty.officer");
  ASSERT_TRUE(revoked.isOk());
  EXPECT_EQ(revoked.value(), 1u);
}

TEST(AuthTest, AuditChainNamesTheFirstAlteredOrMissingEntry) {
  TempDir dir;
  auto lake = openLake(dir.path());
  {
    AuditLog log(*lake);
    for (int i = 0; i < 5; ++i) {
      std::string target = std::to_string(i);
      target.insert(target.begin(), 'f');
      ASSERT_TRUE(log.append("k1", "admin", "POST /api/v1/feeds", target, 201).isOk());
    }
    auto ok = log.verify();
    ASSERT_TRUE(ok.isOk());
    EXPECT_FALSE(ok.value().has_value());
  }
  {
    AuditLog reopened(*lake);  // the chain continues after a restart
    ASSERT_TRUE(reopened.append("k2", "agency", "POST /api/v1/feeds/x/records", "x", 403).isOk());
    EXPECT_FALSE(reopened.verify().value().has_value());
  }
  // Someone edits entry 3 in place.
  auto entry = lake->getMeta("audit/00000000000000000003");
  ASSERT_TRUE(entry.isOk() && entry.value());
  const std::string& original = *entry.value();
  size_t at = original.find("\"status\":201");
  ASSERT_NE(at, std::string::npos);
  std::string edited = original.substr(0, at);
  edited.append("\"status\":200").append(original.substr(at + 12));
  ASSERT_TRUE(lake->putMeta("audit/00000000000000000003", edited).isOk());
  AuditLog log(*lake);
  auto broken = log.verify();
  ASSERT_TRUE(broken.isOk());
  ASSERT_TRUE(broken.value().has_value());
  EXPECT_NE(broken.value()->find("entry 3 was altered"), std::string::npos) << *broken.value();
  // Put it back, then remove entry 2.
  ASSERT_TRUE(lake->putMeta("audit/00000000000000000003", *entry.value()).isOk());
  EXPECT_FALSE(log.verify().value().has_value());
  ASSERT_TRUE(lake->deleteMeta("audit/00000000000000000002").isOk());
  broken = log.verify();
  ASSERT_TRUE(broken.value().has_value());
  EXPECT_NE(broken.value()->find("entry 2 is missing"), std::string::npos) << *broken.value();
}

}  // namespace
}  // namespace firehub::auth
