/* broker-tls.h: the TLS certificate options of qipc-broker and `qipc broker`
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Both programs run a QipcBroker and take --tls-certificate FILE
 * [--tls-key FILE]; this gives the broker the certificate they name.
 */
#pragma once

#include <qipc.h>

/* Sets @broker's certificate from the PEM @certificate_file and
 * @key_file (NULL: the key is in @certificate_file); nothing when
 * @certificate_file is NULL. */
static inline gboolean
broker_tls_configure (QipcBroker  *broker,
                      const char  *certificate_file,
                      const char  *key_file,
                      GError     **error)
{
  g_autoptr(GTlsCertificate) certificate = NULL;

  if (certificate_file == NULL)
    return TRUE;
  certificate = g_tls_certificate_new_from_files (certificate_file,
                                                  key_file != NULL ? key_file : certificate_file,
                                                  error);
  if (certificate == NULL)
    {
      g_prefix_error (error, "Cannot load the TLS certificate %s: ", certificate_file);
      return FALSE;
    }
  qipc_broker_set_tls_certificate (broker, certificate);
  return TRUE;
}
