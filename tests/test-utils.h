/* test-utils.h: shared helpers for the C tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <qipc.h>

G_BEGIN_DECLS

/* A child process running tests/helpers/qipc-test-helper. */
typedef struct _QipcTestChild QipcTestChild;

char          *qipc_test_key              (const char     *what);
char          *qipc_test_abstract_address (const char     *what);
QipcTestChild *qipc_test_child_spawn      (const char     *first_arg,
                                           ...) G_GNUC_NULL_TERMINATED;
QipcTestChild *qipc_test_child_spawn_program (const char *program,
                                             const char *first_arg,
                                             ...) G_GNUC_NULL_TERMINATED;
void           qipc_test_child_expect     (QipcTestChild  *child,
                                           const char     *line);
/* Like qipc_test_child_expect(), but @once may come before @line, at
 * most once in all (*@once_seen says whether it did): a message that a
 * reconnection may deliver before or after the connection's news. */
void           qipc_test_child_expect_past (QipcTestChild *child,
                                            const char    *line,
                                            const char    *once,
                                            gboolean      *once_seen);
char          *qipc_test_child_read_line  (QipcTestChild  *child);
void           qipc_test_child_send       (QipcTestChild  *child,
                                           const char     *line);
void           qipc_test_child_kill       (QipcTestChild  *child);
int            qipc_test_child_wait       (QipcTestChild  *child);
GPid           qipc_test_child_get_pid    (QipcTestChild  *child);
void           qipc_test_child_free       (QipcTestChild  *child);
void           qipc_test_wait_for_result  (GAsyncResult  **result);
/* A main-context source that fails the test (g_error) when waiting for
 * @what (a static string) has taken 20 s; g_source_remove() it when done. */
guint          qipc_test_add_deadline     (const char     *what);
/* Runs the main context until done (data) holds, failing the test
 * after the deadline's 20 s. */
void           qipc_test_wait_until       (gboolean      (*done) (gconstpointer data),
                                           gconstpointer   data,
                                           const char     *what);
void           qipc_test_store_result     (GObject        *source,
                                           GAsyncResult   *result,
                                           gpointer        user_data);
gboolean       qipc_test_cancel_cb        (gpointer        cancellable);
void           qipc_test_count_notify     (GObject        *object,
                                           GParamSpec     *pspec,
                                           guint          *count);
gboolean       qipc_test_is_root          (void);
/* @open @levels times, @middle, then @close @levels times: input nested
 * @levels deep. */
char          *qipc_test_nest             (const char     *open,
                                           const char     *middle,
                                           const char     *close,
                                           guint           levels);
void           qipc_test_socket_write_text   (QipcSocket *socket,
                                              const char *text);
GBytes        *qipc_test_socket_read_exactly (QipcSocket *socket,
                                              gsize       size);

/* What channels received, as "channel-name message data" lines (data
 * printed with its type, "none" without data). */
typedef struct
{
  GPtrArray *messages;
} QipcTestInbox;

QipcTestInbox *qipc_test_inbox_new       (void);
void           qipc_test_inbox_free      (QipcTestInbox *inbox);
void           qipc_test_inbox_wait      (QipcTestInbox *inbox,
                                          guint          count);
/* @inbox may be NULL: the messages go nowhere. */
QipcChannel   *qipc_test_listen          (QipcBus       *bus,
                                          const char    *name,
                                          QipcTestInbox *inbox);
gboolean       qipc_test_inbox_has       (QipcTestInbox *inbox,
                                          const char    *line);
void           qipc_test_settle          (guint          ms);
void           qipc_test_send_ok         (QipcBus       *bus,
                                          const char    *channel,
                                          const char    *message,
                                          GVariant      *data);
void           qipc_test_flush_ok        (QipcBus       *bus);
gboolean       qipc_test_is_registered   (QipcBus       *bus,
                                          const char    *name);

guint16        qipc_test_free_loopback_port (void);
gboolean       qipc_test_make_certificate (const char     *cert,
                                           const char     *key,
                                           const char     *alt_names);
GTlsCertificate *qipc_test_load_certificate (const char   *cert,
                                             const char   *key);

/* A self-signed certificate for localhost and 127.0.0.1 (its own
 * authority) and one for another host, with their keys, in a directory
 * of their own; NULL when openssl could not make them. */
typedef struct
{
  char *dir;
  char *cert, *key;
  char *other_cert, *other_key;
} QipcTestCertificates;

QipcTestCertificates *qipc_test_certificates_new  (void);
void                  qipc_test_certificates_free (QipcTestCertificates *certs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QipcTestCertificates, qipc_test_certificates_free)

/* A mosquitto the test starts on 127.0.0.1 at a free port (with TLS at
 * an mqtts:// address when the three PEM files are given). */
typedef struct _QipcTestMosquitto QipcTestMosquitto;

QipcTestMosquitto *qipc_test_mosquitto_start       (void);
QipcTestMosquitto *qipc_test_mosquitto_start_tls   (const char        *ca_file,
                                                    const char        *cert_file,
                                                    const char        *key_file);
QipcTestMosquitto *qipc_test_mosquitto_start_at    (guint16            port);
const char        *qipc_test_mosquitto_get_address (QipcTestMosquitto *mosquitto);
guint16            qipc_test_mosquitto_get_port    (QipcTestMosquitto *mosquitto);
void               qipc_test_mosquitto_stop        (QipcTestMosquitto *mosquitto);
void               qipc_test_mosquitto_restart     (QipcTestMosquitto *mosquitto);
void               qipc_test_mosquitto_free        (QipcTestMosquitto *mosquitto);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QipcTestChild, qipc_test_child_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QipcTestMosquitto, qipc_test_mosquitto_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QipcTestInbox, qipc_test_inbox_free)

G_END_DECLS
