/* qipc-shared-memory-private.h: what tests reach inside QipcSharedMemory
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qipc-shared-memory.h"

G_BEGIN_DECLS

/* Called by qipc_shared_memory_detach() after it decided whether it was
 * the last user (and unlinked the segment if so), before it closes the
 * file and so lets go of whatever lock it still holds on it. A test
 * makes another process act in that window (tests/test-shared-memory-races.c). */
typedef void (*QipcSharedMemoryDetachHook) (QipcSharedMemory *self,
                                            gpointer          user_data);

/* Not thread-safe: set it while no other thread detaches. NULL unsets. */
void _qipc_shared_memory_set_detach_hook (QipcSharedMemoryDetachHook hook,
                                          gpointer                   user_data);

G_END_DECLS
