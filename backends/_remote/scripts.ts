// The Lua scripts of the remote backends. Every key a script touches is passed in KEYS and
// shares the prefix's hash tag, so the scripts also run on Redis Cluster.

/** A script and its SHA-1, for EVALSHA. */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

// Applies batches of changes, each at most once.
// KEYS[1]: this process's applied-batch marker; KEYS[2]: the instance heartbeats;
// KEYS[3..]: the metric hashes.
// ARGV: ttl, instance id ("" for none), heartbeat lifetime in ms, batch count, then per batch:
// sequence number, change count, then per change: key index, op ("i" add, "s" set, "d" delete
// the field, "p" delete every field starting with the given text, "x" keep the later exemplar:
// set the field unless it holds one with a greater timestamp), field, value.
// A change Redis rejects (an increment to infinity, a key of another type) is skipped and
// counted, never aborting the script halfway: a batch is applied whole, once.
// Returns { the sequence number applied last, the number of changes rejected }.
const FLUSH_SOURCE = `
local applied = tonumber(redis.call('GET', KEYS[1]) or '0')
local rejected = 0
local ttl = tonumber(ARGV[1])
local pos = 5
local touched = {}
for _ = 1, tonumber(ARGV[4]) do
  local seq = tonumber(ARGV[pos])
  local n = tonumber(ARGV[pos + 1])
  pos = pos + 2
  if seq > applied then
    for _ = 1, n do
      local key = KEYS[tonumber(ARGV[pos])]
      local reply
      local op = ARGV[pos + 1]
      if op == 'd' then
        reply = redis.pcall('HDEL', key, ARGV[pos + 2])
      elseif op == 'p' then
        -- Remove every field that starts with the given text (a per-instance gauge's series).
        local prefix = ARGV[pos + 2]
        reply = redis.pcall('HKEYS', key)
        if reply.err == nil then
          for _, field in ipairs(reply) do
            if string.sub(field, 1, #prefix) == prefix then redis.pcall('HDEL', key, field) end
          end
        end
      elseif op == 'x' then
        -- An exemplar, "<timestamp> <value> <labels>": the latest across the fleet stays,
        -- whatever order processes flush in (a tie replaces).
        local text = ARGV[pos + 3]
        reply = redis.pcall('HGET', key, ARGV[pos + 2])
        if type(reply) ~= 'table' or reply.err == nil then
          local at = tonumber(string.match(text, '^[^ ]+') or '')
          local old = type(reply) == 'string' and tonumber(string.match(reply, '^[^ ]+') or '') or nil
          if at ~= nil and (old == nil or at >= old) then reply = redis.pcall('HSET', key, ARGV[pos + 2], text) end
        end
      elseif op == 'i' then
        reply = redis.pcall('HINCRBYFLOAT', key, ARGV[pos + 2], ARGV[pos + 3])
        if type(reply) == 'table' and reply.err then
          -- Redis refuses non-finite results; compute them here, as JavaScript would.
          local old = redis.pcall('HGET', key, ARGV[pos + 2])
          local a, b = tonumber(old or '0'), tonumber(ARGV[pos + 3])
          if type(old) ~= 'table' and a ~= nil and b ~= nil then
            local v = a + b
            local text = string.format('%.17g', v)
            if v ~= v then text = 'NaN' elseif v == math.huge then text = 'Infinity' elseif v == -math.huge then text = '-Infinity' end
            reply = redis.pcall('HSET', key, ARGV[pos + 2], text)
          end
        end
      else
        reply = redis.pcall('HSET', key, ARGV[pos + 2], ARGV[pos + 3])
      end
      if type(reply) == 'table' and reply.err then rejected = rejected + 1 end
      touched[key] = true
      pos = pos + 4
    end
    applied = seq
  else
    pos = pos + 4 * n
  end
end
redis.call('SET', KEYS[1], applied, 'EX', ttl)
for key in pairs(touched) do redis.call('EXPIRE', key, ttl) end
if ARGV[2] ~= '' then
  local now = redis.call('TIME')
  redis.call('HSET', KEYS[2], ARGV[2], now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[3]))
  redis.call('EXPIRE', KEYS[2], ttl)
end
return { applied, rejected }
`;

// Reads every metric hash at once. KEYS[1]: the instance heartbeats; KEYS[2..]: metric hashes.
// Returns { TIME, heartbeats, hash, hash, ... } as flat field/value arrays.
const COLLECT_SOURCE = `
local out = { redis.call('TIME'), redis.call('HGETALL', KEYS[1]) }
for i = 2, #KEYS do out[i + 1] = redis.call('HGETALL', KEYS[i]) end
return out
`;

async function sha1(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The flush script. */
export const FLUSH_SCRIPT: Promise<Script> = sha1(FLUSH_SOURCE).then((sha) => ({
  source: FLUSH_SOURCE,
  sha,
}));
/** The collection script. */
export const COLLECT_SCRIPT: Promise<Script> = sha1(COLLECT_SOURCE).then((sha) => ({
  source: COLLECT_SOURCE,
  sha,
}));
