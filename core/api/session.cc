// Sign-in for the one-map from any workstation: a session opened with an API key or a user's
// name and password, carried by an HttpOnly, SameSite=Strict cookie (Secure under TLS); a write
// made with the cookie also carries the session's CSRF token (X-CSRF-Token). Users are made by
// admins.
#include "api/router.h"
#include "api/layer_parts.h"
#include "firehub/auth.h"

namespace firehub::api {
namespace {

constexpr const char* kCookie = "fh_session";

std::string isoMs(int64_t ms) { return isoMillis(ms); }

}  // namespace

std::string Router::sessionCookie(const HTTPServerRequest& req) {
  Poco::Net::NameValueCollection cookies;
  req.getCookies(cookies);
  return cookies.get(kCookie, "");
}

std::string Router::csrfOf(const std::string& session_key) {
  return auth::sha256Hex("csrf\n" + session_key).substr(0, 32);
}

void Router::setSessionCookie(HTTPServerResponse& resp, const std::string& value,
                              int64_t max_age_s) {
  resp.set("Set-Cookie", std::string(kCookie) + "=" + value +
                             "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
                             std::to_string(max_age_s) + (tls() ? "; Secure" : ""));
}

// POST /api/v1/session {"key": "fh_..."} or {"user": "...", "password": "..."}.
void Router::signIn(HTTPServerRequest& req, HTTPServerResponse& resp) {
  audit_target_ = "session";
  if (!ctx_.keys) return sendError(resp, Status::failedPrecondition("authentication is off"));
  auto body = readBody(req);
  if (!body.isOk()) return sendError(resp, body.status());
  std::string key, user, password;
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(body.value()).extract<Poco::JSON::Object::Ptr>();
    key = o->optValue<std::string>("key", "");
    user = o->optValue<std::string>("user", "");
    password = o->optValue<std::string>("password", "");
  } catch (const Poco::Exception& e) {
    return sendError(resp,
                     Status::invalidArgument(
                         R"(body must be JSON {"key": ...} or {"user": ..., "password": ...}: )" +
                         e.displayText()));
  }
  auth::Principal principal;
  std::string of;
  if (!key.empty()) {
    auto p = ctx_.keys->authenticate(key);
    if (!p.isOk()) return (void)unauthorized(resp, p.status().message());
    principal = p.value();
    of = "key:" + principal.key_id;
  } else if (!user.empty() && ctx_.users) {
    audit_target_ = "session:" + bounded(user, 64);
    auto u = ctx_.users->verify(user, password);
    if (!u.isOk()) return (void)unauthorized(resp, u.status().message());
    principal = auth::principalOfUser(u.value());
    of = "user:" + user;
  } else {
    return sendError(resp, Status::invalidArgument(
                               R"(sign in with {"key": ...} or {"user": ..., "password": ...})"));
  }
  const int64_t ttl_s = int64_t{options_.session_hours} * 3600;
  const int64_t expires = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count() +
                          ttl_s * 1000;
  auto session = ctx_.keys->createSession(principal, of, expires);
  if (!session.isOk()) return sendError(resp, session.status());
  auto who = ctx_.keys->principal(session->first.id);
  if (who.isOk()) who_ = who.value();  // the audit entry names the session
  setSessionCookie(resp, session->second, ttl_s);
  Poco::JSON::Object o;
  o.set("session", session->first.id);
  o.set("of", of);
  o.set("role", auth::roleName(principal.role));
  o.set("agency", principal.agency);
  o.set("csrf", csrfOf(session->second));
  o.set("expires_at", isoMs(expires));
  send(resp, 200, toJson(o));
}

// GET /api/v1/session: who the request acts as (and, with the cookie, the CSRF token).
void Router::sessionInfo(HTTPServerRequest& req, HTTPServerResponse& resp) {
  Poco::JSON::Object o;
  o.set("anonymous", who_.anonymous);
  o.set("role", auth::roleName(who_.role));
  o.set("agency", who_.agency);
  o.set("restricted", who_.restricted);
  if (!who_.anonymous) o.set("key_id", who_.key_id);
  const std::string cookie = sessionCookie(req);
  const bool by_cookie = !cookie.empty() && req.get("Authorization", "").empty() && !who_.anonymous;
  o.set("session", by_cookie);
  if (by_cookie) o.set("csrf", csrfOf(cookie));
  send(resp, 200, toJson(o));
}

// DELETE /api/v1/session: signs out (the session's key is revoked, the cookie cleared).
void Router::signOut(HTTPServerRequest& req, HTTPServerResponse& resp) {
  audit_target_ = "session";
  const std::string cookie = sessionCookie(req);
  if (cookie.empty() || who_.anonymous || !req.get("Authorization", "").empty()) {
    return sendError(resp, Status::invalidArgument("no sign-in session on this request"));
  }
  Status s = ctx_.keys->revoke(who_.key_id);
  if (!s.isOk()) return sendError(resp, s);
  setSessionCookie(resp, "", 0);
  send(resp, 200, R"({"signed_out":true})");
}

// POST /api/v1/users (admins): {"name", "password", "role", "agency"?, "domains"?, "restricted"?}.
void Router::createUser(HTTPServerRequest& req, HTTPServerResponse& resp) {
  auto body = readBody(req);
  if (!body.isOk()) return sendError(resp, body.status());
  auth::UserInfo u;
  std::string password, role_name;
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(body.value()).extract<Poco::JSON::Object::Ptr>();
    u.name = o->optValue<std::string>("name", "");
    password = o->optValue<std::string>("password", "");
    role_name = o->optValue<std::string>("role", "viewer");
    u.agency = o->optValue<std::string>("agency", "");
    u.restricted = o->optValue<bool>("restricted", false);
    auto listed = domainList(*o);
    if (!listed.isOk()) return sendError(resp, listed.status());
    u.domains = listed.value();
  } catch (const Poco::Exception& e) {
    return sendError(resp,
                     Status::invalidArgument(
                         R"(body must be JSON {"name": ..., "password": ..., "role": ...}: )" +
                         e.displayText()));
  }
  auto role = auth::parseRole(role_name);
  if (!role.isOk()) return sendError(resp, role.status());
  u.role = role.value();
  u.created_by = who_.key_id;
  audit_target_ = bounded(u.name, 64);
  auto created = ctx_.users->create(u, password);
  if (!created.isOk()) return sendError(resp, created.status());
  send(resp, 201, toJson(userJson(created.value())));
}

Poco::JSON::Object Router::userJson(const auth::UserInfo& u) {
  Poco::JSON::Object o;
  o.set("name", u.name);
  o.set("role", auth::roleName(u.role));
  o.set("agency", u.agency);
  Poco::JSON::Array domains;
  for (const auto& d : u.domains) domains.add(d);
  o.set("domains", domains);
  o.set("restricted", u.restricted);
  o.set("created_at", isoMs(u.created_at));
  o.set("created_by", u.created_by);
  return o;
}

void Router::listUsers(HTTPServerResponse& resp) {
  auto users = ctx_.users->list();
  if (!users.isOk()) return sendError(resp, users.status());
  Poco::JSON::Array arr;
  for (const auto& u : users.value()) arr.add(userJson(u));
  Poco::JSON::Object o;
  o.set("users", arr);
  send(resp, 200, toJson(o));
}

// DELETE /api/v1/users/{name}: the user and every session they opened.
void Router::deleteUser(HTTPServerResponse& resp, const std::string& name) {
  audit_target_ = bounded(name, 64);
  Status s = ctx_.users->remove(name);
  if (!s.isOk()) return sendError(resp, s);
  auto ended = ctx_.keys ? ctx_.keys->revokeSessions("user:" + name) : Result<size_t>(size_t{0});
  if (!ended.isOk()) return sendError(resp, ended.status());
  send(resp, 200, R"({"deleted":true,"sessions_ended":)" + std::to_string(ended.value()) + "}");
}

}  // namespace firehub::api
