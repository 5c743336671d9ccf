/* qipc-shm-header-private.h: the layout of a shared memory segment file
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Shared by the library and the `qipc` tool, which reads headers without
 * attaching (`qipc shm list`).
 *
 * A segment file is a header page followed by the data. The header page
 * holds QipcShmHeader at offset 0 and, since the `qipc` tool, a
 * QipcShmKeyRecord at QIPC_SHM_KEY_RECORD_OFFSET with the key the segment
 * was created with. The record has its own magic: segments made before it
 * existed have zeroes there (the file is created with ftruncate), and
 * libraries that predate it ignore it, so HEADER_VERSION stays 1.
 */
#pragma once

#include <glib.h>
#include <pthread.h>

G_BEGIN_DECLS

#define QIPC_SHM_HEADER_MAGIC G_GUINT64_CONSTANT (0x314d485343504951) /* "QIPCSHM1" */
#define QIPC_SHM_HEADER_VERSION 1

typedef struct
{
  guint64 magic;
  guint32 version;
  guint32 data_offset;
  guint64 size;
  guint64 generation;
  pthread_mutex_t mutex;
} QipcShmHeader;

#define QIPC_SHM_KEY_MAGIC G_GUINT64_CONSTANT (0x3159454b43504951) /* "QIPCKEY1" */
/* Well past QipcShmHeader, so that it can grow. */
#define QIPC_SHM_KEY_RECORD_OFFSET 1024

typedef struct
{
  guint64 magic;
  guint32 length;    /* bytes of key that follow, without a NUL */
  guint32 reserved;  /* 0 */
} QipcShmKeyRecord;

G_STATIC_ASSERT (sizeof (QipcShmHeader) <= QIPC_SHM_KEY_RECORD_OFFSET);

G_END_DECLS
