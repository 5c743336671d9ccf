/* qipc-shm-sem.c: the `qipc shm` and `qipc sem` commands
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Shared memory segments and semaphores by key, from the shell. `list`
 * reads what the library leaves on this machine: segment files in
 * /dev/shm, whose header page records the key, and System V semaphore
 * sets, whose keys are registered in /dev/shm/qipc-sem-<digest>.key.
 * The output formats of `list --json`, `info`, `read --hex` and the
 * lines `create` prints are documented in qipc(1) (tools/qipc.1) and
 * are kept stable for scripts.
 */
#include "qipc-tool.h"

#include <qipc.h>
#include <json-glib/json-glib.h>
#include <glib-unix.h>
#include <gio/gunixinputstream.h>

#include "qipc-native-key-private.h"
#include "qipc-shm-header-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>


#define SHM_DIR "/dev/shm"
#define SEM_VALUE 0
#define SEM_TAG 1
#define SEM_N_SEMS 2

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

/* ---- Common ------------------------------------------------------------ */

/* The subcommand running, "shm create", which every message names. */
static char current_command[32];

static int G_GNUC_PRINTF (2, 3)
fail (int         status,
      const char *format,
      ...)
{
  va_list args;

  va_start (args, format);
  status = qipc_tool_failv (current_command, status, format, args);
  va_end (args);
  return status;
}

static int
status_for_error (const GError *error)
{
  if (error->domain == QIPC_SHARED_MEMORY_ERROR)
    switch (error->code)
      {
      case QIPC_SHARED_MEMORY_ERROR_KEY_ERROR:
      case QIPC_SHARED_MEMORY_ERROR_INVALID_SIZE:
        return QIPC_EXIT_BAD_DATA;
      case QIPC_SHARED_MEMORY_ERROR_PERMISSION_DENIED:
        return QIPC_EXIT_DENIED;
      default:
        return QIPC_EXIT_FAILED;
      }
  if (error->domain == QIPC_SYSTEM_SEMAPHORE_ERROR)
    switch (error->code)
      {
      case QIPC_SYSTEM_SEMAPHORE_ERROR_KEY_ERROR:
        return QIPC_EXIT_BAD_DATA;
      case QIPC_SYSTEM_SEMAPHORE_ERROR_PERMISSION_DENIED:
        return QIPC_EXIT_DENIED;
      default:
        return QIPC_EXIT_FAILED;
      }
  if (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_ACCES) ||
      g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_PERM))
    return QIPC_EXIT_DENIED;
  if (error->domain == G_FILE_ERROR)
    return QIPC_EXIT_BAD_DATA;
  return QIPC_EXIT_FAILED;
}

static int
fail_error (const GError *error)
{
  return fail (status_for_error (error), "%s", error->message);
}

static int
status_for_errno (int errsv)
{
  return errsv == EACCES || errsv == EPERM ? QIPC_EXIT_DENIED : QIPC_EXIT_FAILED;
}

/* Parses the options of "qipc WORD SUBCOMMAND". Returns -1 to go on, or
 * the exit status. Leaves the positional arguments in @argc and @argv, the
 * subcommand first. */
static int
parse_options (const char    *word,
               int           *argc,
               char        ***argv,
               const char    *parameters,
               const char    *summary,
               const char    *description,
               GOptionEntry  *entries,
               int            min_args,
               int            max_args)
{
  g_autofree char *command = g_strdup_printf ("%s %s", word, (*argv)[1]);
  g_autoptr(GOptionContext) context = g_option_context_new (parameters);
  g_autoptr(GError) error = NULL;
  g_autofree char *old_prgname = g_strdup (g_get_prgname ());
  g_autofree char *prgname = g_strdup_printf ("qipc %s", command);
  gboolean ok;

  g_option_context_set_summary (context, summary);
  g_option_context_set_description (context, description);
  if (entries != NULL)
    g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_strict_posix (context, FALSE);

  /* GOptionContext takes the program name from argv[0] and the usage
   * line from the prgname: "qipc shm create [OPTION…] KEY SIZE". */
  g_set_prgname (prgname);
  ok = g_option_context_parse (context, argc, argv, &error);
  g_set_prgname (old_prgname);
  if (!ok)
    return qipc_tool_usage_error (command, "%s", error->message);

  /* (*argv)[0] is still "shm"/"sem" and (*argv)[1] the subcommand. */
  if (*argc - 2 < min_args)
    return qipc_tool_usage_error (command, "Missing arguments");
  if (*argc - 2 > max_args)
    return qipc_tool_usage_error (command, "Too many arguments");
  return -1;
}

/* "4096", "64K", "1M", "2G" (powers of 1024). */
static gboolean
parse_size (const char *text,
            guint64     max,
            guint64    *out)
{
  g_autofree char *digits = g_strdup (text);
  gsize length = strlen (digits);
  guint64 unit = 1, value;

  if (length > 1)
    switch (digits[length - 1])
      {
      case 'k': case 'K': unit = 1024; break;
      case 'm': case 'M': unit = 1024 * 1024; break;
      case 'g': case 'G': unit = 1024 * 1024 * 1024; break;
      default: break;
      }
  if (unit != 1)
    digits[length - 1] = '\0';
  if (!g_ascii_string_to_unsigned (digits, 10, 0, G_MAXUINT64 / unit, &value, NULL))
    return FALSE;
  value *= unit;
  if (value > max)
    return FALSE;
  *out = value;
  return TRUE;
}

static gboolean
parse_mode (const char *text,
            guint      *mode)
{
  guint64 value;

  if (text == NULL)
    return TRUE;
  if (!g_ascii_string_to_unsigned (text, 8, 0, 0777, &value, NULL))
    return FALSE;
  *mode = (guint) value;
  return TRUE;
}

static const char *
user_name (uid_t uid)
{
  struct passwd *pw = getpwuid (uid);

  return pw != NULL ? pw->pw_name : NULL;
}

/* Keys are any UTF-8: show control characters escaped in tables. */
static char *
printable_key (const char *key)
{
  if (key == NULL)
    return g_strdup ("(unknown key)");
  for (const char *p = key; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f || *p == '\\')
      return g_strescape (key, "\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f"
                               "\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f"
                               "\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac\xad\xae\xaf"
                               "\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf"
                               "\xc0\xc1\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf"
                               "\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xdb\xdc\xdd\xde\xdf"
                               "\xe0\xe1\xe2\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xeb\xec\xed\xee\xef"
                               "\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xfb\xfc\xfd\xfe\xff");
  return g_strdup (key);
}

static void
print_json (JsonNode *root)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autofree char *text = NULL;

  json_generator_set_pretty (generator, TRUE);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, NULL);
  g_print ("%s\n", text);
}

static gboolean
quit_cb (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

/* Stopping on SIGINT, SIGTERM or SIGHUP: the handlers go in before the
 * command says it is ready, so that a signal sent on that cue is not
 * lost. */
typedef struct
{
  GMainLoop *loop;
  guint ids[3];
} SignalWait;

static void
signal_wait_init (SignalWait *wait)
{
  wait->loop = g_main_loop_new (NULL, FALSE);
  wait->ids[0] = g_unix_signal_add (SIGINT, quit_cb, wait->loop);
  wait->ids[1] = g_unix_signal_add (SIGTERM, quit_cb, wait->loop);
  wait->ids[2] = g_unix_signal_add (SIGHUP, quit_cb, wait->loop);
}

static void
signal_wait_clear (SignalWait *wait)
{
  if (wait->loop == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (wait->ids); i++)
    g_source_remove (wait->ids[i]);
  g_clear_pointer (&wait->loop, g_main_loop_unref);
}

static gboolean
pid_is_alive (pid_t pid)
{
  return pid > 0 && (kill (pid, 0) == 0 || errno == EPERM);
}

/* ---- Shared memory files ----------------------------------------------- */

typedef struct
{
  char *path;
  char *key;        /* NULL when the segment does not record it */
  gboolean readable;
  gboolean valid;   /* a qipc segment header */
  guint64 size;
  guint64 generation;
  guint mode;
  uid_t uid;
  int users;        /* -1: unknown */
  gboolean in_use;
} ShmEntry;

static void
shm_entry_free (ShmEntry *entry)
{
  g_free (entry->path);
  g_free (entry->key);
  g_free (entry);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShmEntry, shm_entry_free)

/* Users of a segment hold an open-file-description read lock on its
 * first byte (see qipc-shared-memory.c). /proc/locks lists one line per
 * lock, so it counts them; without it, F_OFD_GETLK tells only whether
 * there is at least one. */
static int
count_users (const struct stat *st)
{
  g_autofree char *locks = NULL;
  g_auto(GStrv) lines = NULL;
  int count = 0;

  if (!g_file_get_contents ("/proc/locks", &locks, NULL, NULL))
    return -1;
  lines = g_strsplit (locks, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char kind[16], type[16];
      unsigned int major, minor;
      unsigned long long inode;
      long long start;
      int pid;

      /* "1: OFDLCK ADVISORY  READ -1 00:1b:305961 0 0" */
      if (sscanf (lines[i], "%*d: %15s %*s %15s %d %x:%x:%llu %lld",
                  kind, type, &pid, &major, &minor, &inode, &start) != 7)
        continue;
      if (strcmp (kind, "OFDLCK") == 0 && strcmp (type, "READ") == 0 && start == 0 &&
          inode == (unsigned long long) st->st_ino &&
          major == major (st->st_dev) && minor == minor (st->st_dev))
        count++;
    }
  return count;
}

static gboolean
has_users (int fd)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

  if (fcntl (fd, F_OFD_GETLK, &fl) < 0)
    return TRUE;
  return fl.l_type != F_UNLCK;
}

static void
read_header (ShmEntry *entry,
             int       fd)
{
  QipcShmHeader header;
  QipcShmKeyRecord record;

  if (pread (fd, &header, sizeof header, 0) != (ssize_t) sizeof header ||
      header.magic != QIPC_SHM_HEADER_MAGIC || header.version != QIPC_SHM_HEADER_VERSION)
    return;
  entry->valid = TRUE;
  entry->size = header.size;
  entry->generation = header.generation;

  if (header.data_offset < QIPC_SHM_KEY_RECORD_OFFSET + sizeof record ||
      pread (fd, &record, sizeof record, QIPC_SHM_KEY_RECORD_OFFSET) != (ssize_t) sizeof record ||
      record.magic != QIPC_SHM_KEY_MAGIC ||
      record.length > header.data_offset - QIPC_SHM_KEY_RECORD_OFFSET - sizeof record)
    return;

  entry->key = g_malloc0 (record.length + 1);
  if (pread (fd, entry->key, record.length, QIPC_SHM_KEY_RECORD_OFFSET + sizeof record) !=
        (ssize_t) record.length ||
      !qipc_key_is_valid (entry->key))
    g_clear_pointer (&entry->key, g_free);
}

/* Describes the segment file at @path without attaching to it. Returns
 * NULL with errno set when there is no such file. */
static ShmEntry *
shm_entry_load (const char *path)
{
  g_autoptr(ShmEntry) entry = g_new0 (ShmEntry, 1);
  struct stat st;
  int fd;

  entry->path = g_strdup (path);
  entry->users = -1;
  if (lstat (path, &st) < 0)
    return NULL;
  if (!S_ISREG (st.st_mode))
    {
      errno = EINVAL;
      return NULL;
    }
  entry->mode = st.st_mode & 0777;
  entry->uid = st.st_uid;

  fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd >= 0)
    {
      entry->readable = TRUE;
      read_header (entry, fd);
      entry->in_use = has_users (fd);
      close (fd);
    }
  entry->users = count_users (&st);
  if (entry->users > 0)
    entry->in_use = TRUE;
  else if (entry->users == 0)
    entry->in_use = FALSE;
  else if (!entry->readable)
    entry->in_use = TRUE;  /* cannot tell: say so below */
  return g_steal_pointer (&entry);
}

static GPtrArray *
shm_list_entries (void)
{
  GPtrArray *entries = g_ptr_array_new_with_free_func ((GDestroyNotify) shm_entry_free);
  g_autoptr(GDir) dir = g_dir_open (SHM_DIR, 0, NULL);
  const char *name;

  if (dir == NULL)
    return entries;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      ShmEntry *entry;

      /* Temporary files, notification directories and the like have a dot. */
      if (!g_str_has_prefix (name, "qipc-shm-") || strchr (name, '.') != NULL)
        continue;
      path = g_build_filename (SHM_DIR, name, NULL);
      entry = shm_entry_load (path);
      if (entry != NULL)
        g_ptr_array_add (entries, entry);
    }
  return entries;
}

static const char *
shm_state (const ShmEntry *entry)
{
  if (!entry->readable && entry->users < 0)
    return "unknown";
  return entry->in_use ? "live" : "stale";
}

static JsonNode *
shm_entry_to_json (const ShmEntry *entry)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autofree char *mode = g_strdup_printf ("%04o", entry->mode);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "key");
  if (entry->key != NULL)
    json_builder_add_string_value (builder, entry->key);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "file");
  json_builder_add_string_value (builder, entry->path);
  json_builder_set_member_name (builder, "size");
  if (entry->valid)
    json_builder_add_int_value (builder, (gint64) entry->size);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "mode");
  json_builder_add_string_value (builder, mode);
  json_builder_set_member_name (builder, "uid");
  json_builder_add_int_value (builder, entry->uid);
  json_builder_set_member_name (builder, "users");
  if (entry->users >= 0)
    json_builder_add_int_value (builder, entry->users);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "state");
  json_builder_add_string_value (builder, shm_state (entry));
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static char *
format_users (int users)
{
  return users >= 0 ? g_strdup_printf ("%d", users) : g_strdup ("?");
}

/* ---- qipc shm ---------------------------------------------------------- */

static const char shm_description[] =
  "Exit status: 0 ok, 1 timed out, 2 usage, 3 bad input, 5 permission denied,\n"
  "6 other failure (such as no segment with that key).";

static int
shm_create (int argc, char **argv)
{
  char *mode_text = NULL, *file = NULL;
  gboolean prefault = FALSE;
  GOptionEntry entries[] = {
    { "mode", 'm', 0, G_OPTION_ARG_STRING, &mode_text, "Permissions in octal (default 0600)", "MODE" },
    { "file", 'f', 0, G_OPTION_ARG_FILENAME, &file, "Fill the segment with the contents of FILE (- for standard input)", "FILE" },
    { "prefault", 0, 0, G_OPTION_ARG_NONE, &prefault, "Allocate every page now", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(QipcSharedMemory) shm = NULL;
  g_autoptr(GError) error = NULL;
  SignalWait wait = { 0 };
  guint mode = 0600;
  guint64 size;
  int status;

  status = parse_options ("shm", &argc, &argv, "KEY SIZE",
                          "create a segment and stay attached to it",
                          "A segment lives while a process is attached to it: this command prints\n"
                          "the segment's file on standard output once it exists, then stays\n"
                          "attached until SIGINT, SIGTERM or SIGHUP, and exits 0. SIZE is in bytes,\n"
                          "or with a K, M or G suffix (powers of 1024).\n\n"
                          "Exit status: 0 ok, 2 usage, 3 bad input (key, size, mode or file),\n"
                          "5 permission denied, 6 other failure (such as an existing live segment).",
                          entries, 2, 2);
  if (status >= 0)
    goto out;

  if (!parse_mode (mode_text, &mode))
    {
      status = fail (QIPC_EXIT_BAD_DATA, "Invalid mode “%s”: an octal number up to 0777", mode_text);
      goto out;
    }
  if (!parse_size (argv[3], QIPC_SHARED_MEMORY_MAX_SIZE, &size) || size == 0)
    {
      status = fail (QIPC_EXIT_BAD_DATA, "Invalid size “%s”: from 1 byte to 1T", argv[3]);
      goto out;
    }

  shm = qipc_shared_memory_new (argv[2]);
  qipc_shared_memory_set_permissions (shm, mode);
  if (!qipc_shared_memory_create (shm, size, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error) ||
      (prefault && !qipc_shared_memory_prefault (shm, &error)))
    {
      status = fail_error (error);
      goto out;
    }

  if (file != NULL)
    {
      g_autofree char *contents = NULL;
      g_autoptr(GBytes) bytes = NULL;
      gsize length;

      if (strcmp (file, "-") == 0)
        {
          g_autoptr(GInputStream) in = g_unix_input_stream_new (0, FALSE);
          g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

          if (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error) < 0)
            {
              status = fail_error (error);
              goto out;
            }
          bytes = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
        }
      else if (!g_file_get_contents (file, &contents, &length, &error))
        {
          status = fail_error (error);
          goto out;
        }
      else
        bytes = g_bytes_new_take (g_steal_pointer (&contents), length);

      if (!qipc_shared_memory_write (shm, 0, bytes, &error))
        {
          status = fail_error (error);
          goto out;
        }
    }

  signal_wait_init (&wait);
  g_print ("%s\n", qipc_shared_memory_get_native_key (shm));
  fflush (stdout);
  g_main_loop_run (wait.loop);
  status = QIPC_EXIT_OK;

out:
  signal_wait_clear (&wait);
  g_free (mode_text);
  g_free (file);
  return status;
}

static QipcSharedMemory *
attach (const char              *key,
        QipcSharedMemoryAccess   access,
        int                     *status)
{
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(GError) error = NULL;

  if (!qipc_shared_memory_attach (shm, access, &error))
    {
      *status = fail_error (error);
      return NULL;
    }
  return g_steal_pointer (&shm);
}

static int
shm_info (int argc, char **argv)
{
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print a JSON object", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(ShmEntry) entry = NULL;
  g_autofree char *path = NULL;
  int status;

  status = parse_options ("shm", &argc, &argv, "KEY", "describe a segment",
                          "Prints key, file, size, mode, owner, users and state, one\n"
                          "“name: value” line each (or a JSON object with --json), without\n"
                          "attaching to the segment.\n\n"
                          "Exit status: 0 ok, 2 usage, 3 bad key, 6 no such segment.",
                          entries, 1, 1);
  if (status >= 0)
    return status;

  if (!qipc_key_is_valid (argv[2]))
    return fail (QIPC_EXIT_BAD_DATA, "Invalid shared memory key “%s”: a key is a non-empty UTF-8 string", argv[2]);

  {
    g_autofree char *name = qipc_key_derive_name ("shm", argv[2]);

    path = g_build_filename (SHM_DIR, name, NULL);
  }
  entry = shm_entry_load (path);
  if (entry == NULL || (entry->readable && !entry->valid))
    return fail (QIPC_EXIT_FAILED, "No shared memory “%s”", argv[2]);
  if (entry->key == NULL)
    entry->key = g_strdup (argv[2]);
  if (!entry->in_use)
    return fail (QIPC_EXIT_FAILED, "No shared memory “%s”: its users are all gone", argv[2]);

  if (json)
    {
      g_autoptr(JsonNode) node = shm_entry_to_json (entry);

      print_json (node);
    }
  else
    {
      g_autofree char *users = format_users (entry->users);
      const char *owner = user_name (entry->uid);

      g_print ("key: %s\n", entry->key);
      g_print ("file: %s\n", entry->path);
      if (entry->valid)
        g_print ("size: %" G_GUINT64_FORMAT "\n", entry->size);
      else
        g_print ("size: ?\n");
      g_print ("mode: %04o\n", entry->mode);
      g_print ("owner: %s\n", owner != NULL ? owner : "?");
      g_print ("uid: %u\n", (guint) entry->uid);
      g_print ("users: %s\n", users);
      g_print ("state: %s\n", shm_state (entry));
    }
  return QIPC_EXIT_OK;
}

static int
shm_read (int argc, char **argv)
{
  char *offset_text = NULL, *length_text = NULL;
  gboolean hex = FALSE;
  GOptionEntry entries[] = {
    { "offset", 'o', 0, G_OPTION_ARG_STRING, &offset_text, "Start at byte OFFSET (default 0)", "OFFSET" },
    { "length", 'l', 0, G_OPTION_ARG_STRING, &length_text, "Read LENGTH bytes (default: to the end)", "LENGTH" },
    { "hex", 'x', 0, G_OPTION_ARG_NONE, &hex, "Print lowercase hexadecimal and a newline", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(QipcSharedMemory) shm = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  guint64 offset = 0, length;
  const guint8 *data;
  gsize size;
  int status;

  status = parse_options ("shm", &argc, &argv, "KEY", "copy bytes of a segment to standard output",
                          "Attaches read-only and writes the bytes as they are (or in hexadecimal\n"
                          "with --hex). The segment's lock is not taken.\n\n"
                          "Exit status: 0 ok, 2 usage, 3 bad key or range, 5 permission denied,\n"
                          "6 no such segment or other failure.",
                          entries, 1, 1);
  if (status >= 0)
    goto out;

  if (offset_text != NULL && !parse_size (offset_text, G_MAXSIZE, &offset))
    {
      status = fail (QIPC_EXIT_BAD_DATA, "Invalid offset “%s”", offset_text);
      goto out;
    }
  if (length_text != NULL && !parse_size (length_text, G_MAXSIZE, &length))
    {
      status = fail (QIPC_EXIT_BAD_DATA, "Invalid length “%s”", length_text);
      goto out;
    }

  shm = attach (argv[2], QIPC_SHARED_MEMORY_ACCESS_READ_ONLY, &status);
  if (shm == NULL)
    goto out;

  size = qipc_shared_memory_get_size (shm);
  if (length_text == NULL)
    length = offset <= size ? size - offset : 0;
  bytes = qipc_shared_memory_read (shm, offset, length, &error);
  if (bytes == NULL)
    {
      status = fail_error (error);
      goto out;
    }

  data = g_bytes_get_data (bytes, &size);
  if (hex)
    {
      GString *text = g_string_sized_new (size * 2 + 1);

      for (gsize i = 0; i < size; i++)
        g_string_append_printf (text, "%02x", data[i]);
      g_string_append_c (text, '\n');
      fwrite (text->str, 1, text->len, stdout);
      g_string_free (text, TRUE);
    }
  else if (size > 0)
    fwrite (data, 1, size, stdout);
  if (fflush (stdout) != 0 || ferror (stdout))
    status = fail (QIPC_EXIT_FAILED, "Cannot write to standard output: %s", g_strerror (errno));
  else
    status = QIPC_EXIT_OK;

out:
  g_free (offset_text);
  g_free (length_text);
  return status;
}

static GBytes *
parse_hex (const char *text)
{
  gsize length = strlen (text);
  g_autoptr(GByteArray) array = NULL;

  if (length % 2 != 0)
    return NULL;
  array = g_byte_array_sized_new (length / 2);
  for (gsize i = 0; i < length; i += 2)
    {
      int high = g_ascii_xdigit_value (text[i]), low = g_ascii_xdigit_value (text[i + 1]);
      guint8 byte;

      if (high < 0 || low < 0)
        return NULL;
      byte = (guint8) (high << 4 | low);
      g_byte_array_append (array, &byte, 1);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&array));
}

static int
shm_write (int argc, char **argv)
{
  char *offset_text = NULL, *file = NULL, *timeout_text = NULL;
  gboolean hex = FALSE, no_lock = FALSE, no_notify = FALSE;
  GOptionEntry entries[] = {
    { "offset", 'o', 0, G_OPTION_ARG_STRING, &offset_text, "Start at byte OFFSET (default 0)", "OFFSET" },
    { "file", 'f', 0, G_OPTION_ARG_FILENAME, &file, "Write the contents of FILE (- for standard input)", "FILE" },
    { "hex", 'x', 0, G_OPTION_ARG_NONE, &hex, "DATA is hexadecimal", NULL },
    { "timeout", 't', 0, G_OPTION_ARG_STRING, &timeout_text, "Wait at most MS milliseconds for the lock", "MS" },
    { "no-lock", 0, 0, G_OPTION_ARG_NONE, &no_lock, "Do not take the segment's lock", NULL },
    { "no-notify", 0, 0, G_OPTION_ARG_NONE, &no_notify, "Do not notify the other users", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(QipcSharedMemory) shm = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  guint64 offset = 0, timeout_ms = 0;
  int status;

  status = parse_options ("shm", &argc, &argv, "KEY [DATA]", "copy bytes into a segment",
                          "Writes DATA (text, or hexadecimal with --hex), or the contents of\n"
                          "--file, or standard input when neither is given, at OFFSET. Holds the\n"
                          "segment's lock while writing and then notifies the other users\n"
                          "(their ::changed signal), unless told not to.\n\n"
                          "Exit status: 0 ok, 1 the lock was not free within --timeout, 2 usage,\n"
                          "3 bad key, data or range, 5 permission denied, 6 no such segment\n"
                          "or other failure.",
                          entries, 1, 2);
  if (status >= 0)
    goto out;

  if (offset_text != NULL && !parse_size (offset_text, G_MAXSIZE, &offset))
    {
      status = fail (QIPC_EXIT_BAD_DATA, "Invalid offset “%s”", offset_text);
      goto out;
    }
  if (timeout_text != NULL &&
      !g_ascii_string_to_unsigned (timeout_text, 10, 0, G_MAXINT, &timeout_ms, NULL))
    {
      status = fail (QIPC_EXIT_BAD_DATA, "Invalid timeout “%s”: milliseconds", timeout_text);
      goto out;
    }
  if (argc == 4 && file != NULL)
    {
      status = qipc_tool_usage_error ("shm write", "Give either DATA or --file");
      goto out;
    }

  if (argc == 4)
    {
      bytes = hex ? parse_hex (argv[3]) : g_bytes_new (argv[3], strlen (argv[3]));
      if (bytes == NULL)
        {
          status = fail (QIPC_EXIT_BAD_DATA, "Invalid hexadecimal data “%s”", argv[3]);
          goto out;
        }
    }
  else if (file != NULL && strcmp (file, "-") != 0)
    {
      char *contents;
      gsize length;

      if (!g_file_get_contents (file, &contents, &length, &error))
        {
          status = fail_error (error);
          goto out;
        }
      bytes = g_bytes_new_take (contents, length);
    }
  else
    {
      g_autoptr(GInputStream) in = g_unix_input_stream_new (0, FALSE);
      g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

      if (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error) < 0)
        {
          status = fail_error (error);
          goto out;
        }
      bytes = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
    }
  if (hex && argc != 4)
    {
      g_autofree char *text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      GBytes *decoded = parse_hex (g_strstrip (text));

      if (decoded == NULL)
        {
          status = fail (QIPC_EXIT_BAD_DATA, "Invalid hexadecimal data");
          goto out;
        }
      g_bytes_unref (bytes);
      bytes = decoded;
    }

  shm = attach (argv[2], QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &status);
  if (shm == NULL)
    goto out;

  if (!no_lock)
    {
      gboolean locked = timeout_text != NULL
        ? qipc_shared_memory_try_lock (shm, (int) timeout_ms, &error)
        : qipc_shared_memory_lock (shm, &error);

      if (!locked)
        {
          status = error != NULL ? fail_error (error)
                                 : fail (QIPC_EXIT_FALSE, "Shared memory “%s” stayed locked for %s ms",
                                         argv[2], timeout_text);
          goto out;
        }
    }

  if (!qipc_shared_memory_write (shm, offset, bytes, &error))
    {
      status = fail_error (error);
      if (!no_lock)
        qipc_shared_memory_unlock (shm, NULL);
      goto out;
    }
  if ((!no_lock && !qipc_shared_memory_unlock (shm, &error)) ||
      (!no_notify && !qipc_shared_memory_notify_changed (shm, &error)))
    {
      status = fail_error (error);
      goto out;
    }
  status = QIPC_EXIT_OK;

out:
  g_free (offset_text);
  g_free (file);
  g_free (timeout_text);
  return status;
}

/* Removes a segment file: at once when nobody uses it, with --force even
 * when someone does (the users keep their mapping; new attaches fail). */
static int
shm_rm (int argc, char **argv)
{
  gboolean force = FALSE;
  GOptionEntry entries[] = {
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "Remove the segment's name even while it is in use", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autofree char *name = NULL;
  g_autofree char *path = NULL;
  QipcShmHeader header;
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
  gboolean unused, have_header;
  int status, fd;

  status = parse_options ("shm", &argc, &argv, "KEY", "remove a segment",
                          "Removes a segment nobody uses any more (left by crashed users). A live\n"
                          "segment is refused unless --force is given: then its name goes, its\n"
                          "users keep their mapping, and new attaches find nothing.\n\n"
                          "Exit status: 0 ok, 2 usage, 3 bad key, 5 permission denied,\n"
                          "6 no such segment, in use, or other failure.",
                          entries, 1, 1);
  if (status >= 0)
    return status;
  if (!qipc_key_is_valid (argv[2]))
    return fail (QIPC_EXIT_BAD_DATA, "Invalid shared memory key “%s”: a key is a non-empty UTF-8 string", argv[2]);

  name = qipc_key_derive_name ("shm", argv[2]);
  path = g_build_filename (SHM_DIR, name, NULL);
  fd = open (path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && errno == EACCES)
    fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    {
      if (errno == ENOENT)
        return fail (QIPC_EXIT_FAILED, "Cannot remove shared memory “%s”: no such segment", argv[2]);
      return fail (status_for_errno (errno), "Cannot remove shared memory “%s”: %s",
                   argv[2], g_strerror (errno));
    }

  /* Holding the write lock, as the library's last user does, keeps
   * attaches out until the name is gone. */
  unused = fcntl (fd, F_OFD_SETLK, &fl) == 0;
  if (!unused && !force)
    {
      struct stat st;
      int users = fstat (fd, &st) == 0 ? count_users (&st) : -1;
      g_autofree char *count = format_users (users);

      close (fd);
      return fail (QIPC_EXIT_FAILED, "Cannot remove shared memory “%s”: %s process(es) use it "
                   "(--force removes it anyway)", argv[2], count);
    }

  have_header = pread (fd, &header, sizeof header, 0) == (ssize_t) sizeof header &&
                header.magic == QIPC_SHM_HEADER_MAGIC;
  if (unlink (path) < 0)
    {
      int errsv = errno;

      close (fd);
      return fail (status_for_errno (errsv), "Cannot remove shared memory “%s”: %s",
                   argv[2], g_strerror (errsv));
    }

  /* The notification directory of a segment still in use is left to the
   * library, which sweeps it once the users are gone. */
  if (unused && have_header)
    {
      g_autofree char *dir_path = g_strdup_printf ("%s.%016" G_GINT64_MODIFIER "x.d",
                                                   path, header.generation);
      g_autoptr(GDir) dir = g_dir_open (dir_path, 0, NULL);
      const char *entry;

      while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *fifo = g_build_filename (dir_path, entry, NULL);

          unlink (fifo);
        }
      rmdir (dir_path);
    }
  close (fd);
  return QIPC_EXIT_OK;
}

static int
shm_list (int argc, char **argv)
{
  gboolean json = FALSE, all = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print a JSON array", NULL },
    { "all", 'a', 0, G_OPTION_ARG_NONE, &all, "Include stale segments (all users gone)", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GPtrArray) entries_found = NULL;
  int status;

  status = parse_options ("shm", &argc, &argv, "", "list the segments on this machine",
                          "Lists the qipc segments in /dev/shm: key, size, users (the processes\n"
                          "attached) and state (live, or stale when all users are gone and the\n"
                          "next create anywhere frees it). Segments made before keys were\n"
                          "recorded show “(unknown key)”. --json prints one object per segment.\n\n"
                          "Exit status: 0 ok, 2 usage.",
                          entries, 0, 0);
  if (status >= 0)
    return status;

  entries_found = shm_list_entries ();
  if (json)
    {
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);
      JsonArray *array = json_array_new ();

      for (guint i = 0; i < entries_found->len; i++)
        {
          ShmEntry *entry = g_ptr_array_index (entries_found, i);

          if (all || entry->in_use)
            json_array_add_element (array, shm_entry_to_json (entry));
        }
      json_node_take_array (root, array);
      print_json (root);
      return QIPC_EXIT_OK;
    }

  g_print ("%-12s %-6s %-5s %-8s %-6s %s\n", "SIZE", "USERS", "MODE", "OWNER", "STATE", "KEY");
  for (guint i = 0; i < entries_found->len; i++)
    {
      ShmEntry *entry = g_ptr_array_index (entries_found, i);
      g_autofree char *key = printable_key (entry->key);
      g_autofree char *users = format_users (entry->users);
      g_autofree char *size = entry->valid ? g_strdup_printf ("%" G_GUINT64_FORMAT, entry->size)
                                           : g_strdup ("?");
      const char *owner = user_name (entry->uid);
      g_autofree char *uid = g_strdup_printf ("%u", (guint) entry->uid);

      if (!all && !entry->in_use)
        continue;
      g_print ("%-12s %-6s %04o  %-8s %-6s %s\n", size, users, entry->mode,
               owner != NULL ? owner : uid, shm_state (entry), key);
    }
  return QIPC_EXIT_OK;
}

static void
print_shm_help (void)
{
  g_print ("Usage:\n"
           "  qipc shm COMMAND [OPTION…] KEY …\n\n"
           "Shared memory segments by key.\n\n"
           "Commands:\n"
           "  create KEY SIZE     create a segment and stay attached to it\n"
           "  info KEY            describe a segment\n"
           "  read KEY            copy bytes of a segment to standard output\n"
           "  write KEY [DATA]    copy bytes into a segment\n"
           "  rm KEY              remove a segment\n"
           "  list                list the segments on this machine\n\n"
           "“qipc shm COMMAND --help” tells more.\n\n%s\n", shm_description);
}

/* The subcommands of "qipc shm" and "qipc sem". */
typedef struct {
  const char *name;
  int (*run) (int, char **);
} Subcommand;

static int
run_subcommand (const char       *group,
                const Subcommand *commands,
                gsize             n_commands,
                void            (*print_help) (void),
                int               argc,
                char            **argv)
{
  if (argc < 2)
    return qipc_tool_usage_error (group, "A command is needed");
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 ||
      strcmp (argv[1], "help") == 0)
    {
      print_help ();
      return QIPC_EXIT_OK;
    }
  for (gsize i = 0; i < n_commands; i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      {
        g_snprintf (current_command, sizeof current_command, "%s %s", group, commands[i].name);
        return commands[i].run (argc, argv);
      }

  return qipc_tool_usage_error (group, "Unknown command \"%s\"", argv[1]);
}

int
qipc_cmd_shm (int    argc,
              char **argv)
{
  static const Subcommand commands[] = {
    { "create", shm_create },
    { "info", shm_info },
    { "read", shm_read },
    { "write", shm_write },
    { "rm", shm_rm },
    { "list", shm_list },
  };

  return run_subcommand ("shm", commands, G_N_ELEMENTS (commands), print_shm_help, argc, argv);
}

/* ---- Semaphores -------------------------------------------------------- */

static const char sem_description[] =
  "Exit status: 0 ok, 1 timed out, 2 usage, 3 bad input, 5 permission denied,\n"
  "6 other failure (such as no semaphore with that key).";

/* Finds the set of @key without creating it. Returns its id, or -1 with
 * a message printed and *status set. */
static int
find_semaphore (const char *key,
                const char *what,
                int        *status)
{
  key_t sysv_key;
  int semid;

  if (!qipc_key_is_valid (key))
    {
      *status = fail (QIPC_EXIT_BAD_DATA, "Invalid semaphore key “%s”: a key is a non-empty UTF-8 string", key);
      return -1;
    }
  sysv_key = qipc_key_derive_sysv_key ("sem", key, NULL);
  semid = semget (sysv_key, 0, 0);
  if (semid < 0)
    {
      int errsv = errno;

      if (errsv == ENOENT)
        {
          g_autofree char *registry = qipc_key_registry_path ("sem", key);

          /* A registration left by a process that lost a race; harmless. */
          unlink (registry);
          *status = fail (QIPC_EXIT_FAILED, "Cannot %s semaphore “%s”: no such semaphore", what, key);
        }
      else
        *status = fail (status_for_errno (errsv), "Cannot %s semaphore “%s”: %s",
                        what, key, g_strerror (errsv));
    }
  return semid;
}

static QipcSystemSemaphore *
open_semaphore (const char *key,
                const char *what,
                int        *status)
{
  g_autoptr(GError) error = NULL;
  QipcSystemSemaphore *sem;

  if (find_semaphore (key, what, status) < 0)
    return NULL;
  sem = qipc_system_semaphore_new (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN, &error);
  if (sem == NULL)
    *status = fail_error (error);
  return sem;
}

/* The semaphore `sem create` makes outlives the command: its creator
 * would remove it when finalized, so it never is. Kept reachable so that
 * leak checkers do not count it. */
static QipcSystemSemaphore *kept_semaphore;

static int
sem_create (int argc, char **argv)
{
  char *mode_text = NULL, *value_text = NULL;
  gboolean hold = FALSE;
  GOptionEntry entries[] = {
    { "value", 'v', 0, G_OPTION_ARG_STRING, &value_text, "Initial value (default 0)", "N" },
    { "mode", 'm', 0, G_OPTION_ARG_STRING, &mode_text, "Permissions in octal (default 0600)", "MODE" },
    { "hold", 0, 0, G_OPTION_ARG_NONE, &hold, "Stay running, and remove the semaphore on SIGINT, SIGTERM or SIGHUP", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GError) error = NULL;
  SignalWait wait = { 0 };
  QipcSystemSemaphore *sem;
  guint64 value = 0;
  guint mode = 0600;
  int status;

  status = parse_options ("sem", &argc, &argv, "KEY", "create a semaphore",
                          "Creates the semaphore (it must not exist) and prints its native key\n"
                          "(0x…, as ipcs -s shows it). Without --hold the semaphore stays after\n"
                          "the command exits, until “qipc sem rm”; with --hold the command stays\n"
                          "running as its creator and removes it when told to stop.\n\n"
                          "Exit status: 0 ok, 2 usage, 3 bad key, value or mode,\n"
                          "5 permission denied, 6 exists already or other failure.",
                          entries, 1, 1);
  if (status >= 0)
    goto out;
  if (!parse_mode (mode_text, &mode))
    {
      status = fail (QIPC_EXIT_BAD_DATA, "Invalid mode “%s”: an octal number up to 0777", mode_text);
      goto out;
    }
  if (value_text != NULL &&
      !g_ascii_string_to_unsigned (value_text, 10, 0, QIPC_SYSTEM_SEMAPHORE_MAX_VALUE, &value, NULL))
    {
      status = fail (QIPC_EXIT_BAD_DATA, "Invalid value “%s”: from 0 to %d", value_text,
                     QIPC_SYSTEM_SEMAPHORE_MAX_VALUE);
      goto out;
    }

  sem = qipc_system_semaphore_new_full (argv[2], (guint) value,
                                        QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE_EXCLUSIVE,
                                        mode, &error);
  if (sem == NULL)
    {
      status = fail_error (error);
      goto out;
    }

  if (hold)
    signal_wait_init (&wait);
  g_print ("%s\n", qipc_system_semaphore_get_native_key (sem));
  fflush (stdout);
  if (hold)
    {
      g_main_loop_run (wait.loop);
      signal_wait_clear (&wait);
      g_object_unref (sem);
    }
  else
    {
      g_clear_object (&kept_semaphore);
      kept_semaphore = sem;
    }
  status = QIPC_EXIT_OK;

out:
  g_free (mode_text);
  g_free (value_text);
  return status;
}

static int
sem_acquire (int argc, char **argv)
{
  char *count_text = NULL, *timeout_text = NULL;
  GOptionEntry entries[] = {
    { "count", 'n', 0, G_OPTION_ARG_STRING, &count_text, "Acquire N units (default 1)", "N" },
    { "timeout", 't', 0, G_OPTION_ARG_STRING, &timeout_text, "Wait at most MS milliseconds (default: forever)", "MS" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(QipcSystemSemaphore) sem = NULL;
  g_autoptr(GError) error = NULL;
  guint64 count = 1, timeout_ms = 0;
  gint64 deadline = 0;
  guint64 taken = 0;
  int status;

  status = parse_options ("sem", &argc, &argv, "KEY", "take units of a semaphore",
                          "Waits until N units can be taken and takes them; they are consumed\n"
                          "when the command exits (not given back). With --timeout, units taken\n"
                          "before the time ran out are given back.\n\n"
                          "Exit status: 0 ok, 1 timed out, 2 usage, 3 bad key or number,\n"
                          "5 permission denied, 6 no such semaphore or other failure.",
                          entries, 1, 1);
  if (status >= 0)
    goto out;
  if (count_text != NULL &&
      !g_ascii_string_to_unsigned (count_text, 10, 1, QIPC_SYSTEM_SEMAPHORE_MAX_VALUE, &count, NULL))
    {
      status = fail (QIPC_EXIT_BAD_DATA, "Invalid count “%s”: from 1 to %d", count_text,
                     QIPC_SYSTEM_SEMAPHORE_MAX_VALUE);
      goto out;
    }
  if (timeout_text != NULL &&
      !g_ascii_string_to_unsigned (timeout_text, 10, 0, G_MAXINT, &timeout_ms, NULL))
    {
      status = fail (QIPC_EXIT_BAD_DATA, "Invalid timeout “%s”: milliseconds", timeout_text);
      goto out;
    }

  sem = open_semaphore (argv[2], "acquire", &status);
  if (sem == NULL)
    goto out;

  if (timeout_text != NULL)
    deadline = g_get_monotonic_time () + (gint64) timeout_ms * G_TIME_SPAN_MILLISECOND;
  for (taken = 0; taken < count; taken++)
    {
      gboolean ok;

      if (timeout_text != NULL)
        {
          gint64 left = MAX (deadline - g_get_monotonic_time (), 0) / G_TIME_SPAN_MILLISECOND;

          ok = qipc_system_semaphore_try_acquire (sem, (int) left, &error);
        }
      else
        ok = qipc_system_semaphore_acquire (sem, &error);

      if (!ok)
        {
          if (taken > 0)
            qipc_system_semaphore_release (sem, (guint) taken, NULL);
          if (error != NULL)
            status = fail_error (error);
          else
            status = fail (QIPC_EXIT_FALSE, "Semaphore “%s”: timed out after %s ms",
                           argv[2], timeout_text);
          goto out;
        }
    }
  status = QIPC_EXIT_OK;

out:
  g_free (count_text);
  g_free (timeout_text);
  return status;
}

static int
sem_release (int argc, char **argv)
{
  g_autoptr(QipcSystemSemaphore) sem = NULL;
  g_autoptr(GError) error = NULL;
  guint64 count = 1;
  int status;

  status = parse_options ("sem", &argc, &argv, "KEY [N]", "give units to a semaphore",
                          "Adds N (default 1) to the value of the semaphore, waking waiters.\n"
                          "The release stays when the command exits.\n\n"
                          "Exit status: 0 ok, 2 usage, 3 bad key or number, 5 permission denied,\n"
                          "6 no such semaphore, value past the maximum, or other failure.",
                          NULL, 1, 2);
  if (status >= 0)
    return status;
  if (argc == 4 &&
      !g_ascii_string_to_unsigned (argv[3], 10, 1, QIPC_SYSTEM_SEMAPHORE_MAX_VALUE, &count, NULL))
    return fail (QIPC_EXIT_BAD_DATA, "Invalid count “%s”: from 1 to %d", argv[3],
                 QIPC_SYSTEM_SEMAPHORE_MAX_VALUE);

  sem = open_semaphore (argv[2], "release", &status);
  if (sem == NULL)
    return status;
  if (!qipc_system_semaphore_release (sem, (guint) count, &error))
    return fail_error (error);
  return QIPC_EXIT_OK;
}

static int
sem_rm (int argc, char **argv)
{
  g_autoptr(QipcSystemSemaphore) sem = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  status = parse_options ("sem", &argc, &argv, "KEY", "remove a semaphore",
                          "Removes the semaphore now, whoever created it; its waiters fail.\n\n"
                          "Exit status: 0 ok, 2 usage, 3 bad key, 5 permission denied,\n"
                          "6 no such semaphore or other failure.",
                          NULL, 1, 1);
  if (status >= 0)
    return status;

  sem = open_semaphore (argv[2], "remove", &status);
  if (sem == NULL)
    return status;
  if (!qipc_system_semaphore_remove (sem, &error))
    return fail_error (error);
  return QIPC_EXIT_OK;
}

typedef struct
{
  char *key;        /* NULL when not registered */
  key_t sysv_key;
  int semid;
  guint mode;
  uid_t uid;
  int value;        /* -1: unreadable */
  int waiters;      /* -1: unreadable */
  pid_t creator;    /* 0: unknown */
} SemEntry;

static void
sem_entry_free (SemEntry *entry)
{
  g_free (entry->key);
  g_free (entry);
}

/* The sets of /proc/sysvipc/sem with two semaphores, qipc's shape. */
static GHashTable *
read_sysv_sets (void)
{
  GHashTable *sets = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) sem_entry_free);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents ("/proc/sysvipc/sem", &text, NULL, NULL))
    return sets;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      int key, semid, nsems;
      unsigned int perms, uid;
      SemEntry *entry;

      /* key semid perms nsems uid gid cuid cgid otime ctime */
      if (sscanf (lines[i], "%d %d %o %d %u", &key, &semid, &perms, &nsems, &uid) != 5 ||
          nsems != SEM_N_SEMS)
        continue;
      entry = g_new0 (SemEntry, 1);
      entry->sysv_key = (key_t) key;
      entry->semid = semid;
      entry->mode = perms & 0777;
      entry->uid = uid;
      g_hash_table_insert (sets, GINT_TO_POINTER (key), entry);
    }
  return sets;
}

static void
read_sem_state (SemEntry *entry)
{
  int pid;

  entry->value = semctl (entry->semid, SEM_VALUE, GETVAL);
  entry->waiters = semctl (entry->semid, SEM_VALUE, GETNCNT);
  /* Only the creator operates on the tag semaphore, once, when it marks
   * the set ready: its last operator is the creator. */
  pid = semctl (entry->semid, SEM_TAG, GETPID);
  entry->creator = pid > 0 ? pid : 0;
}

static GPtrArray *
sem_list_entries (gboolean all)
{
  g_autoptr(GHashTable) sets = read_sysv_sets ();
  GPtrArray *entries = g_ptr_array_new_with_free_func ((GDestroyNotify) sem_entry_free);
  g_autoptr(GDir) dir = g_dir_open (SHM_DIR, 0, NULL);
  const char *name;
  GHashTableIter iter;
  gpointer value;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *key = NULL;
      g_autofree char *expected = NULL;
      SemEntry *entry;
      key_t sysv_key;
      int tag, found_tag;

      if (!g_str_has_prefix (name, "qipc-sem-") || !g_str_has_suffix (name, ".key"))
        continue;
      path = g_build_filename (SHM_DIR, name, NULL);
      if (!g_file_get_contents (path, &key, NULL, NULL) || !qipc_key_is_valid (key))
        continue;
      expected = qipc_key_registry_path ("sem", key);
      if (strcmp (expected, path) != 0)
        continue;

      sysv_key = qipc_key_derive_sysv_key ("sem", key, &tag);
      if (!g_hash_table_steal_extended (sets, GINT_TO_POINTER (sysv_key), NULL, &value))
        continue;  /* registered, but removed since */
      entry = value;
      found_tag = semctl (entry->semid, SEM_TAG, GETVAL);
      if (found_tag >= 0 && found_tag != tag)
        {
          /* Another qipc key on the same IPC key: not this one. */
          g_hash_table_insert (sets, GINT_TO_POINTER (sysv_key), entry);
          continue;
        }
      entry->key = g_steal_pointer (&key);
      read_sem_state (entry);
      g_ptr_array_add (entries, entry);
    }

  if (!all)
    return entries;

  /* Sets of qipc's shape without a registered key: made before the
   * registry existed, or whose registration was lost. */
  g_hash_table_iter_init (&iter, sets);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      SemEntry *entry = value;
      int tag = semctl (entry->semid, SEM_TAG, GETVAL);

      if (tag < 0 || (tag > 0 && tag % 2 == 1 && tag <= 0x7fff))
        {
          g_hash_table_iter_steal (&iter);
          read_sem_state (entry);
          g_ptr_array_add (entries, entry);
        }
    }
  return entries;
}

static JsonNode *
sem_entry_to_json (const SemEntry *entry)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autofree char *native = g_strdup_printf ("0x%08x", (guint32) entry->sysv_key);
  g_autofree char *mode = g_strdup_printf ("%04o", entry->mode);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "key");
  if (entry->key != NULL)
    json_builder_add_string_value (builder, entry->key);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "native_key");
  json_builder_add_string_value (builder, native);
  json_builder_set_member_name (builder, "semid");
  json_builder_add_int_value (builder, entry->semid);
  json_builder_set_member_name (builder, "value");
  if (entry->value >= 0)
    json_builder_add_int_value (builder, entry->value);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "waiters");
  if (entry->waiters >= 0)
    json_builder_add_int_value (builder, entry->waiters);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "mode");
  json_builder_add_string_value (builder, mode);
  json_builder_set_member_name (builder, "uid");
  json_builder_add_int_value (builder, entry->uid);
  json_builder_set_member_name (builder, "creator_pid");
  if (entry->creator > 0)
    json_builder_add_int_value (builder, entry->creator);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "creator_alive");
  if (entry->creator > 0)
    json_builder_add_boolean_value (builder, pid_is_alive (entry->creator));
  else
    json_builder_add_null_value (builder);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static int
sem_list (int argc, char **argv)
{
  gboolean json = FALSE, all = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print a JSON array", NULL },
    { "all", 'a', 0, G_OPTION_ARG_NONE, &all, "Include sets that look like qipc's but have no registered key", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GPtrArray) found = NULL;
  int status;

  status = parse_options ("sem", &argc, &argv, "", "list the semaphores on this machine",
                          "Lists the semaphores qipc created on this machine: value, waiters,\n"
                          "creator pid and whether the creator is alive (a semaphore created\n"
                          "by “qipc sem create” without --hold outlives its creator by design).\n"
                          "--json prints one object per semaphore.\n\n"
                          "Exit status: 0 ok, 2 usage.",
                          entries, 0, 0);
  if (status >= 0)
    return status;

  found = sem_list_entries (all);
  if (json)
    {
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);
      JsonArray *array = json_array_new ();

      for (guint i = 0; i < found->len; i++)
        json_array_add_element (array, sem_entry_to_json (g_ptr_array_index (found, i)));
      json_node_take_array (root, array);
      print_json (root);
      return QIPC_EXIT_OK;
    }

  g_print ("%-10s %-6s %-7s %-5s %-8s %-14s %s\n",
           "NATIVE", "VALUE", "WAITERS", "MODE", "OWNER", "CREATOR", "KEY");
  for (guint i = 0; i < found->len; i++)
    {
      SemEntry *entry = g_ptr_array_index (found, i);
      g_autofree char *key = printable_key (entry->key);
      g_autofree char *native = g_strdup_printf ("0x%08x", (guint32) entry->sysv_key);
      g_autofree char *value = entry->value >= 0 ? g_strdup_printf ("%d", entry->value) : g_strdup ("?");
      g_autofree char *waiters = entry->waiters >= 0 ? g_strdup_printf ("%d", entry->waiters) : g_strdup ("?");
      g_autofree char *creator = entry->creator > 0
        ? g_strdup_printf ("%d(%s)", (int) entry->creator, pid_is_alive (entry->creator) ? "alive" : "gone")
        : g_strdup ("?");
      g_autofree char *uid = g_strdup_printf ("%u", (guint) entry->uid);
      const char *owner = user_name (entry->uid);

      g_print ("%-10s %-6s %-7s %04o  %-8s %-14s %s\n", native, value, waiters, entry->mode,
               owner != NULL ? owner : uid, creator, key);
    }
  return QIPC_EXIT_OK;
}

static void
print_sem_help (void)
{
  g_print ("Usage:\n"
           "  qipc sem COMMAND [OPTION…] KEY …\n\n"
           "Counting semaphores by key.\n\n"
           "Commands:\n"
           "  create KEY          create a semaphore\n"
           "  acquire KEY         take units of a semaphore\n"
           "  release KEY [N]     give units to a semaphore\n"
           "  rm KEY              remove a semaphore\n"
           "  list                list the semaphores on this machine\n\n"
           "“qipc sem COMMAND --help” tells more.\n\n%s\n", sem_description);
}

int
qipc_cmd_sem (int    argc,
              char **argv)
{
  static const Subcommand commands[] = {
    { "create", sem_create },
    { "acquire", sem_acquire },
    { "release", sem_release },
    { "rm", sem_rm },
    { "list", sem_list },
  };

  return run_subcommand ("sem", commands, G_N_ELEMENTS (commands), print_sem_help, argc, argv);
}
