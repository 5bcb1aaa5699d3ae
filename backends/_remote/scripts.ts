// The Lua scripts of the remote backends. Every key a script touches is passed in KEYS, and the
// keys of one call share a hash tag on a Redis Cluster, so the scripts also run there.

/** A script and its SHA-1, for EVALSHA. */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

// Applies batches of changes, each at most once, in one shard (or, outside a cluster, several).
// KEYS: every key the changes name (markers, metric hashes, last-write indexes, the heartbeats).
// ARGV: ttl in seconds; the index of the heartbeats key ("0": no heartbeat), the instance id and
// the heartbeat's lifetime in ms; the age in ms past which a series counts as expired; how many
// expired series a trim deletes per index at most; the batch count; then per batch: where its
// keys start in KEYS (its first key is its marker: this process's last sequence number applied in
// the batch's shard), its sequence number (one more than the batch before it in the shard), "1"
// when the sender knows the batch before it applied (so a marker that expired is no gap), and its
// changes as one text: per change, key index (from the batch's first key, 1), op, field, value,
// each followed by a line feed (which none of them holds).
// Ops: "i" add, "s" set, "d" delete the field, "p" delete every field starting with the given
// text, "x" keep the later exemplar (set the field unless it holds one with a greater timestamp),
// "t" write the series' member (the field, less as many characters at its end as the value says)
// into the last-write index (the key) at the Redis time (gathered, and written a thousand at a
// time, before an "e" and at the end of the batch),
// "e" trim the metric hash (the key) of the expired members of the index whose key index is the
// field (from the batch's first key too): the value is the metric's value names, each followed by "|".
// A batch applies only after the one before it: one that finds a gap (its predecessor failed) is
// refused and sent again with it. A change Redis rejects (an increment to infinity, a key of
// another type) is skipped and counted, never aborting the script halfway: a batch is applied
// whole, once.
// Returns { changes rejected, then per batch: 1 applied, 2 applied before, 0 refused }.
const FLUSH_SOURCE = `
local rejected = 0
local ttl = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local stale = now - tonumber(ARGV[5])
local step = tonumber(ARGV[6])
local out = { 0 }
local pos = 8
local touched = {}
-- Last writes gathered per index, each index's written by one ZADD of many members: a command
-- per series would cost Redis more than the member itself.
local stamps, stamped = {}, 0
local function stamp()
  for key, args in pairs(stamps) do
    local reply = redis.pcall('ZADD', key, unpack(args))
    if type(reply) == 'table' and reply.err then rejected = rejected + #args / 2 end
  end
  stamps, stamped = {}, 0
end
for b = 1, tonumber(ARGV[7]) do
  local base = tonumber(ARGV[pos])
  local marker = KEYS[base + 1]
  local seq = tonumber(ARGV[pos + 1])
  local known = ARGV[pos + 2] == '1'
  local changes = ARGV[pos + 3]
  pos = pos + 4
  local applied = tonumber(redis.call('GET', marker) or '-1')
  if applied >= seq then
    out[b + 1] = 2
  elseif applied ~= seq - 1 and not (known and applied < seq - 1) then
    out[b + 1] = 0
  else
    for keyAt, op, field, value in string.gmatch(changes, '([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n') do
      local key = KEYS[base + tonumber(keyAt)]
      local reply
      if op == 'i' then
        reply = redis.pcall('HINCRBYFLOAT', key, field, value)
        if type(reply) == 'table' and reply.err then
          -- Redis refuses non-finite results; compute them here, as JavaScript would.
          local old = redis.pcall('HGET', key, field)
          local a, v = tonumber(old or '0'), tonumber(value)
          if type(old) ~= 'table' and a ~= nil and v ~= nil then
            v = a + v
            local text = string.format('%.17g', v)
            if v ~= v then text = 'NaN' elseif v == math.huge then text = 'Infinity' elseif v == -math.huge then text = '-Infinity' end
            reply = redis.pcall('HSET', key, field, text)
          end
        end
        touched[key] = true
      elseif op == 's' then
        reply = redis.pcall('HSET', key, field, value)
        touched[key] = true
      elseif op == 't' then
        local member = field
        local cut = tonumber(value) or 0
        if cut > 0 then member = string.sub(member, 1, #member - cut) end
        local args = stamps[key]
        if args == nil then
          args = {}
          stamps[key] = args
        end
        args[#args + 1] = now
        args[#args + 1] = member
        stamped = stamped + 1
        if stamped >= 1000 then stamp() end
        touched[key] = true
      elseif op == 'd' then
        reply = redis.pcall('HDEL', key, field)
      elseif op == 'p' then
        -- Remove every field that starts with the given text (a per-instance gauge's series).
        local prefix = field
        reply = redis.pcall('HKEYS', key)
        if reply.err == nil then
          for _, field in ipairs(reply) do
            if string.sub(field, 1, #prefix) == prefix then redis.pcall('HDEL', key, field) end
          end
        end
      elseif op == 'x' then
        -- An exemplar, "<timestamp> <value> <labels>": the latest across the fleet stays,
        -- whatever order processes flush in (a tie replaces).
        local text = value
        reply = redis.pcall('HGET', key, field)
        if type(reply) ~= 'table' or reply.err == nil then
          local at = tonumber(string.match(text, '^[^ ]+') or '')
          local old = type(reply) == 'string' and tonumber(string.match(reply, '^[^ ]+') or '') or nil
          if at ~= nil and (old == nil or at >= old) then reply = redis.pcall('HSET', key, field, text) end
        end
        touched[key] = true
      elseif op == 'e' then
        -- The series no process wrote for the expiry: their fields, exemplars and member go.
        -- The last writes gathered so far land first, so no series written here is taken.
        stamp()
        local index = KEYS[base + tonumber(field)]
        reply = redis.pcall('ZRANGEBYSCORE', index, '-inf', stale, 'LIMIT', 0, step)
        if reply.err == nil then
          for _, member in ipairs(reply) do
            local labels, instance = string.match(member, '^(.*)|([^|]*)$')
            if labels ~= nil then
              for name in string.gmatch(value, '([^|]*)|') do
                redis.pcall('HDEL', key, labels .. '|' .. name .. '|' .. instance, labels .. '|#' .. name .. '|' .. instance)
              end
            end
            redis.pcall('ZREM', index, member)
          end
        end
      end
      if type(reply) == 'table' and reply.err then rejected = rejected + 1 end
    end
    stamp()
    redis.call('SET', marker, seq, 'EX', ttl)
    out[b + 1] = 1
  end
end
for key in pairs(touched) do redis.call('EXPIRE', key, ttl) end
local beat = tonumber(ARGV[2])
if beat > 0 then
  redis.call('HSET', KEYS[beat], ARGV[3], now + tonumber(ARGV[4]))
  -- Kept at least as long as a heartbeat lasts, whatever the expiry of metrics.
  redis.call('EXPIRE', KEYS[beat], math.max(ttl, math.ceil(tonumber(ARGV[4]) / 1000)))
end
out[1] = rejected
return out
`;

// Reads hashes whole, up to a number of fields in all. ARGV[1]: "1" when KEYS[1] is the instance
// heartbeats (then the reply starts with the Redis time and the heartbeats); ARGV[2]: the most
// fields to read. Returns, per other key, its fields and values as a flat array, or, once the
// fields read would pass the budget, its field count, so the caller reads it later or by HSCAN.
const COLLECT_SOURCE = `
local out = {}
local first = 1
if ARGV[1] == '1' then
  out[1] = redis.call('TIME')
  out[2] = redis.call('HGETALL', KEYS[1])
  first = 2
end
local budget = tonumber(ARGV[2])
for i = first, #KEYS do
  local n = redis.call('HLEN', KEYS[i])
  if n <= budget then
    out[#out + 1] = redis.call('HGETALL', KEYS[i])
    budget = budget - n
  else
    out[#out + 1] = n
    budget = 0
  end
end
return out
`;

// One step through a large hash: KEYS[1], ARGV: cursor and count. Returns { cursor, fields }.
const SCAN_SOURCE = `return redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])`;

// Reads fields of one hash: KEYS[1], ARGV: the fields. Returns their values (false for absent).
const READ_SOURCE = `return redis.call('HMGET', KEYS[1], unpack(ARGV))`;

async function sha1(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const script = (source: string): Promise<Script> => sha1(source).then((sha) => ({ source, sha }));

/** The flush script. */
export const FLUSH_SCRIPT: Promise<Script> = script(FLUSH_SOURCE);
/** The collection script. */
export const COLLECT_SCRIPT: Promise<Script> = script(COLLECT_SOURCE);
/** One HSCAN step, for hashes too large to read whole. */
export const SCAN_SCRIPT: Promise<Script> = script(SCAN_SOURCE);
/** Fields of one hash. */
export const READ_SCRIPT: Promise<Script> = script(READ_SOURCE);
