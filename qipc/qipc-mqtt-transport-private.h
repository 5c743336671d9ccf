/* qipc-mqtt-transport-private.h: channels over MQTT (libmosquitto)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qipc-transport-private.h"

G_BEGIN_DECLS

#define QIPC_TYPE_MQTT_TRANSPORT (_qipc_mqtt_transport_get_type ())
G_DECLARE_FINAL_TYPE (QipcMqttTransport, _qipc_mqtt_transport, QIPC, MQTT_TRANSPORT, QipcTransport)

/* For an mqtt:// or mqtts:// address (syntax in the QipcBus class doc);
 * %QIPC_BUS_ERROR_INVALID_ADDRESS naming what is wrong. Not connected
 * until open(). */
QipcTransport *_qipc_mqtt_transport_new (const char  *address,
                                         GError     **error);

G_END_DECLS
