// qipc.js: qipc for GJS, an ES module on top of gi://Qipc
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Importing this module makes every _async method of the Qipc classes
// return a Promise when called without a callback, and gives helpers that
// take plain JS values where qipc wants a GVariant and give plain values
// back:
//
//     import Qipc from 'gi://Qipc?version=1.0';
//     import * as QipcUtil from 'file:///usr/share/gjs-1.0/qipc/qipc.js';
//
//     await sem.acquire_async(null);
//     await Qipc.Channel.flush_async(bus, null);
//     QipcUtil.send('org.example/app', 'set', {volume: 7, name: 'n'}, {bus});
//     QipcUtil.connectReceived(channel, 'set', (message, value) => print(value.volume));
//
// The module is installed as $datadir/gjs-1.0/qipc/qipc.js (its file URL is
// what an import names: GJS has no search path for ES modules); a program
// shipped with its own copy imports it by a relative path.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Qipc from 'gi://Qipc?version=1.0';

// Promisifies every FOO_async of OBJECT (a prototype, or a class for its
// static functions) that has a FOO_finish beside it. Gio._promisify leaves
// a function it has wrapped already alone, so a program that promisified
// some by hand keeps working.
function promisifyAll(object) {
    for (const name of Object.getOwnPropertyNames(object)) {
        if (!name.endsWith('_async'))
            continue;
        const finish = `${name.slice(0, -'_async'.length)}_finish`;
        if (typeof object[name] === 'function' && typeof object[finish] === 'function')
            Gio._promisify(object, name, finish);
    }
}

// The promisified functions, as 'Class.prototype.name' or 'Class.name'.
export const promisified = [];

// Walks the namespace, so that classes added to qipc later are covered
// without touching this file.
for (const name of Object.getOwnPropertyNames(Qipc)) {
    const klass = Qipc[name];
    if (typeof klass !== 'function' || klass.$gtype === undefined || !klass.prototype)
        continue;
    for (const [object, label] of [[klass.prototype, `${name}.prototype`], [klass, name]]) {
        const before = new Set(Object.getOwnPropertyNames(object).filter(n => n.startsWith('_original_')));
        promisifyAll(object);
        for (const n of Object.getOwnPropertyNames(object)) {
            if (n.startsWith('_original_') && !before.has(n))
                promisified.push(`${label}.${n.slice('_original_'.length)}`);
        }
    }
}

function describe(value) {
    if (value === null)
        return 'null';
    if (typeof value === 'function')
        return `function ${value.name || '(anonymous)'}`;
    if (typeof value === 'symbol')
        return value.toString();
    if (typeof value === 'object') {
        const constructor = Object.getPrototypeOf(value)?.constructor?.name;
        return `object ${constructor ?? '(no prototype)'}`;
    }
    return `${typeof value} ${String(value)}`;
}

function refuse(value, path, why = '') {
    return new TypeError(`qipc: cannot convert ${describe(value)} at ${path} to a GVariant` +
        `${why ? `: ${why}` : ''}`);
}

function isPlainObject(value) {
    if (typeof value !== 'object' || value === null)
        return false;
    const proto = Object.getPrototypeOf(value);
    return proto === Object.prototype || proto === null;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

// The GVariant that VALUE becomes without an explicit type.
function infer(value, path) {
    if (value instanceof GLib.Variant)
        return value;
    switch (typeof value) {
    case 'boolean':
        return new GLib.Variant('b', value);
    case 'number':
        return new GLib.Variant(Number.isInteger(value) ? 'x' : 'd', value);
    case 'bigint':
        if (value >= INT64_MIN && value <= INT64_MAX)
            return new GLib.Variant('x', value);
        if (value >= 0n && value <= UINT64_MAX)
            return new GLib.Variant('t', value);
        throw refuse(value, path, 'out of the 64-bit range');
    case 'string':
        return new GLib.Variant('s', value);
    }
    if (value instanceof Uint8Array)
        return new GLib.Variant('ay', value);
    if (value instanceof GLib.Bytes)
        return new GLib.Variant('ay', value.toArray());
    if (Array.isArray(value))
        return inferArray(value, path);
    if (value instanceof Map || isPlainObject(value)) {
        const entries = value instanceof Map ? [...value] : Object.entries(value);
        const dict = {};
        for (const [key, item] of entries) {
            if (typeof key !== 'string')
                throw refuse(key, `${path} (a key)`, 'keys must be strings');
            if (item === undefined)
                continue;
            // The packer boxes each value in a 'v' itself.
            dict[key] = infer(item, `${path}.${key}`);
        }
        return new GLib.Variant('a{sv}', dict);
    }
    throw refuse(value, path);
}

// An array whose elements all convert to one type is an array of that
// type; integers mixed with other numbers are all doubles; anything else
// (mixed types, or no elements) is an array of variants, 'av'.
function inferArray(array, path) {
    const numbers = array.length > 0 && array.every(item => typeof item === 'number');
    if (numbers && !array.every(Number.isInteger))
        return new GLib.Variant('ad', array);
    const children = array.map((item, i) => infer(item, `${path}[${i}]`));
    const types = new Set(children.map(child => child.get_type_string()));
    if (types.size === 1)
        return GLib.Variant.new_array(new GLib.VariantType(types.values().next().value), children);
    return GLib.Variant.new_array(new GLib.VariantType('v'),
        children.map(child => GLib.Variant.new_variant(child)));
}

// The index just past the one complete type that starts at I in SIGNATURE.
function typeEnd(signature, i) {
    switch (signature[i]) {
    case 'a':
    case 'm':
        return typeEnd(signature, i + 1);
    case '(':
    case '{': {
        const close = signature[i] === '(' ? ')' : '}';
        let j = i + 1;
        while (signature[j] !== close)
            j = typeEnd(signature, j);
        return j + 1;
    }
    default:
        return i + 1;
    }
}

// The member types of the tuple or dict entry type SIGNATURE.
function members(signature) {
    const result = [];
    for (let i = 1; i < signature.length - 1;) {
        const end = typeEnd(signature, i);
        result.push(signature.slice(i, end));
        i = end;
    }
    return result;
}

// Converts VALUE for the valid type string TYPE: GJS's own packing, except
// that wherever TYPE has a 'v', a plain value is converted by infer().
function prepare(value, type, path) {
    if (value instanceof GLib.Variant || !type.includes('v'))
        return value;
    if (type === 'v')
        return infer(value, path);
    if (type[0] === 'm')
        return value === null || value === undefined ? null : prepare(value, type.slice(1), path);
    if (type[0] === '(') {
        if (!Array.isArray(value))
            throw refuse(value, path, `a tuple ${type} wants an array`);
        return members(type).map((member, i) => prepare(value[i], member, `${path}[${i}]`));
    }
    if (type.startsWith('a{')) {
        const [, valueType] = members(type.slice(1));
        if (value instanceof Map || isPlainObject(value)) {
            const entries = value instanceof Map ? [...value] : Object.entries(value);
            return Object.fromEntries(entries.map(([key, item]) =>
                [key, prepare(item, valueType, `${path}.${key}`)]));
        }
    } else if (type[0] === 'a' && Array.isArray(value)) {
        return value.map((item, i) => prepare(item, type.slice(1), `${path}[${i}]`));
    }
    return value;
}

/**
 * toVariant:
 * @value: a JS value, or a GLib.Variant (returned as it is)
 * @type: (optional): a GVariant type string
 *
 * With @type, `new GLib.Variant(type, value)`, where any 'v' in the type
 * takes a plain value too. Without: boolean 'b', integer number 'x',
 * other number 'd', BigInt 'x' (or 't' past int64), string 's',
 * Uint8Array or GLib.Bytes 'ay', array of one type an array of it (numbers
 * with any fraction 'ad'; empty or mixed 'av'), plain object or Map with
 * string keys 'a{sv}' (undefined members left out), recursively. null and
 * undefined give null: a message without data.
 *
 * Throws a TypeError naming the value (and where it sits in @value) for
 * anything else: null inside a container, functions, symbols, class
 * instances, or a value that does not fit @type.
 */
export function toVariant(value, type = undefined) {
    if (value === null || value === undefined)
        return null;
    if (type === undefined || type === null)
        return infer(value, 'value');
    if (value instanceof GLib.Variant) {
        if (value.get_type_string() === type)
            return value;
        if (type === 'v')
            return GLib.Variant.new_variant(value);
        throw refuse(value, 'value', `a ${value.get_type_string()} variant where ${type} is wanted`);
    }
    if (!GLib.VariantType.string_is_valid(type))
        throw new TypeError(`qipc: ${JSON.stringify(type)} is no GVariant type`);
    const prepared = prepare(value, type, 'value');
    try {
        return new GLib.Variant(type, prepared);
    } catch (e) {
        throw refuse(value, 'value', `as ${type}: ${e.message}`);
    }
}

/**
 * send:
 * @channel: the channel name to send to, or a Qipc.Channel (its name and bus)
 * @message: the message name
 * @value: the data, converted by toVariant()
 * @options: (optional): `type`, a GVariant type string for the data;
 *   `bus`, the Qipc.Bus to send on (the default bus if not given)
 *
 * Qipc.Channel.send_for_bus() with plain JS data. Returns true, or throws
 * the library's GLib.Error (or a TypeError for data that does not convert).
 */
export function send(channel, message, value, {type, bus} = {}) {
    if (channel instanceof Qipc.Channel) {
        bus ??= channel.bus;
        channel = channel.name;
    }
    const data = toVariant(value, type);
    if (bus)
        return Qipc.Channel.send_for_bus(bus, channel, message, data);
    return Qipc.Channel.send(channel, message, data);
}

/**
 * unpack:
 * @data: a GLib.Variant or null, as ::received gives it
 *
 * The data as plain JS values, null for a message without data. It uses
 * recursiveUnpack(), so variants inside containers ('v', as in the 'a{sv}'
 * that send() makes of an object) are unpacked too and a plain value sent
 * with send() comes back equal (an 'ay' comes back as a Uint8Array).
 */
export function unpack(data) {
    return data === null || data === undefined ? null : data.recursiveUnpack();
}

/**
 * deepUnpack:
 * @data: a GLib.Variant or null
 *
 * data.deepUnpack(), or null: containers unpacked, 'v' values left as
 * GLib.Variant (for code that looks at the types of the values it gets).
 */
export function deepUnpack(data) {
    return data === null || data === undefined ? null : data.deepUnpack();
}

/**
 * connectReceived:
 * @channel: a Qipc.Channel
 * @detail: (optional): a message name, to receive only that message
 * @callback: called as callback(message, value, channel), the value unpacked
 *   by unpack()
 *
 * Connects to ::received (or ::received::detail). Returns the handler id,
 * for channel.disconnect().
 */
export function connectReceived(channel, detail, callback = undefined) {
    if (callback === undefined && typeof detail === 'function') {
        callback = detail;
        detail = null;
    }
    const signal = detail ? `received::${detail}` : 'received';
    return channel.connect(signal, (self, message, data) => callback(message, unpack(data), self));
}
