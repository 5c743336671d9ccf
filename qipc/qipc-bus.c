/* qipc-bus.c: a connection to a channel transport
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-bus.h"

/**
 * qipc_bus_error_quark:
 *
 * The error domain of [class@Bus], [class@Channel] and [class@Broker].
 *
 * Returns: the quark of %QIPC_BUS_ERROR
 */
G_DEFINE_QUARK (qipc-bus-error-quark, qipc_bus_error)
