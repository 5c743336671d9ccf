/* qipc-system-semaphore.h: a counting semaphore shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <gio/gio.h>

#include "qipc-version-macros.h"

G_BEGIN_DECLS

/**
 * QipcSystemSemaphoreAccess:
 * @QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN: open the semaphore; if it does not
 *   exist, create it with the initial value (Qt's `QSystemSemaphore::Open`)
 * @QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE: create the semaphore; if one with
 *   this key is left over, take it over and reset it to the initial value
 *   (Qt's `QSystemSemaphore::Create`)
 * @QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE_EXCLUSIVE: create the semaphore, and
 *   fail with %QIPC_SYSTEM_SEMAPHORE_ERROR_ALREADY_EXISTS when one with this
 *   key exists (Qt has no equivalent)
 *
 * How [ctor@SystemSemaphore.new] treats an existing semaphore.
 */
typedef enum {
  QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN,
  QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE,
  QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE_EXCLUSIVE,
} QipcSystemSemaphoreAccess;

/**
 * QipcSystemSemaphoreError:
 * @QIPC_SYSTEM_SEMAPHORE_ERROR_PERMISSION_DENIED: the caller may not use
 *   the semaphore
 * @QIPC_SYSTEM_SEMAPHORE_ERROR_KEY_ERROR: the key is invalid (empty or not
 *   UTF-8), or its native key is taken by a semaphore that qipc did not make
 * @QIPC_SYSTEM_SEMAPHORE_ERROR_ALREADY_EXISTS: %QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE_EXCLUSIVE
 *   and a semaphore with the key exists
 * @QIPC_SYSTEM_SEMAPHORE_ERROR_NOT_FOUND: the semaphore was removed while
 *   this object used it
 * @QIPC_SYSTEM_SEMAPHORE_ERROR_OUT_OF_RESOURCES: a system limit was hit:
 *   the value would pass %QIPC_SYSTEM_SEMAPHORE_MAX_VALUE, or the system has
 *   no semaphores left
 * @QIPC_SYSTEM_SEMAPHORE_ERROR_FAILED: any other failure
 *
 * Errors in the %QIPC_SYSTEM_SEMAPHORE_ERROR domain. Every message names
 * the key.
 */
typedef enum {
  QIPC_SYSTEM_SEMAPHORE_ERROR_PERMISSION_DENIED,
  QIPC_SYSTEM_SEMAPHORE_ERROR_KEY_ERROR,
  QIPC_SYSTEM_SEMAPHORE_ERROR_ALREADY_EXISTS,
  QIPC_SYSTEM_SEMAPHORE_ERROR_NOT_FOUND,
  QIPC_SYSTEM_SEMAPHORE_ERROR_OUT_OF_RESOURCES,
  QIPC_SYSTEM_SEMAPHORE_ERROR_FAILED,
} QipcSystemSemaphoreError;

/**
 * QIPC_SYSTEM_SEMAPHORE_ERROR:
 *
 * The error domain of [class@SystemSemaphore].
 */
#define QIPC_SYSTEM_SEMAPHORE_ERROR (qipc_system_semaphore_error_quark ())

/**
 * QIPC_SYSTEM_SEMAPHORE_MAX_VALUE:
 *
 * The largest value a semaphore can hold, and the most acquisitions one
 * process can hold at once on one semaphore (the System V limit `SEMVMX`).
 */
#define QIPC_SYSTEM_SEMAPHORE_MAX_VALUE 32767

#define QIPC_TYPE_SYSTEM_SEMAPHORE (qipc_system_semaphore_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (QipcSystemSemaphore, qipc_system_semaphore, QIPC, SYSTEM_SEMAPHORE, GObject)

QIPC_AVAILABLE_IN_1_0
GQuark               qipc_system_semaphore_error_quark  (void);

QIPC_AVAILABLE_IN_1_0
QipcSystemSemaphore *qipc_system_semaphore_new          (const char                 *key,
                                                         guint                       initial_value,
                                                         QipcSystemSemaphoreAccess   access,
                                                         GError                    **error);
QIPC_AVAILABLE_IN_1_0
QipcSystemSemaphore *qipc_system_semaphore_new_full     (const char                 *key,
                                                         guint                       initial_value,
                                                         QipcSystemSemaphoreAccess   access,
                                                         guint                       permissions,
                                                         GError                    **error);
QIPC_AVAILABLE_IN_1_0
const char          *qipc_system_semaphore_get_key        (QipcSystemSemaphore  *self);
QIPC_AVAILABLE_IN_1_0
const char          *qipc_system_semaphore_get_native_key (QipcSystemSemaphore  *self);
QIPC_AVAILABLE_IN_1_0
int                  qipc_system_semaphore_get_value      (QipcSystemSemaphore  *self,
                                                           GError              **error);
QIPC_AVAILABLE_IN_1_0
gboolean             qipc_system_semaphore_acquire        (QipcSystemSemaphore  *self,
                                                           GError              **error);
QIPC_AVAILABLE_IN_1_0
gboolean             qipc_system_semaphore_try_acquire    (QipcSystemSemaphore  *self,
                                                           int                   timeout_ms,
                                                           GError              **error);
QIPC_AVAILABLE_IN_1_0
gboolean             qipc_system_semaphore_release        (QipcSystemSemaphore  *self,
                                                           guint                 n,
                                                           GError              **error);
QIPC_AVAILABLE_IN_1_0
void                 qipc_system_semaphore_acquire_async  (QipcSystemSemaphore  *self,
                                                           GCancellable         *cancellable,
                                                           GAsyncReadyCallback   callback,
                                                           gpointer              user_data);
QIPC_AVAILABLE_IN_1_0
gboolean             qipc_system_semaphore_acquire_finish (QipcSystemSemaphore  *self,
                                                           GAsyncResult         *result,
                                                           GError              **error);
QIPC_AVAILABLE_IN_1_0
gboolean             qipc_system_semaphore_remove         (QipcSystemSemaphore  *self,
                                                           GError              **error);

G_END_DECLS
