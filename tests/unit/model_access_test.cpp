// The access policy (DESIGN §9): who may do what, stated as a whole.
#include <doctest/doctest.h>

#include "model/access.hpp"

using namespace coapfleet::model;

namespace {

principal dtls(role r, std::string id) { return principal{r, std::move(id), true}; }
principal plain(role r) { return principal{r, {}, false}; }

}  // namespace

TEST_CASE("access: operators and trusted plain networks may do everything") {
  for (auto p : {dtls(role::operator_, "alice"), plain(role::trusted)}) {
    for (auto a : {access::read_fleet, access::manage_jobs, access::manage_artifacts,
                   access::system_action, access::manage_keys, access::read_audit})
      CHECK(authorize(p, a) == verdict::allow);
    CHECK(authorize(p, access::report_health, "node-7") == verdict::allow);
    CHECK(authorize(p, access::register_node, "node-7") == verdict::allow);
  }
}

TEST_CASE("access: a node acts for itself only and reads only its own") {
  auto n = dtls(role::node, "node-1");
  CHECK(authorize(n, access::register_node, "node-1") == verdict::allow);
  CHECK(authorize(n, access::report_health, "node-1") == verdict::allow);
  CHECK(authorize(n, access::report_step, "node-1") == verdict::allow);
  CHECK(authorize(n, access::read_node, "node-1") == verdict::allow);
  CHECK(authorize(n, access::read_job) == verdict::allow);
  CHECK(authorize(n, access::read_job, "node-1") == verdict::allow);
  CHECK(authorize(n, access::read_job, "node-2") == verdict::forbidden);
  CHECK(authorize(n, access::report_health, "node-2") == verdict::forbidden);
  CHECK(authorize(n, access::register_node, "node-2") == verdict::forbidden);
  CHECK(authorize(n, access::report_step, "node-2") == verdict::forbidden);
  CHECK(authorize(n, access::read_node, "node-2") == verdict::forbidden);
  CHECK(authorize(n, access::read_fleet) == verdict::forbidden);
  CHECK(authorize(n, access::manage_jobs) == verdict::forbidden);
  CHECK(authorize(n, access::system_action) == verdict::forbidden);
  CHECK(authorize(n, access::manage_keys) == verdict::forbidden);
  // An empty target never matches a node's identity.
  CHECK(authorize(n, access::report_health, "") == verdict::forbidden);
}

TEST_CASE("access: readers read; plain requests without trust must authenticate") {
  auto r = dtls(role::reader, "dashboard");
  CHECK(authorize(r, access::read_fleet) == verdict::allow);
  CHECK(authorize(r, access::read_node, "node-1") == verdict::allow);
  CHECK(authorize(r, access::manage_jobs) == verdict::forbidden);
  CHECK(authorize(r, access::report_health, "node-1") == verdict::forbidden);
  // --plain-access read: reads pass, changes get 4.01 (no identity), not 4.03.
  auto pr = plain(role::reader);
  CHECK(authorize(pr, access::read_fleet) == verdict::allow);
  CHECK(authorize(pr, access::system_action) == verdict::unauthenticated);
  CHECK(authorize(pr, access::report_health, "node-1") == verdict::unauthenticated);
  // --plain-access none, or a DTLS identity whose key was revoked: nothing.
  CHECK(authorize(plain(role::anonymous), access::read_fleet) == verdict::unauthenticated);
  CHECK(authorize(dtls(role::anonymous, "gone"), access::read_fleet) == verdict::forbidden);
}

TEST_CASE("access: role names and identities") {
  role r;
  CHECK(from_string("node", r));
  CHECK(r == role::node);
  CHECK(from_string("operator", r));
  CHECK(r == role::operator_);
  CHECK(from_string("reader", r));
  CHECK(r == role::reader);
  CHECK_FALSE(from_string("trusted", r));  // not a role a key can have
  CHECK_FALSE(from_string("root", r));
  CHECK(std::string(to_string(role::operator_)) == "operator");
  CHECK(valid_identity("node-01"));
  CHECK(valid_identity("alice@ops"));
  CHECK_FALSE(valid_identity(""));
  CHECK_FALSE(valid_identity(std::string(65, 'a')));
  CHECK_FALSE(valid_identity("a b"));
  CHECK_FALSE(valid_identity("a/b"));
}

TEST_CASE("access: option-4209 credentials are base64(user:password), \"Basic \" optional") {
  credentials c;
  // base64("alice:s3cret") and base64("node-1:k:with:colons")
  CHECK(parse_credentials("Basic YWxpY2U6czNjcmV0", c) == nullptr);
  CHECK(c.user == "alice");
  CHECK(c.password == "s3cret");
  CHECK(parse_credentials("YWxpY2U6czNjcmV0", c) == nullptr);
  CHECK(c.user == "alice");
  CHECK(parse_credentials("basic bm9kZS0xOms6d2l0aDpjb2xvbnM=", c) == nullptr);
  CHECK(c.user == "node-1");
  CHECK(c.password == "k:with:colons");
  CHECK(parse_credentials("", c) != nullptr);
  CHECK(parse_credentials("Basic ", c) != nullptr);
  CHECK(parse_credentials("Basic ***", c) != nullptr);
  CHECK(parse_credentials("YWxpY2U", c) != nullptr);           // no padding
  CHECK(parse_credentials("YWxp=2U6", c) != nullptr);          // padding inside
  CHECK(parse_credentials("YWxpY2U=", c) != nullptr);          // "alice": no colon
  CHECK(parse_credentials("YWxpY2U6", c) != nullptr);          // "alice:": empty password
  CHECK(parse_credentials("OnBhc3M=", c) != nullptr);          // ":pass": no user
  CHECK(parse_credentials("YSBiOmM=", c) != nullptr);          // "a b:c": not an identity
  // The messages never quote the value.
  CHECK(std::string(parse_credentials("Basic c2VjcmV0", c)).find("c2VjcmV0") == std::string::npos);
}

TEST_CASE("access: secrets compare equal only when equal") {
  CHECK(same_secret("abc", "abc"));
  CHECK_FALSE(same_secret("abc", "abd"));
  CHECK_FALSE(same_secret("abc", "abcd"));
  CHECK(same_secret("", ""));
}
