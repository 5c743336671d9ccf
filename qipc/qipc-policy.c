/* qipc-policy.c: who may use a broker, and for what
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A policy is the broker's owner plus a list of rules; each rule names
 * whom it is for (a uid, a gid, or the anonymous peers of a TCP
 * address) and what they may do. The broker looks a peer up once, when
 * it connects, and keeps the grant: the checks on each frame are then a
 * few pattern matches, with no allocation and no user database lookup.
 *
 * The format is documented for users in docs/security.md. The parser is
 * strict on purpose: a key it does not know, a value of the wrong type or
 * a user that does not exist is an error, never ignored, because an
 * ignored line in a security policy grants or denies something its
 * author did not mean.
 */

#include "qipc-policy-private.h"
#include "qipc-bus.h"
#include "qipc-frame-private.h"
#include "qipc-json-private.h"

#include <errno.h>
#include <grp.h>
#include <json-glib/json-glib.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>

/* getpwnam_r() and getgrnam_r() buffers grow up to this before giving up. */
#define MAX_NSS_BUFFER (1024 * 1024)

typedef enum {
  RULE_UID,
  RULE_GID,
  RULE_ANONYMOUS,
} RuleKind;

typedef struct {
  RuleKind  kind;
  guint32   id;        /* the uid or gid */
  gboolean  monitor;
  GPtrArray *send;     /* channel patterns (char *) */
  GPtrArray *receive;
} Rule;

struct _QipcPolicyGrant
{
  gboolean   all;
  gboolean   monitor;
  /* Patterns borrowed from the rules that matched: a grant lives no
   * longer than its policy. */
  GPtrArray *send;
  GPtrArray *receive;
};

struct _QipcPolicy
{
  uid_t            owner_uid;
  GPtrArray       *rules;        /* Rule *, in file order */
  QipcPolicyGrant  owner_grant;  /* all = TRUE */
  QipcPolicyGrant *anonymous;    /* NULL when no rule admits TCP peers */
  /* Grants already handed out, by (uid << 32 | gid): a peer that
   * connects again gets the same one, so the table is bounded by the
   * distinct credentials that connected, not by the connections. */
  GHashTable      *grants;
};

static void
rule_free (Rule *rule)
{
  g_ptr_array_unref (rule->send);
  g_ptr_array_unref (rule->receive);
  g_free (rule);
}

static QipcPolicyGrant *
grant_new (void)
{
  QipcPolicyGrant *grant = g_new0 (QipcPolicyGrant, 1);

  grant->send = g_ptr_array_new ();
  grant->receive = g_ptr_array_new ();
  return grant;
}

static void
grant_free (QipcPolicyGrant *grant)
{
  g_ptr_array_unref (grant->send);
  g_ptr_array_unref (grant->receive);
  g_free (grant);
}

static void
grant_add_rule (QipcPolicyGrant *grant,
                const Rule      *rule)
{
  grant->monitor |= rule->monitor;
  g_ptr_array_extend (grant->send, rule->send, NULL, NULL);
  g_ptr_array_extend (grant->receive, rule->receive, NULL, NULL);
}

static QipcPolicy *
policy_new (uid_t owner_uid)
{
  QipcPolicy *policy = g_new0 (QipcPolicy, 1);

  policy->owner_uid = owner_uid;
  policy->rules = g_ptr_array_new_with_free_func ((GDestroyNotify) rule_free);
  policy->owner_grant.all = TRUE;
  policy->grants = g_hash_table_new_full (g_int64_hash, g_int64_equal,
                                          g_free, (GDestroyNotify) grant_free);
  return policy;
}

QipcPolicy *
_qipc_policy_new_default (uid_t owner_uid)
{
  return policy_new (owner_uid);
}

void
_qipc_policy_free (QipcPolicy *policy)
{
  if (policy == NULL)
    return;
  g_hash_table_unref (policy->grants);
  g_clear_pointer (&policy->anonymous, grant_free);
  g_ptr_array_unref (policy->rules);
  g_free (policy);
}

/* Parsing */

typedef struct {
  /* The file name, or NULL for data: it starts every message. */
  const char *source;
} ParseState;

static gboolean policy_error (const ParseState  *state,
                              GError           **error,
                              const char        *where,
                              const char        *format,
                              ...) G_GNUC_PRINTF (4, 5);

/* "Invalid policy: [FILE: ]WHERE: WHAT", WHERE being a path into the
 * document such as allow[2].send[0]. */
static gboolean
policy_error (const ParseState  *state,
              GError           **error,
              const char        *where,
              const char        *format,
              ...)
{
  g_autofree char *what = NULL;
  va_list args;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
               "Invalid policy: %s%s%s: %s",
               state->source != NULL ? state->source : "",
               state->source != NULL ? ": " : "",
               where, what);
  return FALSE;
}

/* What a value is, the way the documentation names JSON types. */
static const char *
describe_node (JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      return "an object";
    case JSON_NODE_ARRAY:
      return "an array";
    case JSON_NODE_NULL:
      return "null";
    case JSON_NODE_VALUE:
    default:
      break;
    }
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_INT64:
      return "an integer";
    case G_TYPE_DOUBLE:
      return "a number with a fraction";
    case G_TYPE_BOOLEAN:
      return "a boolean";
    case G_TYPE_STRING:
    default:
      return "a string";
    }
}

static gboolean
node_holds (JsonNode *node,
            GType     type)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == type;
}

static gboolean
lookup_user (const char *name,
             guint32    *uid,
             int        *errsv)
{
  struct passwd entry, *found = NULL;
  g_autofree char *buffer = NULL;
  gsize size = 1024;

  do
    {
      buffer = g_realloc (buffer, size);
      *errsv = getpwnam_r (name, &entry, buffer, size, &found);
      size *= 2;
    }
  while (*errsv == ERANGE && size <= MAX_NSS_BUFFER);
  if (found != NULL)
    *uid = entry.pw_uid;
  return found != NULL;
}

static gboolean
lookup_group (const char *name,
              guint32    *gid,
              int        *errsv)
{
  struct group entry, *found = NULL;
  g_autofree char *buffer = NULL;
  gsize size = 1024;

  do
    {
      buffer = g_realloc (buffer, size);
      *errsv = getgrnam_r (name, &entry, buffer, size, &found);
      size *= 2;
    }
  while (*errsv == ERANGE && size <= MAX_NSS_BUFFER);
  if (found != NULL)
    *gid = entry.gr_gid;
  return found != NULL;
}

/* "uid" and "gid": a number, the way id(1) prints it. -1 is no id (it
 * means "unchanged" to chown(2) and setresuid(2)). */
static gboolean
parse_id (const ParseState  *state,
          const char        *where,
          JsonNode          *node,
          guint32           *id,
          GError           **error)
{
  gint64 value;

  if (!node_holds (node, G_TYPE_INT64))
    return policy_error (state, error, where,
                         "expected an integer from 0 to %u, got %s",
                         G_MAXUINT32 - 1, describe_node (node));
  value = json_node_get_int (node);
  if (value < 0 || value >= G_MAXUINT32)
    return policy_error (state, error, where,
                         "expected an integer from 0 to %u, got %" G_GINT64_FORMAT,
                         G_MAXUINT32 - 1, value);
  *id = value;
  return TRUE;
}

/* "user" and "group": a name, looked up now, once. */
static gboolean
parse_name (const ParseState  *state,
            const char        *where,
            JsonNode          *node,
            RuleKind           kind,
            guint32           *id,
            GError           **error)
{
  const char *what = kind == RULE_UID ? "user" : "group";
  const char *name;
  gboolean found;
  int errsv;

  if (!node_holds (node, G_TYPE_STRING))
    return policy_error (state, error, where, "expected the name of a %s, got %s",
                         what, describe_node (node));
  name = json_node_get_string (node);
  found = kind == RULE_UID ? lookup_user (name, id, &errsv)
                           : lookup_group (name, id, &errsv);
  if (found)
    return TRUE;
  /* getpwnam_r() reports "not found" as 0 or, on some systems, as one
   * of these; anything else is a failure to look. */
  if (errsv == 0 || errsv == ENOENT || errsv == ESRCH || errsv == EBADF || errsv == EPERM)
    return policy_error (state, error, where, "there is no %s named \"%s\"", what, name);
  return policy_error (state, error, where, "cannot look up %s \"%s\": %s",
                       what, name, g_strerror (errsv));
}

static gboolean
parse_patterns (const ParseState  *state,
                const char        *where,
                JsonNode          *node,
                GPtrArray         *patterns,
                GError           **error)
{
  JsonArray *array;

  if (!JSON_NODE_HOLDS_ARRAY (node))
    return policy_error (state, error, where,
                         "expected an array of channel patterns, got %s",
                         describe_node (node));
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      g_autofree char *element_where = g_strdup_printf ("%s[%u]", where, i);
      g_autoptr(GError) name_error = NULL;
      const char *pattern;

      if (!node_holds (element, G_TYPE_STRING))
        return policy_error (state, error, element_where,
                             "expected a channel pattern, got %s",
                             describe_node (element));
      pattern = json_node_get_string (element);
      if (!_qipc_channel_name_validate (pattern, TRUE, &name_error))
        return policy_error (state, error, element_where, "%s", name_error->message);
      g_ptr_array_add (patterns, g_strdup (pattern));
    }
  return TRUE;
}

static gboolean
parse_boolean (const ParseState  *state,
               const char        *where,
               JsonNode          *node,
               gboolean          *value,
               GError           **error)
{
  if (!node_holds (node, G_TYPE_BOOLEAN))
    return policy_error (state, error, where, "expected true or false, got %s",
                         describe_node (node));
  *value = json_node_get_boolean (node);
  return TRUE;
}

static gboolean
parse_comment (const ParseState  *state,
               const char        *where,
               JsonNode          *node,
               GError           **error)
{
  if (!node_holds (node, G_TYPE_STRING))
    return policy_error (state, error, where, "expected a string, got %s",
                         describe_node (node));
  return TRUE;
}

/* The keys that say whom a rule is for; a rule has exactly one. */
static gboolean
is_selector (const char *key)
{
  return g_str_equal (key, "uid") || g_str_equal (key, "user") ||
         g_str_equal (key, "gid") || g_str_equal (key, "group") ||
         g_str_equal (key, "anonymous");
}

static gboolean
parse_selector (const ParseState  *state,
                const char        *where,
                const char        *key,
                JsonNode          *node,
                Rule              *rule,
                GError           **error)
{
  gboolean anonymous = FALSE;

  if (g_str_equal (key, "uid") || g_str_equal (key, "gid"))
    {
      rule->kind = key[0] == 'u' ? RULE_UID : RULE_GID;
      return parse_id (state, where, node, &rule->id, error);
    }
  if (g_str_equal (key, "user") || g_str_equal (key, "group"))
    {
      rule->kind = key[0] == 'u' ? RULE_UID : RULE_GID;
      return parse_name (state, where, node, rule->kind, &rule->id, error);
    }
  if (!parse_boolean (state, where, node, &anonymous, error))
    return FALSE;
  if (!anonymous)
    return policy_error (state, error, where,
                         "must be true (to admit no anonymous peer, leave the rule out)");
  rule->kind = RULE_ANONYMOUS;
  return TRUE;
}

static Rule *
parse_rule (const ParseState  *state,
            guint              index,
            JsonNode          *node,
            GError           **error)
{
  g_autofree char *rule_where = g_strdup_printf ("allow[%u]", index);
  g_autoptr(GPtrArray) send = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) receive = g_ptr_array_new_with_free_func (g_free);
  const char *selector = NULL;
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;
  Rule rule = { 0, };

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      policy_error (state, error, rule_where, "expected a rule (an object), got %s",
                    describe_node (node));
      return NULL;
    }

  json_object_iter_init_ordered (&iter, json_node_get_object (node));
  while (json_object_iter_next_ordered (&iter, &key, &value))
    {
      g_autofree char *where = g_strdup_printf ("%s.%s", rule_where, key);
      gboolean ok;

      if (is_selector (key))
        {
          if (selector != NULL)
            {
              policy_error (state, error, rule_where,
                            "a rule is for one of uid, user, gid, group or anonymous, "
                            "and this one has both \"%s\" and \"%s\"", selector, key);
              return NULL;
            }
          selector = key;
          ok = parse_selector (state, where, key, value, &rule, error);
        }
      else if (g_str_equal (key, "send"))
        ok = parse_patterns (state, where, value, send, error);
      else if (g_str_equal (key, "receive"))
        ok = parse_patterns (state, where, value, receive, error);
      else if (g_str_equal (key, "monitor"))
        ok = parse_boolean (state, where, value, &rule.monitor, error);
      else if (g_str_equal (key, "comment"))
        ok = parse_comment (state, where, value, error);
      else
        ok = policy_error (state, error, rule_where,
                           "unknown key \"%s\" (known: uid, user, gid, group, anonymous, "
                           "send, receive, monitor, comment)", key);
      if (!ok)
        return NULL;
    }

  if (selector == NULL)
    {
      policy_error (state, error, rule_where,
                    "the rule does not say whom it is for: "
                    "give one of uid, user, gid, group or anonymous");
      return NULL;
    }

  rule.send = g_steal_pointer (&send);
  rule.receive = g_steal_pointer (&receive);
  return g_memdup2 (&rule, sizeof rule);
}

static gboolean
parse_allow (const ParseState  *state,
             JsonNode          *node,
             QipcPolicy        *policy,
             GError           **error)
{
  JsonArray *array;

  if (!JSON_NODE_HOLDS_ARRAY (node))
    return policy_error (state, error, "allow", "expected an array of rules, got %s",
                         describe_node (node));
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      Rule *rule = parse_rule (state, i, json_array_get_element (array, i), error);

      if (rule == NULL)
        return FALSE;
      g_ptr_array_add (policy->rules, rule);
    }
  return TRUE;
}

static gboolean
parse_document (const ParseState  *state,
                JsonNode          *root,
                QipcPolicy        *policy,
                GError           **error)
{
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  /* json-glib accepts an empty document; a policy file that lost its
   * contents is more likely a mistake than a wish for the default. */
  if (root == NULL)
    return policy_error (state, error, "top level",
                         "the document is empty; expected an object such as {\"allow\": []}");
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return policy_error (state, error, "top level", "expected an object, got %s",
                         describe_node (root));

  json_object_iter_init_ordered (&iter, json_node_get_object (root));
  while (json_object_iter_next_ordered (&iter, &key, &value))
    {
      gboolean ok;

      if (g_str_equal (key, "allow"))
        ok = parse_allow (state, value, policy, error);
      else if (g_str_equal (key, "comment"))
        ok = parse_comment (state, key, value, error);
      else
        ok = policy_error (state, error, "top level",
                           "unknown key \"%s\" (known: allow, comment)", key);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static void
policy_add_anonymous_grant (QipcPolicy *policy)
{
  for (guint i = 0; i < policy->rules->len; i++)
    {
      const Rule *rule = g_ptr_array_index (policy->rules, i);

      if (rule->kind != RULE_ANONYMOUS)
        continue;
      if (policy->anonymous == NULL)
        policy->anonymous = grant_new ();
      grant_add_rule (policy->anonymous, rule);
    }
}

/* Loads @path into @parser, once its text is known not to be nested
 * too deep for json-glib; json-glib reads the file again, so that its
 * messages name it ("FILE:LINE:COLUMN: …"). */
static gboolean
load_policy_file (JsonParser  *parser,
                  const char  *path,
                  GError     **error)
{
  g_autofree char *text = NULL;
  gsize length;
  QipcJsonStrict check;
  gboolean loaded;

  if (!g_file_get_contents (path, &text, &length, error))
    return FALSE;
  if (!_qipc_json_check_depth (text, (gssize) length, error))
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  /* From the file, for json-glib's messages to name it. */
  _qipc_json_strict_start (&check, parser, path);
  loaded = json_parser_load_from_file (parser, path, error);
  return _qipc_json_strict_finish (&check, loaded, error);
}

/* Reads the policy from @path, or from @data when @path is NULL. */
static QipcPolicy *
policy_parse (uid_t         owner_uid,
              const char   *path,
              const char   *data,
              gssize        length,
              GError      **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) load_error = NULL;
  g_autoptr(QipcPolicy) policy = NULL;
  ParseState state = { path };
  gboolean loaded;

  loaded = path != NULL ? load_policy_file (parser, path, &load_error)
                        : _qipc_json_load (parser, data, length, &load_error);
  if (!loaded)
    {
      /* A file that cannot be read keeps its GFileError. */
      if (load_error->domain == G_FILE_ERROR)
        g_propagate_error (error, g_steal_pointer (&load_error));
      else
        g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
                     "Invalid policy: %s", load_error->message);
      return NULL;
    }
  policy = policy_new (owner_uid);
  if (!parse_document (&state, json_parser_get_root (parser), policy, error))
    return NULL;
  policy_add_anonymous_grant (policy);
  return g_steal_pointer (&policy);
}

QipcPolicy *
_qipc_policy_new_from_data (uid_t        owner_uid,
                            const char  *data,
                            gssize       length,
                            GError     **error)
{
  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return policy_parse (owner_uid, NULL, data, length, error);
}

QipcPolicy *
_qipc_policy_new_from_file (uid_t        owner_uid,
                            const char  *path,
                            GError     **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return policy_parse (owner_uid, path, NULL, -1, error);
}

gboolean
_qipc_policy_admits_others (QipcPolicy *policy)
{
  for (guint i = 0; i < policy->rules->len; i++)
    {
      const Rule *rule = g_ptr_array_index (policy->rules, i);

      if (rule->kind != RULE_UID || rule->id != policy->owner_uid)
        return TRUE;
    }
  return FALSE;
}

/* Lookups */

static QipcPolicyGrant *
grant_for_ids (QipcPolicy *policy,
               uid_t       uid,
               gid_t       gid)
{
  QipcPolicyGrant *grant = NULL;

  for (guint i = 0; i < policy->rules->len; i++)
    {
      const Rule *rule = g_ptr_array_index (policy->rules, i);

      if ((rule->kind == RULE_UID && rule->id == uid) ||
          (rule->kind == RULE_GID && rule->id == gid))
        {
          if (grant == NULL)
            grant = grant_new ();
          grant_add_rule (grant, rule);
        }
    }
  return grant;
}

const QipcPolicyGrant *
_qipc_policy_lookup (QipcPolicy   *policy,
                     GCredentials *credentials)
{
  struct ucred *ucred;
  QipcPolicyGrant *grant;
  gint64 key;

  if (credentials == NULL)
    return policy->anonymous;

  ucred = g_credentials_get_native (credentials, G_CREDENTIALS_TYPE_LINUX_UCRED);
  if (ucred == NULL)
    return NULL;
  if (ucred->uid == policy->owner_uid)
    return &policy->owner_grant;

  key = (gint64) ((guint64) ucred->uid << 32 | ucred->gid);
  grant = g_hash_table_lookup (policy->grants, &key);
  if (grant == NULL)
    {
      grant = grant_for_ids (policy, ucred->uid, ucred->gid);
      if (grant != NULL)
        g_hash_table_insert (policy->grants, g_memdup2 (&key, sizeof key), grant);
    }
  return grant;
}

gboolean
_qipc_policy_grant_is_all (const QipcPolicyGrant *grant)
{
  return grant->all;
}

/* Whether every name that the pattern @wanted matches is matched by
 * @granted too, segment by segment: a granted "*" covers any one segment
 * (a "*" as well), a granted final "**" covers whatever follows, and a
 * literal only itself. */
static gboolean
pattern_covers (const char *granted,
                const char *wanted)
{
  while (TRUE)
    {
      const char *g_end = strchr (granted, '/');
      const char *w_end = strchr (wanted, '/');
      gsize g_length = g_end != NULL ? (gsize) (g_end - granted) : strlen (granted);
      gsize w_length = w_end != NULL ? (gsize) (w_end - wanted) : strlen (wanted);

      if (g_length == 2 && granted[0] == '*' && granted[1] == '*')
        return TRUE;
      if (w_length == 2 && wanted[0] == '*' && wanted[1] == '*')
        return FALSE; /* any number of segments, and @granted has a fixed number */
      if (!(g_length == 1 && granted[0] == '*') &&
          (g_length != w_length || memcmp (granted, wanted, g_length) != 0))
        return FALSE;
      if (g_end == NULL || w_end == NULL)
        return g_end == NULL && w_end == NULL;
      granted = g_end + 1;
      wanted = w_end + 1;
    }
}

static gboolean
patterns_allow (GPtrArray  *patterns,
                const char *channel)
{
  gboolean is_pattern = _qipc_channel_name_is_pattern (channel);

  for (guint i = 0; i < patterns->len; i++)
    {
      const char *granted = g_ptr_array_index (patterns, i);

      if (is_pattern ? pattern_covers (granted, channel)
                     : _qipc_channel_pattern_match (granted, channel))
        return TRUE;
    }
  return FALSE;
}

gboolean
_qipc_policy_may_send (const QipcPolicyGrant *grant,
                       const char            *channel)
{
  return grant->all || patterns_allow (grant->send, channel);
}

gboolean
_qipc_policy_may_receive (const QipcPolicyGrant *grant,
                          const char            *channel)
{
  return grant->all || patterns_allow (grant->receive, channel);
}

gboolean
_qipc_policy_may_monitor (const QipcPolicyGrant *grant)
{
  return grant->all || grant->monitor;
}
