// mirrorTypes.js: the GObject class the GJS mirror tests export in one
// process and mirror in another (both import it).
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GObject from 'gi://GObject';

// A counter written in JavaScript: setting "value" emits
// "value-changed"; the action "increment" returns the new value.
export const JsCounter = GObject.registerClass({
    GTypeName: 'QipcJsTestCounter',
    Properties: {
        'value': GObject.ParamSpec.int('value', null, null, GObject.ParamFlags.READWRITE,
            -2147483648, 2147483647, 0),
        'label': GObject.ParamSpec.string('label', null, null, GObject.ParamFlags.READWRITE, 'start'),
    },
    Signals: {
        'value-changed': {param_types: [GObject.TYPE_INT, GObject.TYPE_STRING]},
        'increment': {
            flags: GObject.SignalFlags.RUN_LAST | GObject.SignalFlags.ACTION,
            param_types: [GObject.TYPE_INT],
            return_type: GObject.TYPE_INT,
        },
    },
}, class JsCounter extends GObject.Object {
    get value() {
        return this._value ?? 0;
    }

    set value(value) {
        if (value === this.value)
            return;
        this._value = value;
        this.notify('value');
        this.emit('value-changed', value, this.label);
    }

    get label() {
        return this._label ?? 'start';
    }

    set label(label) {
        if (label === this.label)
            return;
        this._label = label;
        this.notify('label');
    }

    on_increment(by) {
        this.value += by;
        return this.value;
    }
});
