// Who may do what: API keys of principals (admin, operator, agency, subscriber, viewer), stored
// only as SHA-256 hashes in the lake, and a hash-chained audit log of every write and admin
// action.
//
// A key reads "fh_<id>_<secret>": the id finds the stored entry, the secret (32 random bytes,
// hex) is checked against its hash in constant time. The full key is shown once, when created.
// @remark Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "firehub/lake.h"
#include "firehub/status.h"

namespace firehub::auth {

enum class Role { kAdmin, kOperator, kAgency, kSubscriber, kViewer };

const char* roleName(Role role);
Result<Role> parseRole(const std::string& name);

struct Principal {
  std::string key_id;  // empty for an anonymous reader
  Role role = Role::kViewer;
  std::string agency;                // agency keys: the agency they act for
  std::vector<std::string> domains;  // agency keys: the domains an admin lets them write
  bool restricted = false;           // may see fields classified restricted
  bool anonymous = false;

  bool canAdminister() const { return role == Role::kAdmin; }
  // Register, pause, resume and delete feeds of any agency; grant access.
  bool canOperate() const { return role == Role::kAdmin || role == Role::kOperator; }
  // Push to / manage a feed owned by `feed_agency`.
  bool mayWriteFeed(const std::string& feed_agency) const {
    return canOperate() || (role == Role::kAgency && agency == feed_agency);
  }
  // Write records of `domain` (through a feed of its connector's domain).
  bool mayWriteDomain(const std::string& domain) const;
  std::string describe() const;
};

struct KeyInfo {
  std::string id;
  Role role = Role::kViewer;
  std::string agency;
  std::vector<std::string> domains;  // agency keys only; empty: may register no feed
  bool restricted = false;
  std::string note;
  int64_t created_at = 0;
  std::string created_by;
  bool revoked = false;
  // A sign-in session's key (the one-map's cookie): when it ends (ms since the epoch; 0: never)
  // and what it was opened with, "key:<id>" or "user:<name>" (empty: not a session). It lives
  // only while that key or user does.
  int64_t expires_at = 0;
  std::string session_of;
};

class KeyStore {
 public:
  explicit KeyStore(lake::Lake& lake) : lake_(lake) {}

  // A new key; returns its entry and the full key (the only time it exists outside the caller).
  // `domains` (agency keys only) must name domains of the shared schema.
  Result<std::pair<KeyInfo, std::string>> create(Role role, const std::string& agency,
                                                 bool restricted, const std::string& note,
                                                 const std::string& created_by,
                                                 const std::vector<std::string>& domains = {});
  // The principal of a presented key; unauthenticated when unknown, malformed or revoked.
  Result<Principal> authenticate(const std::string& key) const;
  // The principal of a key by its id, for checks made after the request that presented it (a
  // stream, a delivery): unauthenticated when the key is unknown or revoked.
  Result<Principal> principal(const std::string& id) const;
  Status revoke(const std::string& id);
  // A session key acting as `of` until `expires_at_ms`, opened with `session_of` ("key:<id>" or
  // "user:<name>").
  Result<std::pair<KeyInfo, std::string>> createSession(const Principal& of,
                                                        const std::string& session_of,
                                                        int64_t expires_at_ms);
  // Revokes every session opened with `session_of`; how many.
  Result<size_t> revokeSessions(const std::string& session_of);
  // Replaces the domains an agency key may write.
  Result<KeyInfo> setDomains(const std::string& id, const std::vector<std::string>& domains);
  // Stored keys that do not decode (a damaged entry): their ids, for /readyz.
  std::vector<std::string> undecodable() const;
  Result<std::vector<KeyInfo>> list() const;
  // On the first start (no admin key yet) creates one and writes it to `key_file` (mode 0600).
  // Returns the new key, or nullopt when an admin key already exists.
  Result<std::optional<std::string>> ensureAdmin(const std::string& key_file);

 private:
  Status live(const KeyInfo& k) const;
  // The stored entry of a key and its secret's hash; nullopt when unknown or undecodable.
  Result<std::optional<std::pair<KeyInfo, std::string>>> load(const std::string& id) const;
  lake::Lake& lake_;
  mutable std::mutex mu_;
};

// People who sign in to the one-map with a name and password (made by admins): the password
// kept only as a salted scrypt hash (N = 2^15, r = 8, p = 1), slow by design.
struct UserInfo {
  std::string name;  // 1-64 of a-z, 0-9, '.', '_', '-'
  Role role = Role::kViewer;
  std::string agency;
  std::vector<std::string> domains;
  bool restricted = false;
  int64_t created_at = 0;
  std::string created_by;
};

class UserStore {
 public:
  explicit UserStore(lake::Lake& lake) : lake_(lake) {}
  // A password has at least 10 characters; AlreadyExists for a taken name.
  Result<UserInfo> create(const UserInfo& user, const std::string& password);
  // The user when the password is theirs; unauthenticated otherwise (one message for an unknown
  // name and a wrong password).
  Result<UserInfo> verify(const std::string& name, const std::string& password) const;
  Result<std::optional<UserInfo>> get(const std::string& name) const;
  Result<std::vector<UserInfo>> list() const;
  Status remove(const std::string& name);

 private:
  lake::Lake& lake_;
  std::mutex mu_;
};
Principal principalOfUser(const UserInfo& user);

// One audit entry: who did what, to what, with which outcome.
struct AuditEntry {
  uint64_t sequence = 0;
  int64_t at_ms = 0;
  std::string actor;  // key id, or "anonymous"/"system"
  std::string role;
  std::string action;  // e.g. "POST /api/v1/feeds"
  std::string target;  // e.g. the feed id
  int status = 0;      // HTTP status of the outcome
  std::string prev_hash;
  std::string hash;  // SHA-256 of prev_hash and the fields above
};

// An entry as stored and as the API lists it.
std::string auditEntryJson(const AuditEntry& entry);

class AuditLog {
 public:
  explicit AuditLog(lake::Lake& lake);
  Status append(const std::string& actor, const std::string& role, const std::string& action,
                const std::string& target, int status);
  Result<std::vector<AuditEntry>> list(uint64_t from, size_t max) const;
  // Walks the chain: nullopt when intact, else a description of the first broken link. The
  // chain starts at the anchor of the entries retention removed, when there is one.
  Result<std::optional<std::string>> verify() const;
  // Removes the entries older than `before_ms` (the newest entry always stays), leaving an
  // anchor: the sequence and hash of the last one removed, so the chain still verifies from it.
  // Returns how many were removed.
  Result<size_t> expire(int64_t before_ms);
  // The anchor: {"through": <sequence>, "hash": ..., "removed": <count>, "at_ms": ...}; nullopt
  // when nothing was removed.
  Result<std::optional<std::string>> anchor() const;

 private:
  lake::Lake& lake_;
  std::mutex mu_;
  uint64_t next_ = 1;
  std::string last_hash_;
};

std::string sha256Hex(const std::string& data);
// The domains of the shared schema (each body type's (domain) option), sorted.
const std::vector<std::string>& schemaDomains();
// The same as text: "alarm, building, ..." (for messages naming them).
std::string schemaDomainList();

}  // namespace firehub::auth
