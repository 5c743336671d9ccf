/* test-policy.c: the broker's access policy
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Linked with the library's objects: the policy is private API. Peers
 * are faked by editing the struct ucred inside a GCredentials, so every
 * uid and gid can be tried without other users on the machine.
 */
#include "qipc-bus.h"
#include "qipc-policy-private.h"
#include "test-utils.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OWNER 1000
#define OTHER 1001

static GCredentials *
credentials_new (uid_t uid,
                 gid_t gid)
{
  GCredentials *credentials = g_credentials_new ();
  struct ucred *ucred = g_credentials_get_native (credentials, G_CREDENTIALS_TYPE_LINUX_UCRED);

  g_assert_nonnull (ucred);
  ucred->pid = 4242;
  ucred->uid = uid;
  ucred->gid = gid;
  return credentials;
}

/* The grant of a peer with @uid and @gid, or NULL if it is refused. */
static const QipcPolicyGrant *
lookup (QipcPolicy *policy,
        uid_t       uid,
        gid_t       gid)
{
  g_autoptr(GCredentials) credentials = credentials_new (uid, gid);

  return _qipc_policy_lookup (policy, credentials);
}

static QipcPolicy *
policy_from_json (const char *json)
{
  g_autoptr(GError) error = NULL;
  QipcPolicy *policy = _qipc_policy_new_from_data (OWNER, json, -1, &error);

  g_assert_no_error (error);
  g_assert_nonnull (policy);
  return policy;
}

static void
assert_all (const QipcPolicyGrant *grant)
{
  g_assert_nonnull (grant);
  g_assert_true (_qipc_policy_grant_is_all (grant));
  g_assert_true (_qipc_policy_may_send (grant, "any/channel"));
  g_assert_true (_qipc_policy_may_receive (grant, "any/channel"));
  g_assert_true (_qipc_policy_may_receive (grant, "**"));
  g_assert_true (_qipc_policy_may_monitor (grant));
}

static void
test_default (void)
{
  g_autoptr(QipcPolicy) policy = _qipc_policy_new_default (OWNER);

  assert_all (lookup (policy, OWNER, OWNER));
  g_assert_null (lookup (policy, OTHER, OWNER));
  g_assert_null (lookup (policy, 0, 0));
  g_assert_null (_qipc_policy_lookup (policy, NULL));
  g_assert_false (_qipc_policy_admits_others (policy));
}

/* An empty document is refused, but an empty object is the default. */
static void
test_empty_object (void)
{
  const char *documents[] = { "{}", "{\"allow\": []}", "{\"comment\": \"nobody else\"}" };

  for (gsize i = 0; i < G_N_ELEMENTS (documents); i++)
    {
      g_autoptr(QipcPolicy) policy = policy_from_json (documents[i]);

      assert_all (lookup (policy, OWNER, 0));
      g_assert_null (lookup (policy, OTHER, OTHER));
      g_assert_null (_qipc_policy_lookup (policy, NULL));
      g_assert_false (_qipc_policy_admits_others (policy));
    }
}

/* Rules cannot take rights from the owner, whatever its gid. */
static void
test_owner_always_allowed (void)
{
  g_autoptr(QipcPolicy) policy = policy_from_json (
    "{ \"allow\": ["
    "    { \"uid\": 1000, \"send\": [], \"receive\": [], \"monitor\": false },"
    "    { \"gid\": 100, \"send\": [\"chat/*\"] }"
    "] }");

  assert_all (lookup (policy, OWNER, OWNER));
  assert_all (lookup (policy, OWNER, 100));
  assert_all (lookup (policy, OWNER, 0));
}

static void
test_uid (void)
{
  g_autoptr(QipcPolicy) policy = policy_from_json (
    "{ \"allow\": ["
    "    { \"uid\": 1001, \"send\": [\"app/**\"], \"receive\": [\"app/**\", \"public/*\"] }"
    "] }");
  const QipcPolicyGrant *grant = lookup (policy, OTHER, 12345);

  g_assert_nonnull (grant);
  g_assert_false (_qipc_policy_grant_is_all (grant));
  g_assert_true (_qipc_policy_may_send (grant, "app/x"));
  g_assert_true (_qipc_policy_may_send (grant, "app/x/y/z"));
  g_assert_false (_qipc_policy_may_send (grant, "app"));
  g_assert_false (_qipc_policy_may_send (grant, "public/news"));
  g_assert_false (_qipc_policy_may_send (grant, "application/x"));
  g_assert_true (_qipc_policy_may_receive (grant, "app/x"));
  g_assert_true (_qipc_policy_may_receive (grant, "public/news"));
  g_assert_false (_qipc_policy_may_receive (grant, "public/news/today"));
  g_assert_false (_qipc_policy_may_receive (grant, "other"));
  g_assert_false (_qipc_policy_may_monitor (grant));

  g_assert_null (lookup (policy, OTHER + 1, 12345));
  g_assert_null (_qipc_policy_lookup (policy, NULL));
  g_assert_true (_qipc_policy_admits_others (policy));
}

static void
test_gid (void)
{
  g_autoptr(QipcPolicy) policy = policy_from_json (
    "{ \"allow\": [ { \"gid\": 100, \"send\": [\"chat/*\"] } ] }");
  const QipcPolicyGrant *grant = lookup (policy, 1005, 100);

  g_assert_nonnull (grant);
  g_assert_true (_qipc_policy_may_send (grant, "chat/room"));
  g_assert_false (_qipc_policy_may_send (grant, "chat/room/1"));
  g_assert_false (_qipc_policy_may_receive (grant, "chat/room"));
  g_assert_false (_qipc_policy_may_monitor (grant));

  /* A gid rule is for the peer's gid, not for a uid of the same number. */
  g_assert_null (lookup (policy, 100, 101));
  g_assert_null (lookup (policy, 1005, 101));
  g_assert_true (_qipc_policy_admits_others (policy));
}

/* "user" and "group" are looked up when the policy is read; root and
 * the group root exist everywhere. */
static void
test_names (void)
{
  g_autoptr(QipcPolicy) policy = policy_from_json (
    "{ \"allow\": ["
    "    { \"user\": \"root\", \"send\": [\"from-root\"] },"
    "    { \"group\": \"root\", \"receive\": [\"to-root-group\"] }"
    "] }");
  const QipcPolicyGrant *grant;

  grant = lookup (policy, 0, 5);
  g_assert_nonnull (grant);
  g_assert_true (_qipc_policy_may_send (grant, "from-root"));
  g_assert_false (_qipc_policy_may_receive (grant, "to-root-group"));

  grant = lookup (policy, 7, 0);
  g_assert_nonnull (grant);
  g_assert_false (_qipc_policy_may_send (grant, "from-root"));
  g_assert_true (_qipc_policy_may_receive (grant, "to-root-group"));

  grant = lookup (policy, 0, 0);
  g_assert_nonnull (grant);
  g_assert_true (_qipc_policy_may_send (grant, "from-root"));
  g_assert_true (_qipc_policy_may_receive (grant, "to-root-group"));

  g_assert_null (lookup (policy, 7, 5));
}

static void
test_anonymous (void)
{
  g_autoptr(QipcPolicy) policy = policy_from_json (
    "{ \"allow\": ["
    "    { \"anonymous\": true, \"send\": [\"tcp/*\"], \"receive\": [\"public/**\"],"
    "      \"monitor\": false }"
    "] }");
  const QipcPolicyGrant *grant = _qipc_policy_lookup (policy, NULL);

  g_assert_nonnull (grant);
  g_assert_false (_qipc_policy_grant_is_all (grant));
  g_assert_true (_qipc_policy_may_send (grant, "tcp/in"));
  g_assert_false (_qipc_policy_may_send (grant, "public/news"));
  g_assert_true (_qipc_policy_may_receive (grant, "public/news/today"));
  g_assert_false (_qipc_policy_may_receive (grant, "tcp/in"));
  g_assert_false (_qipc_policy_may_monitor (grant));

  /* Local peers always have credentials: anonymous is not for them. */
  g_assert_null (lookup (policy, OTHER, OTHER));
  g_assert_true (_qipc_policy_admits_others (policy));
}

static void
test_monitor (void)
{
  g_autoptr(QipcPolicy) policy = policy_from_json (
    "{ \"allow\": [ { \"uid\": 1001, \"monitor\": true } ] }");
  const QipcPolicyGrant *grant = lookup (policy, OTHER, OTHER);

  g_assert_nonnull (grant);
  g_assert_true (_qipc_policy_may_monitor (grant));
  g_assert_false (_qipc_policy_grant_is_all (grant));
  g_assert_false (_qipc_policy_may_send (grant, "a"));
  g_assert_false (_qipc_policy_may_receive (grant, "a"));
}

/* A peer that several rules match gets all their rights. */
static void
test_union (void)
{
  g_autoptr(QipcPolicy) policy = policy_from_json (
    "{ \"allow\": ["
    "    { \"uid\": 1001, \"send\": [\"a/*\"] },"
    "    { \"gid\": 100, \"send\": [\"b\"], \"receive\": [\"c/**\"] },"
    "    { \"uid\": 1001, \"monitor\": true, \"comment\": \"later rules add\" },"
    "    { \"gid\": 200, \"receive\": [\"d\"] }"
    "] }");
  const QipcPolicyGrant *both = lookup (policy, OTHER, 100);
  const QipcPolicyGrant *uid_only = lookup (policy, OTHER, 300);
  const QipcPolicyGrant *gid_only = lookup (policy, 2000, 100);

  g_assert_nonnull (both);
  g_assert_true (_qipc_policy_may_send (both, "a/x"));
  g_assert_true (_qipc_policy_may_send (both, "b"));
  g_assert_true (_qipc_policy_may_receive (both, "c/x"));
  g_assert_false (_qipc_policy_may_receive (both, "d"));
  g_assert_true (_qipc_policy_may_monitor (both));

  g_assert_nonnull (uid_only);
  g_assert_true (_qipc_policy_may_send (uid_only, "a/x"));
  g_assert_false (_qipc_policy_may_send (uid_only, "b"));
  g_assert_true (_qipc_policy_may_monitor (uid_only));

  g_assert_nonnull (gid_only);
  g_assert_false (_qipc_policy_may_send (gid_only, "a/x"));
  g_assert_true (_qipc_policy_may_send (gid_only, "b"));
  g_assert_false (_qipc_policy_may_monitor (gid_only));

  /* The same credentials get the same grant back, not a new one. */
  g_assert_true (lookup (policy, OTHER, 100) == both);
  g_assert_true (both != uid_only);
}

/* A subscription pattern is allowed when one granted pattern matches
 * every name it can match. */
static void
test_receive_patterns (void)
{
  g_autoptr(QipcPolicy) policy = policy_from_json (
    "{ \"allow\": ["
    "    { \"uid\": 1001, \"receive\": [\"app/**\", \"public/*\", \"x/*/y\"] }"
    "] }");
  const QipcPolicyGrant *grant = lookup (policy, OTHER, OTHER);

  g_assert_true (_qipc_policy_may_receive (grant, "app/**"));
  g_assert_true (_qipc_policy_may_receive (grant, "app/*"));
  g_assert_true (_qipc_policy_may_receive (grant, "app/*/z/**"));
  g_assert_true (_qipc_policy_may_receive (grant, "public/*"));
  g_assert_true (_qipc_policy_may_receive (grant, "x/*/y"));
  g_assert_true (_qipc_policy_may_receive (grant, "x/a/y"));
  g_assert_false (_qipc_policy_may_receive (grant, "public/**"));
  g_assert_false (_qipc_policy_may_receive (grant, "public/*/*"));
  g_assert_false (_qipc_policy_may_receive (grant, "*"));
  g_assert_false (_qipc_policy_may_receive (grant, "**"));
  g_assert_false (_qipc_policy_may_receive (grant, "*/x"));
  g_assert_false (_qipc_policy_may_receive (grant, "x/**"));
  g_assert_false (_qipc_policy_may_receive (grant, "x/*/y/**"));
  g_assert_false (_qipc_policy_may_receive (grant, "app"));
}

static void
test_admits_others (void)
{
  g_autoptr(QipcPolicy) owner_only = policy_from_json (
    "{ \"allow\": [ { \"uid\": 1000, \"send\": [\"a\"] } ] }");
  g_autoptr(QipcPolicy) other = policy_from_json (
    "{ \"allow\": [ { \"uid\": 1000 }, { \"uid\": 1001 } ] }");

  g_assert_false (_qipc_policy_admits_others (owner_only));
  g_assert_true (_qipc_policy_admits_others (other));
  /* A rule without rights still lets its peers connect. */
  g_assert_nonnull (lookup (other, OTHER, OTHER));
  g_assert_false (_qipc_policy_may_send (lookup (other, OTHER, OTHER), "a"));
}

static char *
write_policy_file (const char *contents)
{
  g_autoptr(GError) error = NULL;
  char *path = NULL;
  int fd = g_file_open_tmp ("test-policy-XXXXXX.json", &path, &error);

  g_assert_no_error (error);
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return path;
}

static void
test_file (void)
{
  g_autofree char *path = write_policy_file (
    "{\n  \"allow\": [\n    { \"uid\": 1001, \"send\": [\"a\"] }\n  ]\n}\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcPolicy) policy = _qipc_policy_new_from_file (OWNER, path, &error);

  g_assert_no_error (error);
  g_assert_true (_qipc_policy_may_send (lookup (policy, OTHER, OTHER), "a"));
  g_unlink (path);
}

/* Errors name the file, then the position (syntax) or the rule and key
 * (meaning). */
static void
assert_file_error (const char *contents,
                   const char *expected_after_path)
{
  g_autofree char *path = write_policy_file (contents);
  g_autofree char *expected = g_strconcat ("Invalid policy: ", path, expected_after_path, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcPolicy) policy = _qipc_policy_new_from_file (OWNER, path, &error);

  g_assert_null (policy);
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED);
  if (!g_str_has_prefix (error->message, expected))
    g_error ("Expected a message starting with '%s', got '%s'", expected, error->message);
  g_unlink (path);
}

static void
test_file_errors (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcPolicy) policy = NULL;

  assert_file_error ("{\n  \"allow\": [\n    { \"uid\": 10x }\n  ]\n}\n", ":3:");
  assert_file_error ("{\n  \"allow\": [\n    { \"uid\": 1, \"uid\": 2 }\n  ]\n}\n", ":3:");
  assert_file_error ("{ \"allow\": [ { \"uid\": 1, \"sned\": [] } ] }",
                     ": allow[0]: unknown key \"sned\"");
  /* Deep enough to overflow json-glib's stack, were it read. */
  {
    g_autofree char *brackets = qipc_test_nest ("[", "", "]", 200000);
    g_autofree char *deep = g_strdup_printf ("{ \"comment\": %s }", brackets);

    assert_file_error (deep, ": JSON nested deeper than 128 levels");
    policy = _qipc_policy_new_from_data (OWNER, deep, -1, &error);
    g_assert_null (policy);
    g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED);
    g_assert_cmpstr (error->message, ==, "Invalid policy: JSON nested deeper than 128 levels");
    g_clear_error (&error);
  }

  /* A file that cannot be read is not a bad policy. */
  policy = _qipc_policy_new_from_file (OWNER, "/nonexistent/qipc-policy.json", &error);
  g_assert_null (policy);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

typedef struct {
  const char *name;
  const char *json;
  const char *message;  /* what the message must contain */
} ErrorCase;

static const ErrorCase error_cases[] = {
  { "syntax", "{ \"allow\": [ { \"uid\": 1000, } ] }",
    "Invalid policy: <data>:1:27: Parse error" },
  { "syntax-line", "{\n  \"allow\": [\n    { \"uid\": 10x }\n  ]\n}",
    "Invalid policy: <data>:3:" },
  { "duplicate-key", "{ \"allow\": [ { \"uid\": 1001,\n \"uid\": 0 } ] }",
    "Invalid policy: <data>:2:" },
  { "duplicate-key-top-level", "{ \"allow\": [], \"allow\": [ { \"uid\": 0 } ] }",
    "key \"allow\" is given twice" },
  { "second-document", "{ \"allow\": [] } { \"allow\": [ { \"uid\": 0 } ] }",
    "Invalid policy: Text after the JSON value, at byte 16" },
  { "assignment", "var policy = { \"allow\": [] }",
    "Invalid policy: <data>: an assignment" },
  { "empty", "",
    "Invalid policy: top level: the document is empty" },
  { "not-object", "[ { \"uid\": 1001 } ]",
    "Invalid policy: top level: expected an object, got an array" },
  { "unknown-top-level-key", "{ \"allow\": [], \"deny\": [] }",
    "Invalid policy: top level: unknown key \"deny\" (known: allow, comment)" },
  { "comment-type", "{ \"comment\": 5 }",
    "Invalid policy: comment: expected a string, got an integer" },
  { "allow-not-array", "{ \"allow\": { \"uid\": 1001 } }",
    "Invalid policy: allow: expected an array of rules, got an object" },
  { "rule-not-object", "{ \"allow\": [ { \"uid\": 1001 }, \"uid 1002\" ] }",
    "Invalid policy: allow[1]: expected a rule (an object), got a string" },
  { "unknown-key", "{ \"allow\": [ { \"uid\": 1001 }, { \"uid\": 1002, \"sned\": [\"a\"] } ] }",
    "Invalid policy: allow[1]: unknown key \"sned\"" },
  { "no-selector", "{ \"allow\": [ { \"send\": [\"a\"] } ] }",
    "Invalid policy: allow[0]: the rule does not say whom it is for" },
  { "two-selectors", "{ \"allow\": [ { \"uid\": 1001, \"user\": \"root\" } ] }",
    "Invalid policy: allow[0]: a rule is for one of uid, user, gid, group or anonymous, "
    "and this one has both \"uid\" and \"user\"" },
  { "uid-type", "{ \"allow\": [ { \"uid\": \"1001\" } ] }",
    "Invalid policy: allow[0].uid: expected an integer from 0 to 4294967294, got a string" },
  { "uid-fraction", "{ \"allow\": [ { \"uid\": 1001.5 } ] }",
    "Invalid policy: allow[0].uid: expected an integer from 0 to 4294967294, "
    "got a number with a fraction" },
  { "uid-negative", "{ \"allow\": [ { \"uid\": -1 } ] }",
    "Invalid policy: allow[0].uid: expected an integer from 0 to 4294967294, got -1" },
  { "uid-too-large", "{ \"allow\": [ { \"uid\": 4294967295 } ] }",
    "Invalid policy: allow[0].uid: expected an integer from 0 to 4294967294, got 4294967295" },
  { "gid-type", "{ \"allow\": [ { \"gid\": true } ] }",
    "Invalid policy: allow[0].gid: expected an integer from 0 to 4294967294, got a boolean" },
  { "user-type", "{ \"allow\": [ { \"user\": 0 } ] }",
    "Invalid policy: allow[0].user: expected the name of a user, got an integer" },
  { "group-type", "{ \"allow\": [ { \"group\": null } ] }",
    "Invalid policy: allow[0].group: expected the name of a group, got null" },
  { "unknown-user", "{ \"allow\": [ { \"user\": \"qipc-no-such-user\" } ] }",
    "Invalid policy: allow[0].user: there is no user named \"qipc-no-such-user\"" },
  { "unknown-group", "{ \"allow\": [ { \"group\": \"qipc-no-such-group\" } ] }",
    "Invalid policy: allow[0].group: there is no group named \"qipc-no-such-group\"" },
  { "anonymous-false", "{ \"allow\": [ { \"anonymous\": false, \"send\": [\"a\"] } ] }",
    "Invalid policy: allow[0].anonymous: must be true" },
  { "anonymous-type", "{ \"allow\": [ { \"anonymous\": \"yes\" } ] }",
    "Invalid policy: allow[0].anonymous: expected true or false, got a string" },
  { "send-not-array", "{ \"allow\": [ { \"uid\": 1001, \"send\": \"a/*\" } ] }",
    "Invalid policy: allow[0].send: expected an array of channel patterns, got a string" },
  { "receive-not-array", "{ \"allow\": [ { \"uid\": 1001, \"receive\": {} } ] }",
    "Invalid policy: allow[0].receive: expected an array of channel patterns, got an object" },
  { "pattern-not-string", "{ \"allow\": [ { \"uid\": 1001, \"receive\": [\"a\", null] } ] }",
    "Invalid policy: allow[0].receive[1]: expected a channel pattern, got null" },
  { "bad-pattern", "{ \"allow\": [ { \"uid\": 1001, \"send\": [\"a\", \"a/**/b\"] } ] }",
    "Invalid policy: allow[0].send[1]: Invalid channel pattern \"a/**/b\"" },
  { "empty-pattern", "{ \"allow\": [ { \"uid\": 1001, \"receive\": [\"\"] } ] }",
    "Invalid policy: allow[0].receive[0]: Invalid channel pattern \"\": it is empty" },
  { "empty-segment", "{ \"allow\": [ { \"uid\": 1001, \"receive\": [\"a//b\"] } ] }",
    "Invalid policy: allow[0].receive[0]: Invalid channel pattern \"a//b\": it has an empty segment" },
  { "monitor-type", "{ \"allow\": [ { \"uid\": 1001, \"monitor\": 1 } ] }",
    "Invalid policy: allow[0].monitor: expected true or false, got an integer" },
  { "rule-comment-type", "{ \"allow\": [ { \"uid\": 1001, \"comment\": [] } ] }",
    "Invalid policy: allow[0].comment: expected a string, got an array" },
};

static void
test_error (gconstpointer data)
{
  const ErrorCase *error_case = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcPolicy) policy = _qipc_policy_new_from_data (OWNER, error_case->json, -1, &error);

  g_assert_null (policy);
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED);
  g_test_message ("%s", error->message);
  if (strstr (error->message, error_case->message) == NULL)
    g_error ("Expected a message containing '%s', got '%s'", error_case->message, error->message);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/policy/default", test_default);
  g_test_add_func ("/policy/empty-object", test_empty_object);
  g_test_add_func ("/policy/owner-always-allowed", test_owner_always_allowed);
  g_test_add_func ("/policy/uid", test_uid);
  g_test_add_func ("/policy/gid", test_gid);
  g_test_add_func ("/policy/names", test_names);
  g_test_add_func ("/policy/anonymous", test_anonymous);
  g_test_add_func ("/policy/monitor", test_monitor);
  g_test_add_func ("/policy/union", test_union);
  g_test_add_func ("/policy/receive-patterns", test_receive_patterns);
  g_test_add_func ("/policy/admits-others", test_admits_others);
  g_test_add_func ("/policy/file", test_file);
  g_test_add_func ("/policy/file-errors", test_file_errors);
  for (gsize i = 0; i < G_N_ELEMENTS (error_cases); i++)
    {
      g_autofree char *path = g_strconcat ("/policy/parse/", error_cases[i].name, NULL);

      g_test_add_data_func (path, &error_cases[i], test_error);
    }

  return g_test_run ();
}
