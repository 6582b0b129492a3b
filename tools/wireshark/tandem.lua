-- Wireshark dissector for the tandem RPC protocol, version 1 (SPEC.md in the tandem repository).
--
-- Decodes every frame type of SPEC.md §4 with its fields named as there, over TCP (and any
-- byte stream Wireshark hands it: a frame may span segments, a segment may hold many frames),
-- and over UDP datagram mode (§14: one or more whole frames per datagram). Fragmented messages
-- (§9: a first frame with MORE, then CONTINUATIONs) are reassembled and shown on their last
-- frame. Statuses and frame types are shown by name. Decode errors of §3.3 are reported as
-- expert infos (group Malformed) with the error's name from the spec.
--
-- Installation: copy this file into ~/.local/lib/wireshark/plugins/ (or run
-- `tshark -X lua_script:tandem.lua …`). See README.md next to this file.

local tandem = Proto("tandem", "tandem RPC protocol")

----------------------------------------------------------------------------------------------
-- Registries (SPEC.md §15)
----------------------------------------------------------------------------------------------

local FRAME_TYPES = {
    [0x01] = "HELLO", [0x02] = "CLOSE", [0x03] = "GOAWAY", [0x04] = "PING", [0x05] = "PONG",
    [0x06] = "ACK", [0x10] = "CALL", [0x11] = "NOTIFY", [0x12] = "SIGNAL", [0x13] = "RESPONSE",
    [0x14] = "CANCEL", [0x15] = "SIGNAL_KEYED", [0x18] = "STREAM_OPEN", [0x19] = "STREAM_DATA",
    [0x1A] = "STREAM_FIN", [0x1B] = "STREAM_RESET", [0x1C] = "STREAM_CREDIT",
    [0x1D] = "CONN_CREDIT", [0x1E] = "STREAM_RESUME", [0x20] = "CONTINUATION",
}

-- The value_string of the Type field: the assigned names, and "extension" for 0x80..=0xFF.
local TYPE_VALUES = {}
for k, v in pairs(FRAME_TYPES) do TYPE_VALUES[k] = v end
for t = 0x80, 0xFF do TYPE_VALUES[t] = "extension" end

local STATUSES = {
    [0] = "OK", [1] = "ACCEPTED", [2] = "FAILED", [3] = "UNKNOWN_MODULE", [4] = "UNKNOWN_METHOD",
    [5] = "BAD_REQUEST", [6] = "BAD_PAYLOAD", [7] = "ENCODE_FAILED", [8] = "CANCELLED",
    [9] = "DEADLINE_EXCEEDED", [10] = "RESOURCE_EXHAUSTED", [11] = "TOO_LARGE",
    [12] = "UNAVAILABLE", [13] = "INVALID_ARGUMENT", [14] = "NOT_FOUND", [15] = "ALREADY_EXISTS",
    [16] = "PERMISSION_DENIED", [17] = "UNAUTHENTICATED", [18] = "FAILED_PRECONDITION",
    [19] = "ABORTED", [20] = "OUT_OF_RANGE", [21] = "UNIMPLEMENTED", [22] = "INTERNAL",
    [23] = "DATA_LOSS", [24] = "UNKNOWN", [25] = "REPLY_EVICTED", [26] = "SCHEMA_MISMATCH",
    [27] = "APPLICATION_ERROR",
    [64] = "PROTOCOL_ERROR", [65] = "FRAME_ENCODING_ERROR", [66] = "FRAME_TOO_LARGE",
    [67] = "FLOW_CONTROL_ERROR", [68] = "LIMIT_EXCEEDED", [69] = "INCOMPATIBLE_VERSION",
    [70] = "IDLE_TIMEOUT", [71] = "HANDSHAKE_TIMEOUT", [72] = "ENHANCE_YOUR_CALM",
    [73] = "SESSION_EXPIRED",
}

local PARAMS = {
    [1] = "max_frame_size", [2] = "max_message_size", [3] = "max_concurrent_calls",
    [4] = "max_concurrent_streams", [5] = "stream_credit_msgs", [6] = "stream_credit_bytes",
    [7] = "conn_credit_bytes", [8] = "keepalive_interval_ms", [9] = "idle_timeout_ms",
    [10] = "max_datagram_size", [11] = "reply_cache_entries", [12] = "reply_cache_bytes",
    [13] = "features",
}

local INTROSPECTION_MODULE = 4294967040 -- 0xFFFFFF00, §15.8

local MORE, FIN, KEY = 0x01, 0x02, 0x04
local MIN_FRAME_SIZE = 4096 -- §3.4: the limit before the peer's HELLO
local DEFAULT_MAX_FRAME_SIZE = 65536

-- Which flag bits each message frame type allows (§2.5); nil: the type has no flags byte.
local ALLOWED_FLAGS = {
    [0x10] = MORE + KEY, [0x11] = MORE + KEY, [0x13] = MORE, [0x18] = MORE + FIN + KEY,
    [0x19] = MORE, [0x20] = MORE,
}

-- Bitwise AND of two small non-negative integers, without the bit32 library (absent from the
-- Lua 5.4 of newer Wireshark builds) or Lua 5.3 operators (absent from Lua 5.2).
local function band(a, b)
    local r, bitv = 0, 1
    while a > 0 and b > 0 do
        if a % 2 == 1 and b % 2 == 1 then r = r + bitv end
        a, b, bitv = math.floor(a / 2), math.floor(b / 2), bitv * 2
    end
    return r
end

-- Encoded length of a varint from the two top bits of its first byte (§2.1).
local VARINT_LEN = { 1, 2, 4, 8 }

-- The human-readable name of a status value (§8.1, ranges of §15.5).
local function status_name(v)
    local n = STATUSES[v]
    if n then return n end
    if v >= 65536 then return "application-defined (" .. v .. ")" end
    if v >= 64 and v <= 127 then return "reserved connection status (" .. v .. ")" end
    return "reserved (" .. v .. ")"
end

local function type_name(t)
    local n = FRAME_TYPES[t]
    if n then return n end
    if t >= 0x80 then return string.format("extension 0x%02x", t) end
    return string.format("unassigned 0x%02x", t)
end

----------------------------------------------------------------------------------------------
-- Fields
----------------------------------------------------------------------------------------------

local F = {
    type = ProtoField.uint8("tandem.type", "Type", base.HEX, TYPE_VALUES),
    type_name = ProtoField.string("tandem.type_name", "Type name"),
    length = ProtoField.uint64("tandem.length", "Length", base.DEC),
    flags = ProtoField.uint8("tandem.flags", "Flags", base.HEX),
    flag_more = ProtoField.bool("tandem.flags.more", "MORE", 8, nil, MORE),
    flag_fin = ProtoField.bool("tandem.flags.fin", "FIN", 8, nil, FIN),
    flag_key = ProtoField.bool("tandem.flags.key", "KEY", 8, nil, KEY),
    flag_reserved = ProtoField.uint8("tandem.flags.reserved", "Reserved", base.HEX, nil, 0xF8),
    id = ProtoField.uint64("tandem.id", "id", base.DEC),
    module = ProtoField.uint32("tandem.module", "module", base.DEC),
    method = ProtoField.uint32("tandem.method", "method", base.DEC),
    key = ProtoField.bytes("tandem.key", "key (schema key)"),
    budget_us = ProtoField.uint64("tandem.budget_us", "budget_us", base.DEC),
    total_len = ProtoField.uint64("tandem.total_len", "total_len", base.DEC),
    payload = ProtoField.bytes("tandem.payload", "payload"),
    status = ProtoField.uint32("tandem.status", "status", base.DEC, STATUSES),
    status_name = ProtoField.string("tandem.status_name", "status name"),
    message = ProtoField.string("tandem.message", "message"),
    bound = ProtoField.uint64("tandem.bound", "bound", base.DEC),
    data = ProtoField.bytes("tandem.data", "data"),
    msgs = ProtoField.uint32("tandem.msgs", "msgs", base.DEC),
    bytes = ProtoField.uint32("tandem.bytes", "bytes", base.DEC),
    received_items = ProtoField.uint64("tandem.received_items", "received_items", base.DEC),
    ext_body = ProtoField.bytes("tandem.extension_body", "extension body"),
    -- HELLO (§4.1)
    magic = ProtoField.bytes("tandem.hello.magic", "magic"),
    min_version = ProtoField.uint32("tandem.hello.min_version", "min_version", base.DEC),
    max_version = ProtoField.uint32("tandem.hello.max_version", "max_version", base.DEC),
    hello_flags = ProtoField.uint64("tandem.hello.flags", "flags", base.HEX),
    hello_resume = ProtoField.bool("tandem.hello.flags.resume", "RESUME"),
    name = ProtoField.string("tandem.hello.name", "name"),
    auth = ProtoField.bytes("tandem.hello.auth", "auth"),
    session = ProtoField.bytes("tandem.hello.session", "session"),
    param_count = ProtoField.uint64("tandem.hello.param_count", "param_count", base.DEC),
    param = ProtoField.string("tandem.hello.param", "parameter"),
    param_id = ProtoField.uint64("tandem.hello.param.id", "param_id", base.DEC),
    param_value = ProtoField.uint64("tandem.hello.param.value", "value", base.DEC),
    -- ACK (§4.6)
    ack_count = ProtoField.uint64("tandem.ack.count", "count", base.DEC),
    ack_range = ProtoField.string("tandem.ack.range", "range"),
    ack_first = ProtoField.uint64("tandem.ack.first_id", "first_id", base.DEC),
    ack_n = ProtoField.uint64("tandem.ack.n", "n", base.DEC),
    -- Status body of a non-OK RESPONSE with error_details negotiated (§8.7)
    body_message = ProtoField.string("tandem.status_body.message", "status body message"),
    body_details = ProtoField.bytes("tandem.status_body.details", "status body details"),
    -- Reassembly of fragmented messages (§9)
    reassembled = ProtoField.bytes("tandem.reassembled", "reassembled message"),
    reassembled_len = ProtoField.uint64("tandem.reassembled.length", "reassembled length", base.DEC),
    reassembled_first = ProtoField.framenum("tandem.reassembled.first_in", "first frame in"),
    fragment_of = ProtoField.framenum("tandem.fragment_of", "message starts in frame"),
}
local field_list = {}
for _, f in pairs(F) do field_list[#field_list + 1] = f end
tandem.fields = field_list

local E = {
    malformed = ProtoExpert.new("tandem.malformed", "Malformed tandem frame",
        expert.group.MALFORMED, expert.severity.ERROR),
    protocol = ProtoExpert.new("tandem.protocol_violation", "tandem protocol rule violated",
        expert.group.PROTOCOL, expert.severity.WARN),
    error_status = ProtoExpert.new("tandem.error_status", "Non-OK status",
        expert.group.RESPONSE_CODE, expert.severity.NOTE),
    reassembled = ProtoExpert.new("tandem.reassembled.note", "Fragmented message reassembled",
        expert.group.REASSEMBLE, expert.severity.CHAT),
    dropped = ProtoExpert.new("tandem.datagram_dropped",
        "The receiver drops this whole datagram (SPEC.md §14.2)",
        expert.group.MALFORMED, expert.severity.WARN),
}
tandem.experts = { E.malformed, E.protocol, E.error_status, E.reassembled, E.dropped }

----------------------------------------------------------------------------------------------
-- Preferences
----------------------------------------------------------------------------------------------

tandem.prefs.tcp_ports = Pref.range("TCP ports", "", "TCP ports decoded as tandem (besides the heuristic on HELLO)", 65535)
tandem.prefs.udp_ports = Pref.range("UDP ports", "", "UDP ports decoded as tandem datagram mode (besides the heuristic on HELLO)", 65535)
tandem.prefs.heuristic = Pref.bool("Detect by HELLO", true, "Recognise a connection by its first frame: a HELLO with the magic TNDM")
tandem.prefs.reassemble = Pref.bool("Reassemble fragmented messages", true, "Reassemble messages sent as a first frame with MORE and CONTINUATIONs (SPEC.md §9)")
tandem.prefs.max_reassembly = Pref.uint("Largest message to reassemble", 16777216, "Bytes; a larger fragmented message is not reassembled")

----------------------------------------------------------------------------------------------
-- Per-capture state (rebuilt on every new file / re-dissection)
----------------------------------------------------------------------------------------------

-- conv[key] = { hellos = { [dir] = {features=, max_frame_size=} }, progress = { [dir] = msg } }
local conv = {}
-- results[frame key] = { done = ByteArray, first_in = n } or { part_of = n }
local results = {}
local info_packet, info_text = -1, nil
-- Stream directions whose framing was lost (a bad Length): dead[dir] = the packet where.
local dead = {}

function tandem.init()
    conv = {}
    results = {}
    info_packet, info_text = -1, nil
    dead = {}
end

local function endpoints(pinfo)
    local a = tostring(pinfo.src) .. ":" .. tostring(pinfo.src_port)
    local b = tostring(pinfo.dst) .. ":" .. tostring(pinfo.dst_port)
    local key = (a < b) and (a .. "|" .. b) or (b .. "|" .. a)
    local state = conv[key]
    if not state then
        state = { hellos = {}, progress = {} }
        conv[key] = state
    end
    return state, a, b
end

local function add_info(pinfo, text)
    -- One packet may hold many frames, and the TCP dissector may call us several times for
    -- one packet, fencing the column between calls: the first frame of a packet's dissection
    -- sets the column, later ones append. A later call of the same dissection finds the column
    -- exactly as we left it (a new dissection of the packet starts with TCP's or UDP's text).
    pinfo.cols.protocol = "tandem"
    local cur = tostring(pinfo.cols.info)
    if info_packet == pinfo.number and cur == info_text then
        pinfo.cols.info:append(", " .. text)
    else
        pinfo.cols.info:set(text)
    end
    info_packet, info_text = pinfo.number, tostring(pinfo.cols.info)
end

----------------------------------------------------------------------------------------------
-- Field readers. Each returns the value (or nil and the SPEC.md §3.3 error name) and advances
-- the cursor `c` = { tvb, off, stop } (stop: end of the body).
----------------------------------------------------------------------------------------------

local TWO_30 = UInt64.new(1073741824)
local TWO_32 = UInt64.new(4294967295)
local MASK62 = UInt64.new(0xFFFFFFFF, 0x3FFFFFFF)

-- Reads a varint at `off` of `tvb` with `stop` the end of the available bytes. Returns
-- value (UInt64), encoded length, or nil and an error name.
local function varint_at(tvb, off, stop)
    if off >= stop then return nil, "Truncated" end
    local b0 = tvb(off, 1):uint()
    local n = VARINT_LEN[math.floor(b0 / 64) + 1]
    if off + n > stop then return nil, "Truncated" end
    local v
    if n == 1 then
        v = UInt64.new(b0)
    elseif n == 2 then
        local x = tvb(off, 2):uint() % 16384
        if x < 64 then return nil, "NonCanonicalVarint" end
        v = UInt64.new(x)
    elseif n == 4 then
        local x = tvb(off, 4):uint() % 1073741824
        if x < 16384 then return nil, "NonCanonicalVarint" end
        v = UInt64.new(x)
    else
        v = tvb(off, 8):uint64():band(MASK62)
        if v < TWO_30 then return nil, "NonCanonicalVarint" end
    end
    return v, n
end

local Cursor = {}
Cursor.__index = Cursor

local function cursor(tvb, off, stop)
    return setmetatable({ tvb = tvb, off = off, stop = stop }, Cursor)
end

function Cursor:left() return self.stop - self.off end

-- A varint; `u32` adds the ValueOutOfRange check of §2.3.
function Cursor:varint(u32)
    local v, n = varint_at(self.tvb, self.off, self.stop)
    if not v then return nil, n end
    if u32 and v > TWO_32 then return nil, "ValueOutOfRange" end
    local range = self.tvb(self.off, n)
    self.off = self.off + n
    return v, range
end

function Cursor:fixed(n)
    if self:left() < n then return nil, "Truncated" end
    local range = self.tvb(self.off, n)
    self.off = self.off + n
    return range
end

-- bytes(≤cap): a varint length then that many bytes. Returns the whole range (length prefix
-- included), the content range (or nil when empty) and the content length.
function Cursor:bytes(cap)
    local start = self.off
    local len, err = self:varint(false)
    if not len then return nil, err end
    if len > UInt64.new(cap) then return nil, "FieldTooLong" end
    local n = len:tonumber()
    if self:left() < n then return nil, "Truncated" end
    local content = nil
    if n > 0 then content = self.tvb(self.off, n) end
    self.off = self.off + n
    return self.tvb(start, self.off - start), content, n
end

-- The rest of the body: the range (nil when empty) and its length.
function Cursor:rest()
    local n = self:left()
    local range = nil
    if n > 0 then range = self.tvb(self.off, n) end
    self.off = self.stop
    return range, n
end

----------------------------------------------------------------------------------------------
-- Frame bodies (SPEC.md §4)
----------------------------------------------------------------------------------------------

-- Raised (as a table) to abort a frame's body on a decode error.
local function fail(err) error({ decode_error = err }, 0) end

local function need(v, err)
    if v == nil then fail(err) end
    return v
end

-- A bytes field; an empty one is shown as "(empty)" (Wireshark would say <MISSING>).
local function add_bytes(tree, field, range, tvb, off, label)
    if range then return tree:add(field, range) end
    local item = tree:add(field, tvb(off, 0))
    item:set_text(label .. ": (empty)")
    return item
end

local function add_u32(tree, field, c)
    local v, r = c:varint(true)
    need(v, r)
    local n = v:tonumber()
    tree:add(field, r, n)
    return n
end

local function add_u64(tree, field, c)
    local v, r = c:varint(false)
    need(v, r)
    tree:add(field, r, v)
    return v
end

local function add_status(tree, c, ctx)
    local v, r = c:varint(true)
    need(v, r)
    local n = v:tonumber()
    local item = tree:add(F.status, r, n)
    local g = tree:add(F.status_name, r, status_name(n))
    g:set_generated()
    if n ~= 0 then
        item:add_proto_expert_info(E.error_status, "status " .. status_name(n))
    end
    ctx.status = n
    return n
end

local function add_flags(tree, c, ty)
    local r = need(c:fixed(1), "Truncated")
    local f = r:uint()
    local item = tree:add(F.flags, r)
    item:add(F.flag_more, r)
    if ty == 0x18 then item:add(F.flag_fin, r) end
    if ty == 0x10 or ty == 0x11 or ty == 0x18 then item:add(F.flag_key, r) end
    local names = {}
    if band(f, MORE) ~= 0 then names[#names + 1] = "MORE" end
    if band(f, FIN) ~= 0 then names[#names + 1] = "FIN" end
    if band(f, KEY) ~= 0 then names[#names + 1] = "KEY" end
    if #names > 0 then item:append_text(" (" .. table.concat(names, ", ") .. ")") end
    if band(f, 0xFF - ALLOWED_FLAGS[ty]) ~= 0 then
        item:add(F.flag_reserved, r)
        fail("InvalidFlags")
    end
    return f
end

local function add_payload(tree, c, ctx)
    local r, n = c:rest()
    add_bytes(tree, F.payload, r, c.tvb, c.off, "payload")
    ctx.payload, ctx.payload_len = r, n
    return r, n
end

local function add_method(tree, c, ctx)
    ctx.module = add_u32(tree, F.module, c)
    ctx.method = add_u32(tree, F.method, c)
    if ctx.module == INTROSPECTION_MODULE then
        tree:append_text(" [introspection service]")
    end
end

-- CALL, NOTIFY, STREAM_OPEN (§4.7, §4.8, §4.12)
local function body_request(tree, c, ty, ctx)
    local f = add_flags(tree, c, ty)
    ctx.flags = f
    ctx.id = add_u64(tree, F.id, c)
    add_method(tree, c, ctx)
    if band(f, KEY) ~= 0 then
        tree:add(F.key, need(c:fixed(8), "Truncated"))
    end
    add_u64(tree, F.budget_us, c)
    if band(f, MORE) ~= 0 then ctx.total_len = add_u64(tree, F.total_len, c) end
    add_payload(tree, c, ctx)
    ctx.info = string.format("%s id=%s %d.%d", type_name(ty), tostring(ctx.id), ctx.module, ctx.method)
end

local BODY = {}

BODY[0x01] = function(tree, c, ctx) -- HELLO §4.1
    local m = need(c:fixed(4), "Truncated")
    tree:add(F.magic, m)
    if m:string() ~= "TNDM" then fail("BadMagic") end
    local minv = add_u32(tree, F.min_version, c)
    local maxv = add_u32(tree, F.max_version, c)
    local fl, fr = c:varint(false)
    need(fl, fr)
    local fi = tree:add(F.hello_flags, fr, fl)
    fi:add(F.hello_resume, fr, fl:band(UInt64.new(1)) ~= UInt64.new(0))
    if fl:band(UInt64.new(0xFFFFFFFE, 0xFFFFFFFF)) ~= UInt64.new(0) then fail("InvalidFlags") end
    local whole, content = c:bytes(255)
    need(whole, content)
    local name = content and content:string(ENC_UTF_8) or ""
    tree:add(F.name, whole, name)
    whole, content = c:bytes(1024)
    need(whole, content)
    add_bytes(tree, F.auth, content, c.tvb, c.off, "auth")
    whole, content = c:bytes(64)
    need(whole, content)
    add_bytes(tree, F.session, content, c.tvb, c.off, "session")
    local count = add_u64(tree, F.param_count, c)
    if count > UInt64.new(64) then fail("FieldTooLong") end
    local hello = { features = 0, max_frame_size = DEFAULT_MAX_FRAME_SIZE }
    local prev = nil
    for _ = 1, count:tonumber() do
        local start = c.off
        local id, ir = c:varint(false)
        need(id, ir)
        local v, vr = c:varint(false)
        need(v, vr)
        local pname = PARAMS[id:tonumber()] or ("unknown parameter " .. tostring(id))
        local pt = tree:add(F.param, c.tvb(start, c.off - start), pname .. " = " .. tostring(v))
        pt:add(F.param_id, ir, id):append_text(" (" .. pname .. ")")
        pt:add(F.param_value, vr, v)
        if prev ~= nil and not (id > prev) then fail("ParamOrder") end
        prev = id
        if id == UInt64.new(13) then hello.features = v:band(UInt64.new(3)):tonumber() end
        if id == UInt64.new(1) then
            hello.max_frame_size = (v <= UInt64.new(16777216)) and v:tonumber() or 16777216
        end
    end
    ctx.hello = hello
    ctx.info = string.format("HELLO %sv%d..%d", name ~= "" and ("name=" .. name .. " ") or "", minv, maxv)
    if fl:band(UInt64.new(1)) ~= UInt64.new(0) then ctx.info = ctx.info .. " RESUME" end
end

BODY[0x02] = function(tree, c, ctx) -- CLOSE §4.2
    local s = add_status(tree, c, ctx)
    local whole, content = c:bytes(1024)
    need(whole, content)
    tree:add(F.message, whole, content and content:string(ENC_UTF_8) or "")
    ctx.info = "CLOSE " .. status_name(s)
end

BODY[0x03] = function(tree, c, ctx) -- GOAWAY §4.3
    local b = add_u64(tree, F.bound, c)
    local s = add_status(tree, c, ctx)
    local whole, content = c:bytes(1024)
    need(whole, content)
    tree:add(F.message, whole, content and content:string(ENC_UTF_8) or "")
    ctx.info = "GOAWAY bound=" .. tostring(b) .. " " .. status_name(s)
end

BODY[0x04] = function(tree, c, ctx) -- PING §4.4
    tree:add(F.data, need(c:fixed(8), "Truncated"))
    ctx.info = "PING"
end

BODY[0x05] = function(tree, c, ctx) -- PONG §4.5
    tree:add(F.data, need(c:fixed(8), "Truncated"))
    ctx.info = "PONG"
end

BODY[0x06] = function(tree, c, ctx) -- ACK §4.6
    local count = add_u64(tree, F.ack_count, c)
    if count > UInt64.new(64) then fail("FieldTooLong") end
    local ids = {}
    for _ = 1, count:tonumber() do
        local start = c.off
        local first, fr = c:varint(false)
        need(first, fr)
        local n, nr = c:varint(false)
        need(n, nr)
        local rt = tree:add(F.ack_range, c.tvb(start, c.off - start),
            tostring(first) .. " ×" .. tostring(n))
        rt:add(F.ack_first, fr, first)
        rt:add(F.ack_n, nr, n)
        if n == UInt64.new(0) then fail("InvalidLength") end
        -- first + 2(n-1) ≤ 2^62-1
        local last = first + (n - 1) * 2
        if last > MASK62 or last < first then fail("InvalidLength") end
        ids[#ids + 1] = tostring(first) .. (n > UInt64.new(1) and ("+" .. tostring(n)) or "")
    end
    ctx.info = "ACK " .. table.concat(ids, " ")
end

BODY[0x10] = function(tree, c, ctx) body_request(tree, c, 0x10, ctx) end
BODY[0x11] = function(tree, c, ctx) body_request(tree, c, 0x11, ctx) end
BODY[0x18] = function(tree, c, ctx) body_request(tree, c, 0x18, ctx) end

BODY[0x12] = function(tree, c, ctx) -- SIGNAL §4.9
    add_method(tree, c, ctx)
    add_payload(tree, c, ctx)
    ctx.info = string.format("SIGNAL %d.%d", ctx.module, ctx.method)
end

BODY[0x15] = function(tree, c, ctx) -- SIGNAL_KEYED §4.21
    add_method(tree, c, ctx)
    tree:add(F.key, need(c:fixed(8), "Truncated"))
    add_payload(tree, c, ctx)
    ctx.info = string.format("SIGNAL_KEYED %d.%d", ctx.module, ctx.method)
end

BODY[0x13] = function(tree, c, ctx) -- RESPONSE §4.10
    local f = add_flags(tree, c, 0x13)
    ctx.flags = f
    ctx.id = add_u64(tree, F.id, c)
    local s = add_status(tree, c, ctx)
    if band(f, MORE) ~= 0 then ctx.total_len = add_u64(tree, F.total_len, c) end
    add_payload(tree, c, ctx)
    ctx.info = "RESPONSE id=" .. tostring(ctx.id) .. " " .. status_name(s)
end

BODY[0x14] = function(tree, c, ctx) -- CANCEL §4.11
    ctx.id = add_u64(tree, F.id, c)
    ctx.info = "CANCEL id=" .. tostring(ctx.id)
end

BODY[0x19] = function(tree, c, ctx) -- STREAM_DATA §4.13
    local f = add_flags(tree, c, 0x19)
    ctx.flags = f
    ctx.id = add_u64(tree, F.id, c)
    if band(f, MORE) ~= 0 then ctx.total_len = add_u64(tree, F.total_len, c) end
    add_payload(tree, c, ctx)
    ctx.info = "STREAM_DATA id=" .. tostring(ctx.id)
end

BODY[0x1A] = function(tree, c, ctx) -- STREAM_FIN §4.14
    ctx.id = add_u64(tree, F.id, c)
    local s = add_status(tree, c, ctx)
    ctx.info = "STREAM_FIN id=" .. tostring(ctx.id) .. " " .. status_name(s)
end

BODY[0x1B] = function(tree, c, ctx) -- STREAM_RESET §4.15
    ctx.id = add_u64(tree, F.id, c)
    local s = add_status(tree, c, ctx)
    ctx.info = "STREAM_RESET id=" .. tostring(ctx.id) .. " " .. status_name(s)
end

BODY[0x1C] = function(tree, c, ctx) -- STREAM_CREDIT §4.16
    ctx.id = add_u64(tree, F.id, c)
    local m = add_u32(tree, F.msgs, c)
    local b = add_u32(tree, F.bytes, c)
    ctx.info = string.format("STREAM_CREDIT id=%s +%d items +%d bytes", tostring(ctx.id), m, b)
end

BODY[0x1D] = function(tree, c, ctx) -- CONN_CREDIT §4.17
    local b = add_u32(tree, F.bytes, c)
    ctx.info = string.format("CONN_CREDIT +%d bytes", b)
end

BODY[0x1E] = function(tree, c, ctx) -- STREAM_RESUME §4.18
    ctx.id = add_u64(tree, F.id, c)
    local n = add_u64(tree, F.received_items, c)
    ctx.info = "STREAM_RESUME id=" .. tostring(ctx.id) .. " received=" .. tostring(n)
end

BODY[0x20] = function(tree, c, ctx) -- CONTINUATION §4.19
    local f = add_flags(tree, c, 0x20)
    ctx.flags = f
    ctx.id = add_u64(tree, F.id, c)
    add_payload(tree, c, ctx)
    ctx.info = "CONTINUATION id=" .. tostring(ctx.id) .. (band(f, MORE) ~= 0 and " MORE" or "")
end

-- Frames whose last field is not `rest` must consume their body exactly (§3.6).
local NO_REST = {
    [0x01] = true, [0x02] = true, [0x03] = true, [0x04] = true, [0x05] = true, [0x06] = true,
    [0x14] = true, [0x1A] = true, [0x1B] = true, [0x1C] = true, [0x1D] = true, [0x1E] = true,
}
local FRAGMENTABLE = { [0x10] = true, [0x11] = true, [0x13] = true, [0x18] = true, [0x19] = true }

----------------------------------------------------------------------------------------------
-- Status body (§8.7) and reassembly (§9)
----------------------------------------------------------------------------------------------

local function status_body(tree, tvb, pinfo)
    -- message bytes(≤1024), details rest; an unparsable body is shown as the status alone.
    local c = cursor(tvb, 0, tvb:len())
    local len, n = varint_at(tvb, 0, tvb:len())
    if not len or len > UInt64.new(1024) or len:tonumber() > tvb:len() - n then return end
    local l = len:tonumber()
    local st = tree:add(tandem, tvb(), "Status body (SPEC.md §8.7)")
    st:add(F.body_message, tvb(0, n + l), l > 0 and tvb(n, l):string(ENC_UTF_8) or "")
    c.off = n + l
    local r = c:rest()
    add_bytes(st, F.body_details, r, tvb, tvb:len(), "status body details")
end

-- The negotiated features of this connection (both HELLOs announced the bit, §5.8).
local function negotiated(state, bit)
    local n = 0
    local both = true
    for _, h in pairs(state.hellos) do
        n = n + 1
        if band(h.features, bit) == 0 then both = false end
    end
    return n == 2 and both
end

-- Tracks fragmented messages per direction on the first pass; returns what this frame is.
local function track_fragments(pinfo, fkey, state, dir, ty, ctx, item)
    local res = results[fkey]
    if not pinfo.visited and res == nil and tandem.prefs.reassemble then
        local more = ctx.flags and band(ctx.flags, MORE) ~= 0
        local cur = state.progress[dir]
        if FRAGMENTABLE[ty] and more then
            res = {}
            if cur then
                res.violation = "a first frame with MORE while the message of id " .. tostring(cur.id) ..
                    " (frame " .. cur.first_in .. ") is in progress (SPEC.md §9.3)"
            end
            local total = ctx.total_len
            local keep = total <= UInt64.new(tandem.prefs.max_reassembly)
            state.progress[dir] = {
                ty = ty, status = ctx.status,
                id = ctx.id, total = total, got = ctx.payload_len, first_in = pinfo.number,
                data = (keep and ctx.payload) and ctx.payload:bytes() or ByteArray.new(), keep = keep,
            }
            res.starts = true
        elseif ty == 0x20 then
            res = {}
            if not cur then
                res.violation = "CONTINUATION with no fragmented message in progress (SPEC.md §9.3)"
            elseif cur.id ~= ctx.id then
                res.violation = "CONTINUATION for id " .. tostring(ctx.id) .. " while the message of id " ..
                    tostring(cur.id) .. " is in progress (SPEC.md §9.3)"
            else
                res.part_of = cur.first_in
                cur.got = cur.got + ctx.payload_len
                if cur.keep and ctx.payload then cur.data:append(ctx.payload:bytes()) end
                if UInt64.new(cur.got) > cur.total then
                    res.violation = "the chunks exceed total_len " .. tostring(cur.total) .. " (SPEC.md §9.3)"
                    state.progress[dir] = nil
                elseif not more then
                    if UInt64.new(cur.got) ~= cur.total then
                        res.violation = "the last chunk ends the message at " .. cur.got ..
                            " bytes, total_len is " .. tostring(cur.total) .. " (SPEC.md §9.3)"
                    elseif cur.keep then
                        res.done, res.ty, res.status = cur.data, cur.ty, cur.status
                    end
                    state.progress[dir] = nil
                end
            end
        end
        if res then results[fkey] = res end
    end
    if not res then return end
    if res.violation then item:add_proto_expert_info(E.protocol, res.violation) end
    if res.part_of then
        item:add(F.fragment_of, res.part_of):set_generated()
    end
    if res.done then
        local rtvb = res.done:tvb("Reassembled tandem message")
        local ri = item:add(F.reassembled, rtvb())
        ri:set_generated()
        item:add(F.reassembled_len, rtvb(), UInt64.new(rtvb:len())):set_generated()
        item:add(F.reassembled_first, res.part_of):set_generated()
        item:add_proto_expert_info(E.reassembled, "message of " .. rtvb:len() .. " bytes reassembled")
        return rtvb, res.ty, res.status
    end
end

----------------------------------------------------------------------------------------------
-- One frame
----------------------------------------------------------------------------------------------

-- Dissects the complete frame occupying tvb(off, flen) (flen = header + body) and returns
-- nothing. `hlen` is the header length and `blen` the body length.
local function dissect_frame(tvb, pinfo, root, off, hlen, blen, udp)
    local ty = tvb(off, 1):uint()
    local flen = hlen + blen
    local tree = root:add(tandem, tvb(off, flen))
    tree:add(F.type, tvb(off, 1))
    tree:add(F.type_name, tvb(off, 1), type_name(ty)):set_generated()
    tree:add(F.length, tvb(off + 1, hlen - 1), UInt64.new(blen))
    tree:set_text("tandem " .. type_name(ty) .. " (" .. flen .. " bytes)")

    local state, dir = endpoints(pinfo)
    local fkey = pinfo.number .. ":" .. tvb:len() .. ":" .. off

    local body = BODY[ty]
    local ctx = {}
    if body == nil then
        if ty >= 0x80 then
            if blen > 0 then tree:add(F.ext_body, tvb(off + hlen, blen)) end
            add_info(pinfo, type_name(ty))
        else
            tree:add_proto_expert_info(E.malformed, "UnknownFrameType: 0x" ..
                string.format("%02x", ty) .. " is not assigned in v1 (SPEC.md §3.5)")
            add_info(pinfo, type_name(ty) .. " [malformed]")
        end
        return
    end

    local c = cursor(tvb, off + hlen, off + flen)
    local ok, err = pcall(body, tree, c, ctx)
    if not ok then
        if type(err) == "table" and err.decode_error then
            tree:add_proto_expert_info(E.malformed, err.decode_error .. " (SPEC.md §3.3)")
            if udp then tree:add_proto_expert_info(E.dropped) end
            add_info(pinfo, type_name(ty) .. " [" .. err.decode_error .. "]")
            return
        end
        error(err, 0)
    end
    if NO_REST[ty] and c:left() > 0 then
        tree:add_proto_expert_info(E.malformed, "TrailingBytes: " .. c:left() ..
            " bytes after the last field (SPEC.md §3.6)")
        if udp then tree:add_proto_expert_info(E.dropped) end
        add_info(pinfo, type_name(ty) .. " [TrailingBytes]")
        return
    end
    -- InvalidLength (§9.2): total_len must exceed the first frame's payload.
    if ctx.total_len and ctx.total_len <= UInt64.new(ctx.payload_len) then
        tree:add_proto_expert_info(E.malformed, "InvalidLength: total_len " ..
            tostring(ctx.total_len) .. " ≤ the " .. ctx.payload_len .. " payload bytes of the first frame (SPEC.md §9.2)")
        if udp then tree:add_proto_expert_info(E.dropped) end
        add_info(pinfo, type_name(ty) .. " [InvalidLength]")
        return
    end

    if ty == 0x01 then
        if state.hellos[dir] == nil or not pinfo.visited then state.hellos[dir] = ctx.hello end
    end
    if udp and ((ctx.flags and band(ctx.flags, MORE) ~= 0) or ty == 0x20) then
        tree:add_proto_expert_info(E.protocol,
            "fragmentation over UDP: the receiver closes with PROTOCOL_ERROR (SPEC.md §9.6)")
    end
    if ctx.total_len then tree:append_text(", first of a fragmented message") end

    local rtvb, first_ty, first_status = track_fragments(pinfo, fkey, state, dir, ty, ctx, tree)
    -- A non-OK RESPONSE carries a status body when error_details was negotiated (§8.7); a
    -- fragmented one is parsed once reassembled, on its last CONTINUATION.
    if negotiated(state, 2) then
        if rtvb and first_ty == 0x13 and first_status ~= 0 then
            status_body(tree, rtvb, pinfo)
        elseif ty == 0x13 and ctx.status ~= 0 and ctx.payload and not ctx.total_len then
            status_body(tree, ctx.payload:tvb(), pinfo)
        end
    end
    local info = ctx.info
    if ctx.payload_len and ctx.payload_len > 0 then
        info = info .. " len=" .. ctx.payload_len
    end
    if ctx.total_len then info = info .. " total_len=" .. tostring(ctx.total_len) end
    if rtvb then info = info .. " [reassembled " .. rtvb:len() .. " bytes]" end
    add_info(pinfo, info)
end

----------------------------------------------------------------------------------------------
-- Transports
----------------------------------------------------------------------------------------------

-- The header at `off`: header length and body length, nil when incomplete, or false and an
-- error name when the Length varint is not canonical.
local function header_at(tvb, off, stop)
    if stop - off < 2 then return nil end
    local len, n = varint_at(tvb, off + 1, stop)
    if not len then
        if n == "Truncated" then return nil end
        return false, n
    end
    return 1 + n, len
end

-- The receiver's frame size limit (§3.4) as far as the capture tells: the max_frame_size of
-- its HELLO; 4096 if the sender's HELLO was seen but not yet the receiver's (the receiver has
-- not received a HELLO either); otherwise (capture started mid-connection) the largest legal
-- value, 16777216.
local function receiver_limit(pinfo)
    local state, dir, other = endpoints(pinfo)
    local h = state.hellos[other]
    if h then return h.max_frame_size, "the receiver announced max_frame_size " .. h.max_frame_size end
    if state.hellos[dir] then return MIN_FRAME_SIZE, "the receiver has not sent its HELLO: the limit is 4096" end
    return 16777216, "the largest max_frame_size is 16777216"
end

local function bad_rest(tvb, pinfo, root, off, err, udp)
    local t = root:add(tandem, tvb(off))
    t:set_text("tandem: undecodable bytes")
    t:add_proto_expert_info(E.malformed, err .. " (SPEC.md §3.3)" ..
        (udp and "" or "; a byte stream cannot be resynchronised after it (§3.2)"))
    if udp then t:add_proto_expert_info(E.dropped) end
    add_info(pinfo, "[" .. err .. "]")
end

-- A byte stream (TCP, TLS plaintext): frames back to back, reassembled across segments.

local function dissect_stream(tvb, pinfo, root)
    local _, dir = endpoints(pinfo)
    if dead[dir] and pinfo.number > dead[dir] then
        local t = root:add(tandem, tvb())
        t:set_text("tandem: bytes after a lost frame boundary (not decoded)")
        add_info(pinfo, "[not decoded: framing lost in frame " .. dead[dir] .. "]")
        return tvb:len()
    end
    local off, stop = 0, tvb:len()
    while off < stop do
        local hlen, blen = header_at(tvb, off, stop)
        if hlen == nil then
            pinfo.desegment_offset = off
            pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
            return stop
        elseif hlen == false then
            -- Without a Length there is no next frame (§3.2): the receiver closes.
            bad_rest(tvb, pinfo, root, off, blen, false)
            if not pinfo.visited then dead[dir] = pinfo.number end
            return stop
        end
        -- A Length above the receiver's limit is refused from the header alone (§3.3 step 2).
        local limit, why = receiver_limit(pinfo)
        if blen > UInt64.new(limit) then
            bad_rest(tvb, pinfo, root, off, "FrameTooLarge: Length " .. tostring(blen) .. "; " .. why, false)
            if not pinfo.visited then dead[dir] = pinfo.number end
            return stop
        end
        local b = blen:tonumber()
        if off + hlen + b > stop then
            pinfo.desegment_offset = off
            pinfo.desegment_len = off + hlen + b - stop
            return stop
        end
        dissect_frame(tvb, pinfo, root, off, hlen, b, false)
        off = off + hlen + b
    end
    return off
end

-- A UDP datagram (§14.2): one or more whole frames; any decode error drops it all.
local function dissect_datagram(tvb, pinfo, root)
    local off, stop = 0, tvb:len()
    while off < stop do
        local hlen, blen = header_at(tvb, off, stop)
        if hlen == nil then
            bad_rest(tvb, pinfo, root, off, "Truncated: the datagram ends inside a frame header", true)
            return stop
        elseif hlen == false then
            bad_rest(tvb, pinfo, root, off, blen, true)
            return stop
        end
        local limit, why = receiver_limit(pinfo)
        if blen > UInt64.new(limit) then
            bad_rest(tvb, pinfo, root, off, "FrameTooLarge: Length " .. tostring(blen) .. "; " .. why, true)
            return stop
        end
        if UInt64.new(stop - off - hlen) < blen then
            bad_rest(tvb, pinfo, root, off, "Truncated: the datagram ends inside a frame body (Length " ..
                tostring(blen) .. ")", true)
            return stop
        end
        local b = blen:tonumber()
        dissect_frame(tvb, pinfo, root, off, hlen, b, true)
        off = off + hlen + b
    end
    return off
end

local PT_UDP = 3 -- epan port_type

function tandem.dissector(tvb, pinfo, root)
    if tvb:len() == 0 then return 0 end
    if pinfo.port_type == PT_UDP then
        return dissect_datagram(tvb, pinfo, root)
    end
    return dissect_stream(tvb, pinfo, root)
end

-- Heuristic (§5.3): the first frame of a connection is the dialer's HELLO, whose body starts
-- with the magic TNDM; the acceptor's HELLO (or a rejecting CLOSE) follows on the same
-- conversation, which is then ours.
local function heuristic(tvb, pinfo, root)
    if not tandem.prefs.heuristic then return false end
    if tvb:len() < 7 or tvb(0, 1):uint() ~= 0x01 then return false end
    local hlen, blen = header_at(tvb, 0, tvb:len())
    if not hlen or blen < UInt64.new(11) or blen > UInt64.new(4096) then return false end
    if tvb:len() < hlen + 4 or tvb(hlen, 4):string() ~= "TNDM" then return false end
    pinfo.conversation = tandem
    tandem.dissector(tvb, pinfo, root)
    return true
end

tandem:register_heuristic("tcp", heuristic)
tandem:register_heuristic("udp", heuristic)

-- TLS 1.3 with the ALPN name `tandem/1` (§3.9): decoded when Wireshark can decrypt the session.
local alpn = DissectorTable.get("tls.alpn")
if alpn then alpn:add("tandem/1", tandem) end

local registered = { tcp = "", udp = "" }
function tandem.prefs_changed()
    local tcp_table = DissectorTable.get("tcp.port")
    local udp_table = DissectorTable.get("udp.port")
    if registered.tcp ~= "" then tcp_table:remove(registered.tcp, tandem) end
    if registered.udp ~= "" then udp_table:remove(registered.udp, tandem) end
    registered.tcp = tandem.prefs.tcp_ports
    registered.udp = tandem.prefs.udp_ports
    if registered.tcp ~= "" then tcp_table:add(registered.tcp, tandem) end
    if registered.udp ~= "" then udp_table:add(registered.udp, tandem) end
end
