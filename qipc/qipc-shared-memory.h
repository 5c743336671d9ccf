/* qipc-shared-memory.h: a named memory segment shared between processes
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
 * QipcSharedMemoryAccess:
 * @QIPC_SHARED_MEMORY_ACCESS_READ_ONLY: the segment is mapped read-only;
 *   writing through [method@SharedMemory.get_data] faults, and
 *   [method@SharedMemory.write] fails
 * @QIPC_SHARED_MEMORY_ACCESS_READ_WRITE: the segment is mapped for reading
 *   and writing
 *
 * How a segment is mapped into this process.
 */
typedef enum /*< prefix=QIPC_SHARED_MEMORY_ACCESS >*/ {
  QIPC_SHARED_MEMORY_ACCESS_READ_ONLY,
  QIPC_SHARED_MEMORY_ACCESS_READ_WRITE,
} QipcSharedMemoryAccess;

/**
 * QipcSharedMemoryError:
 * @QIPC_SHARED_MEMORY_ERROR_PERMISSION_DENIED: the caller may not use the
 *   segment, or tried to write through a read-only attachment
 * @QIPC_SHARED_MEMORY_ERROR_INVALID_SIZE: a size of 0, a size past
 *   %QIPC_SHARED_MEMORY_MAX_SIZE, or an offset and length outside the segment
 * @QIPC_SHARED_MEMORY_ERROR_KEY_ERROR: the key is empty or not UTF-8
 * @QIPC_SHARED_MEMORY_ERROR_ALREADY_EXISTS: a live segment with this key exists
 * @QIPC_SHARED_MEMORY_ERROR_NOT_FOUND: no live segment with this key exists
 * @QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR: the lock cannot be taken or released
 *   (not attached, not held by this thread, or already held by it)
 * @QIPC_SHARED_MEMORY_ERROR_OUT_OF_RESOURCES: the system has no memory or
 *   descriptors left for the segment
 * @QIPC_SHARED_MEMORY_ERROR_FAILED: any other failure, such as a segment that
 *   qipc did not make or that is damaged, or a create or attach on an object
 *   that is already attached
 *
 * Errors in the %QIPC_SHARED_MEMORY_ERROR domain. Every message names the key.
 */
typedef enum {
  QIPC_SHARED_MEMORY_ERROR_PERMISSION_DENIED,
  QIPC_SHARED_MEMORY_ERROR_INVALID_SIZE,
  QIPC_SHARED_MEMORY_ERROR_KEY_ERROR,
  QIPC_SHARED_MEMORY_ERROR_ALREADY_EXISTS,
  QIPC_SHARED_MEMORY_ERROR_NOT_FOUND,
  QIPC_SHARED_MEMORY_ERROR_LOCK_ERROR,
  QIPC_SHARED_MEMORY_ERROR_OUT_OF_RESOURCES,
  QIPC_SHARED_MEMORY_ERROR_FAILED,
} QipcSharedMemoryError;

/**
 * QIPC_SHARED_MEMORY_ERROR:
 *
 * The error domain of [class@SharedMemory].
 */
#define QIPC_SHARED_MEMORY_ERROR (qipc_shared_memory_error_quark ())

/**
 * QIPC_SHARED_MEMORY_MAX_SIZE:
 *
 * The largest segment [method@SharedMemory.create] accepts: 1 TiB.
 */
#define QIPC_SHARED_MEMORY_MAX_SIZE G_GUINT64_CONSTANT (1099511627776)

#define QIPC_TYPE_SHARED_MEMORY (qipc_shared_memory_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (QipcSharedMemory, qipc_shared_memory, QIPC, SHARED_MEMORY, GObject)

QIPC_AVAILABLE_IN_1_0
GQuark            qipc_shared_memory_error_quark     (void);

QIPC_AVAILABLE_IN_1_0
QipcSharedMemory *qipc_shared_memory_new             (const char              *key);
QIPC_AVAILABLE_IN_1_0
const char       *qipc_shared_memory_get_key         (QipcSharedMemory        *self);
QIPC_AVAILABLE_IN_1_0
const char       *qipc_shared_memory_get_native_key  (QipcSharedMemory        *self);
QIPC_AVAILABLE_IN_1_0
guint             qipc_shared_memory_get_permissions (QipcSharedMemory        *self);
QIPC_AVAILABLE_IN_1_0
void              qipc_shared_memory_set_permissions (QipcSharedMemory        *self,
                                                      guint                    permissions);
QIPC_AVAILABLE_IN_1_0
gboolean          qipc_shared_memory_create          (QipcSharedMemory        *self,
                                                      gsize                    size,
                                                      QipcSharedMemoryAccess   access,
                                                      GError                 **error);
QIPC_AVAILABLE_IN_1_0
gboolean          qipc_shared_memory_attach          (QipcSharedMemory        *self,
                                                      QipcSharedMemoryAccess   access,
                                                      GError                 **error);
QIPC_AVAILABLE_IN_1_0
gboolean          qipc_shared_memory_detach          (QipcSharedMemory        *self);
QIPC_AVAILABLE_IN_1_0
gboolean          qipc_shared_memory_is_attached     (QipcSharedMemory        *self);
QIPC_AVAILABLE_IN_1_0
QipcSharedMemoryAccess qipc_shared_memory_get_access (QipcSharedMemory        *self);
QIPC_AVAILABLE_IN_1_0
gsize             qipc_shared_memory_get_size        (QipcSharedMemory        *self);
QIPC_AVAILABLE_IN_1_0
gpointer          qipc_shared_memory_get_data        (QipcSharedMemory        *self);
QIPC_AVAILABLE_IN_1_0
GBytes           *qipc_shared_memory_read            (QipcSharedMemory        *self,
                                                      gsize                    offset,
                                                      gsize                    length,
                                                      GError                 **error);
QIPC_AVAILABLE_IN_1_0
gboolean          qipc_shared_memory_write           (QipcSharedMemory        *self,
                                                      gsize                    offset,
                                                      GBytes                  *bytes,
                                                      GError                 **error);
QIPC_AVAILABLE_IN_1_0
gboolean          qipc_shared_memory_prefault        (QipcSharedMemory        *self,
                                                      GError                 **error);
QIPC_AVAILABLE_IN_1_0
gboolean          qipc_shared_memory_lock            (QipcSharedMemory        *self,
                                                      GError                 **error);
QIPC_AVAILABLE_IN_1_0
gboolean          qipc_shared_memory_try_lock        (QipcSharedMemory        *self,
                                                      int                      timeout_ms,
                                                      GError                 **error);
QIPC_AVAILABLE_IN_1_0
gboolean          qipc_shared_memory_unlock          (QipcSharedMemory        *self,
                                                      GError                 **error);
QIPC_AVAILABLE_IN_1_0
void              qipc_shared_memory_lock_async      (QipcSharedMemory        *self,
                                                      GCancellable            *cancellable,
                                                      GAsyncReadyCallback      callback,
                                                      gpointer                 user_data);
QIPC_AVAILABLE_IN_1_0
gboolean          qipc_shared_memory_lock_finish     (QipcSharedMemory        *self,
                                                      GAsyncResult            *result,
                                                      GError                 **error);
QIPC_AVAILABLE_IN_1_0
gboolean          qipc_shared_memory_notify_changed  (QipcSharedMemory        *self,
                                                      GError                 **error);

G_END_DECLS
